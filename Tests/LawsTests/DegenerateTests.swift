import Foundation
import Laws
import Testing

@Suite("Degenerate input gives a status, never a crash")
struct DegenerateTests {
    static let cases: [LawForm] = LawForm.fitted

    func data(_ form: LawForm, x: [Double], y: [Double]) -> LawData {
        form == .chinchilla ? LawData(x: x, x2: x.map { $0 * 3 }, y: y) : LawData(x: x, y: y)
    }

    @Test(arguments: cases) func allEqualScores(form: LawForm) {
        let x = logSpace(2, 6, 12)
        let fit = Laws.fit(form, data(form, x: x, y: [Double](repeating: 0.4, count: 12)), options: FitOptions(r0: form == .scaleRL ? 0.1 : nil))
        #expect(!fit.isOK)
        #expect(fit.status.hasPrefix("flat"), "\(fit.status)")
        #expect(fit.values.allSatisfy { $0.isNaN })
    }

    @Test(arguments: cases) func twoPoints(form: LawForm) {
        let fit = Laws.fit(form, data(form, x: [10, 100], y: [0.2, 0.3]))
        #expect(!fit.isOK)
        #expect(fit.status.hasPrefix("too few points"), "\(fit.status)")
    }

    @Test(arguments: cases) func nanInput(form: LawForm) {
        var y = logSpace(-1, -0.1, 10)
        y[4] = .nan
        let fit = Laws.fit(form, data(form, x: logSpace(2, 6, 10), y: y))
        #expect(fit.status == "non-finite input: 1 of 10 points")
        let e = Laws.estimate(form, data(form, x: logSpace(2, 6, 10), y: y), bootstrap: BootstrapOptions(resamples: 10))
        #expect(e.status == fit.status)
        #expect(e.holdoutError.isNaN)
    }

    @Test func infiniteComputeAndNonPositiveValues() {
        var x = logSpace(2, 6, 10)
        x[0] = .infinity
        #expect(Laws.fit(.powerLaw, LawData(x: x, y: logSpace(0, 1, 10))).status.hasPrefix("non-finite input"))
        let neg = Laws.fit(.powerLaw, LawData(x: logSpace(2, 6, 10), y: logSpace(0, 1, 10).map { $0 - 2 }))
        #expect(neg.status.hasPrefix("non-positive values"))
        let scale = Laws.fit(.scaleRL, LawData(x: logSpace(2, 6, 10), y: logSpace(-2, -1, 10).reversed()), options: FitOptions(r0: 0.5))
        #expect(scale.status.hasPrefix("flat: no point above R0"))
    }

    @Test func degenerateGridsGiveStatusRows() {
        // One cell, a flat curve, and a NaN point: every law gets a row with a reason.
        let flat = Cell(id: "only", method: "grpo", taskMix: "add:1", parameters: 1000, rolloutsPerProblem: 8, problemsPerBatch: 8,
                        curve: [CurvePoint(compute: 0, rollouts: 0, score: 0.2)] + logSpace(9, 12, 6).map {
                            CurvePoint(compute: $0, rollouts: $0 / 1e6, score: 0.2)
                        }, flopsPerRollout: 1e6)
        let report = GridAnalysis.run(CellStore(grid: "g", cells: [flat]), score: try! ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 5)))
        let table = report.lawsTable()
        #expect(!table.rows.isEmpty)
        let status = table.header.firstIndex(of: "status")!
        let value = table.header.firstIndex(of: "value")!
        for r in table.rows where !r[status].hasPrefix("ok") { #expect(r[value].isEmpty) }
        // One model size: no Chinchilla law (N does not vary), rather than a no_fit row.
        #expect(!table.rows.contains { $0[4] == "error" })
        #expect(table.rows.contains { $0[4] == "score_frontier" && $0[status].hasPrefix("flat") })
        // A group with no cells at all is simply absent.
        #expect(GridAnalysis.run(CellStore(grid: "g", cells: []), score: try! ScoreSelector()).groups.isEmpty)
    }
}
