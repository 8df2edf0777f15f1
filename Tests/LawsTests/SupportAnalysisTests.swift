import Foundation
import Laws
import ResultSchema
import Testing

/// The support-expansion analysis of `fit`: arms, subsets, pass@k with paired SEs, readings.
@Suite struct SupportAnalysisTests {
    /// A done cell whose support measurement (K = 16) has the given (base, policy) counts on
    /// training-distribution problems and on other levels; base-zero problems get a
    /// false-discovery probability of 0.3.
    func cell(seed: UInt64, trained: [(Int, Int)], other: [(Int, Int)]) -> CellResult {
        let config = CellConfig(method: "grpo", rolloutsPerProblem: 4, budgetFLOPs: 1e12, seed: seed)
        var problems: [SupportProblem] = []
        let all = trained.map { (counts: $0, trained: true) } + other.map { (counts: $0, trained: false) }
        for (i, x) in all.enumerated() {
            problems.append(SupportProblem(
                index: i, family: "sort", difficulty: x.trained ? 2 : 7, bucket: .hard, trainDistribution: x.trained, bucketSuccesses: 1,
                bucketSamples: 32, base: x.counts.0, policy: x.counts.1, falseDiscoveryProbability: x.counts.0 == 0 ? 0.3 : nil))
        }
        let m = SupportMeasurement(
            samples: 16, step: 100, problems: problems, passAtK: [], baseZero: 0, newSupport: 0, expectedFalseDiscoveries: 0, lostSupport: 0,
            flops: 0)
        return CellResult(
            config: config, baseKey: "s-key", baseName: "s", baseParameters: 25_472, status: "done", steps: 100, curve: [], windows: [],
            compute: ComputeLedger(), wallSeconds: 0, support: m)
    }

    @Test func armsSplitTheTrainingLevelsFromTheOthersAndReadTheChange() throws {
        let cells = [
            cell(seed: 0, trained: [(0, 4), (2, 8), (10, 16)], other: [(5, 0), (6, 0), (4, 0)]),
            cell(seed: 1, trained: [(0, 4), (2, 8), (10, 16)], other: [(5, 0), (6, 0), (4, 0)]),
        ]
        let a = SupportAnalysis.analyse(cells: cells)
        #expect(a.arms.map(\.subset) == ["other", "train_dist"])
        let trained = try #require(a.arms.first { $0.subset == "train_dist" })
        #expect(trained.cells == 2 && trained.problems == 3 && trained.measurements == 6)
        #expect(trained.curve.map(\.k) == [1, 4, 16])
        // pass@1 = c/16 per problem: base (0 + 2 + 10)/48, policy (4 + 8 + 16)/48; the paired
        // change per problem (0.25, 0.375, 0.375) is resolved; pass@16 moves only on the
        // first problem (0 → 1): 1/3 ± 1/3, not resolved.
        let p1 = trained.curve[0], p16 = trained.curve[2]
        #expect(abs(p1.base - 12.0 / 48) < 1e-12 && abs(p1.policy - 28.0 / 48) < 1e-12 && abs(p1.change - 1.0 / 3) < 1e-12)
        #expect(abs(p1.changeSE - 1.0 / 24) < 1e-12, "\(p1.changeSE)")
        #expect(abs(p16.change - 1.0 / 3) < 1e-12 && abs(p16.changeSE - 1.0 / 3) < 1e-12)
        // Both seeds discover problem 0: 2 new, 2 × 0.3 expected, SD bound 2√0.21 (perfectly correlated).
        #expect(trained.newSupport == 2 && abs(trained.expectedFalseDiscoveries - 0.6) < 1e-12)
        #expect(abs(trained.falseDiscoverySD - 2 * 0.21.squareRoot()) < 1e-12)
        #expect(trained.reading.hasPrefix("sharpens only: pass@1 rose, pass@16 did not move beyond 2 SE"), "\(trained.reading)")
        #expect(trained.reading.contains("new support 2 is within chance"))
        let other = try #require(a.arms.first { $0.subset == "other" })
        #expect(other.lostSupport == 6 && other.newSupport == 0)
        #expect(other.reading.hasPrefix("narrows: pass@16 fell"), "\(other.reading)")
        // The table has one row per arm and k; the report section one row per arm.
        #expect(a.table().rows.count == 2 * 3)
        #expect(a.markdown().components(separatedBy: "\n").filter { $0.hasPrefix("| grpo") }.count == 2)
        #expect(SupportAnalysis.analyse(cells: [cells[0]].map { var c = $0; c.support = nil; return c }).arms.isEmpty)
    }
}
