import Foundation
import Laws
import ResultSchema
import Testing

/// The dead zone against pⁿ + (1 − p)ⁿ from the cell's own per-problem pass rates.
@Suite("Dead zone against theory")
struct DeadZoneTests {
    /// With n ≤ N samples the estimate is unbiased: problems solved 0, 2 and 8 times of N = 8
    /// at n = 2 give [C(8,2) + 0]/C(8,2) = 1, [C(2,2) + C(6,2)]/C(8,2) = 16/28, and 1: mean
    /// (1 + 16/28 + 1)/3. With n > N the plug-in: p = 0.25 at n = 16.
    @Test func expectedFractionIsTheUnbiasedGroupProbability() throws {
        let e = try #require(DeadZone.expected(successes: [0, 2, 8], samples: 8, n: 2))
        #expect(abs(e - (1 + 16.0 / 28 + 1) / 3) < 1e-12)
        let plug = try #require(DeadZone.expected(successes: [2], samples: 8, n: 16))
        #expect(abs(plug - (pow(0.25, 16) + pow(0.75, 16))) < 1e-15)
        #expect(DeadZone.expected(successes: [], samples: 8, n: 2) == nil)
        // n = 1: every group of one rollout has zero variance.
        #expect(DeadZone.expected(successes: [3, 5], samples: 8, n: 1) == 1)
    }

    static func point(_ step: Int, _ compute: Double, _ successes: [Int]?) -> EvalPoint {
        var l = ComputeLedger()
        l.sampling = compute
        var p = EvalPoint(step: step, compute: l, wallSeconds: 0, groups: [], supportExpansion: 0, baseUnsolved: 0, klToBase: 0, entropy: 0)
        p.trainSuccesses = successes
        return p
    }

    static func window(_ first: Int, _ last: Int, _ dead: Double) -> StepWindow {
        StepWindow(firstStep: first, lastStep: last, meanReward: 0.5, deadZoneFraction: dead, deadZoneFLOPsShare: dead, discardedGroups: 0,
                   entropy: 0, clipFraction: 0, responseLength: 10, loss: 0, gradNorm: 1)
    }

    /// Windows are assigned to the interval holding their middle step and weighted by their
    /// steps; the theory of an interval is the mean of its two ends'.
    @Test func intervalsPairWindowsWithTheirEvaluationPoints() throws {
        let config = CellConfig(method: "grpo", rolloutsPerProblem: 2, problemsPerBatch: 8, budgetFLOPs: 1e9, evalSamples: 8)
        let doc = CellResult(
            config: config, baseKey: "k", baseName: "s", baseParameters: 100, status: "done", steps: 20,
            curve: [Self.point(0, 0, [0, 8]), Self.point(10, 1e8, [4, 4]), Self.point(20, 2e8, nil)],
            windows: [Self.window(0, 3, 1.0), Self.window(4, 9, 0.5), Self.window(10, 19, 0.25)],
            compute: ComputeLedger(), wallSeconds: 0)
        let iv = DeadZone.intervals(doc)
        try #require(iv.count == 1)  // the second interval's end has no per-problem successes
        #expect(abs(iv[0].measured - (4 * 1.0 + 6 * 0.5) / 10) < 1e-12)  // weighted by steps
        let mid = (PassAtK.worst(n: 8, c: 4, k: 2) * 2)
        #expect(abs(iv[0].expected - (1 + mid) / 2) < 1e-12)
        // The rows follow the law groups' runs: a cell the analysis holds, read from its document.
        let cell = Cell(id: "c1", method: "grpo", taskMix: config.lawGroupLabel, parameters: 100, rolloutsPerProblem: 2, problemsPerBatch: 8,
                        curve: [CurvePoint(compute: 0, rollouts: 0, score: 0.1), CurvePoint(compute: 1e8, rollouts: 100, score: 0.3)],
                        flopsPerRollout: 1e6)
        let report = GridAnalysis.run(CellStore(grid: "d", cells: [cell]), score: try ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0)))
        #expect(DeadZone.rows(report, documents: ["other": doc]).isEmpty)
        let rows = DeadZone.rows(report, documents: ["c1": doc])
        #expect(rows.count == 1 && rows[0].n == 2 && !rows[0].plugIn && rows[0].cells == 1)
        #expect(DeadZone.markdown(rows).contains("| grpo | add:1,chain:1,mul:1,sort:1 |  | 100 | 2 | 8 | 1 |"))
    }
}
