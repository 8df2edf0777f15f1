import Foundation
import Laws
import Testing

/// Cell documents written by the current code (the tiny grid's reference run, through the
/// real binary) are read back by the law fitter, with the measurements `fit` uses by default.
@Suite(.serialized) struct DocumentReadBackTests {
    @Test func fitReadsTheCellsTheRunnerWrote() throws {
        let ref = try TinyGridReference.shared.get()
        let store = URL(fileURLWithPath: ref.gridFile).deletingLastPathComponent().path + "/tiny"
        for (metric, range) in [("avg@4", 0.0...1.0), ("p_ref", 0.0...1.0), ("logp_ref", -1e4...0.0)] {
            let cells = try CellStore.load(results: store, score: try ScoreSelector(metric: metric, group: "train_dist"))
            #expect(cells.skipped.isEmpty, "\(metric): \(cells.skipped)")
            #expect(cells.cells.count == 6, "\(metric)")
            for c in cells.cells {
                // Step 0 and the later evaluation points, every score in its range.
                #expect(c.curve.count == 4 && c.curve.first?.compute == 0, "\(metric) \(c.id)")
                #expect(c.curve.allSatisfy { range.contains($0.score) }, "\(metric) \(c.id): \(c.curve.map(\.score))")
            }
        }
    }
}
