import Foundation
import Laws
import RLCommon
import Testing

/// A configuration's true learning curve: R(C) = r0 + (a − r0) / (1 + (cmid / C)^b), evaluated
/// up to `reach` FLOPs, run as `replicates` identical cells (or noisy ones).
struct TrueConfiguration {
    var parameters: Double
    var n: Int
    var bp: Int
    var r0: Double
    var a: Double
    var b = 1.2
    var cmid: Double
    var reach = 1e12
    var replicates = 1

    func score(_ c: Double) -> Double { r0 + (a - r0) / (1 + pow(cmid / c, b)) }
    var configuration: Configuration {
        Configuration(parameters: parameters, rolloutsPerProblem: Double(n), problemsPerBatch: Double(bp))
    }
}

/// Cells on the true curves: a step-0 point at r0, then 13 points from 1e8 to 1e12 FLOPs
/// (and on to `reach` beyond that), with Gaussian noise of SD `noise` on each score.
func store(_ truth: [TrueConfiguration], noise: Double = 0, seed: UInt64 = 1) -> [Cell] {
    var rng = SeededRNG(seed: seed).derived("envelope")
    var cells: [Cell] = []
    for t in truth {
        let computes = (logSpace(8, 12, 13) + (t.reach > 1e12 ? logSpace(12, log10(t.reach), 5).dropFirst() : [])).filter { $0 <= t.reach }
        for r in 0..<t.replicates {
            let fpr = 1e5 * t.parameters / 1e4
            let curve = [CurvePoint(compute: 0, rollouts: 0, score: t.r0)] + computes.map { c in
                CurvePoint(compute: c, rollouts: c / fpr, score: t.score(c) + noise * rng.gaussian())
            }
            cells.append(Cell(id: "N\(Int(t.parameters))-n\(t.n)-bp\(t.bp)-r\(r)", method: "grpo", taskMix: "mul:1",
                              parameters: t.parameters, rolloutsPerProblem: t.n, problemsPerBatch: t.bp, seed: UInt64(r),
                              curve: curve, flopsPerRollout: fpr))
        }
    }
    return cells
}

/// The true envelope at `c`, by brute force: the best true score among the configurations
/// whose runs reach c, and the margin to the runner-up (infinite with one competitor).
func trueArgmax(_ truth: [TrueConfiguration], at c: Double) -> (best: TrueConfiguration, score: Double, margin: Double)? {
    let ranked = truth.filter { c <= $0.reach * (1 + 1e-9) }.map { ($0, $0.score(c)) }.sorted { $0.1 > $1.1 }
    guard let first = ranked.first else { return nil }
    return (first.0, first.1, ranked.count > 1 ? first.1 - ranked[1].1 : .infinity)
}

/// An unbalanced grid like isocompute.toml's: two base sizes with different step-0 scores
/// (0.1 and 0.2), an n × Bp grid with holes (n = 32 only with Bp ≤ 8, n = 2 only with
/// Bp ≥ 8) and the large base run only at Bp = 8. Small configurations rise early, large ones
/// late, so the true argmax moves through N, n and Bp as the budget grows.
func unbalancedTruth(replicates: Int = 1) -> [TrueConfiguration] {
    var out: [TrueConfiguration] = []
    for (bigN, r0) in [(1e4, 0.1), (4e4, 0.2)] {
        for n in [2, 4, 8, 16, 32] {
            for bp in [4, 8, 16] where !(n == 32 && bp > 8) && !(n == 2 && bp < 8) && !(bigN > 2e4 && bp != 8) {
                let a = 0.3 + 0.08 * log2(Double(n)) + 0.04 * log2(Double(bp) / 4) + (bigN > 2e4 ? 0.12 : 0)
                let cmid = 3e8 * pow(2.2, log2(Double(n))) * Double(bp) / 4 * pow(bigN / 1e4, 1.5)
                out.append(TrueConfiguration(parameters: bigN, n: n, bp: bp, r0: r0, a: a, cmid: cmid, replicates: replicates))
            }
        }
    }
    return out
}

/// One base size, n in {2, …, 32} × Bp in {4, 8} (n = 32 only at Bp = 4); at every budget the
/// true score is quadratic in log2 n with its vertex at log2 `bestN` (the ceiling A falls
/// quadratically around it, C_mid and B do not depend on n), and Bp = 8 overtakes Bp = 4 late.
func quadraticTruth(bestN: Double) -> [TrueConfiguration] {
    var out: [TrueConfiguration] = []
    for bp in [4, 8] {
        for n in [2, 4, 8, 16, 32] where !(n == 32 && bp == 8) {
            let a = (bp == 4 ? 0.6 : 0.75) - 0.02 * pow(log2(Double(n)) - log2(bestN), 2)
            out.append(TrueConfiguration(parameters: 1e4, n: n, bp: bp, r0: 0.1, a: a, cmid: bp == 4 ? 1e9 : 2e10))
        }
    }
    return out
}

@Suite("Configuration envelope, joint allocation and continuous optima")
struct EnvelopeTests {
    static let noBootstrap = AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0), budgets: 24)

    func analyse(_ cells: [Cell], _ options: AnalysisOptions = noBootstrap) throws -> (LawsReport, GroupResult) {
        let report = GridAnalysis.run(CellStore(grid: "env", cells: cells), score: try ScoreSelector(), options: options)
        return (report, try #require(report.groups.first))
    }

    /// On exact per-configuration curves the joint argmax (N*, n*, Bp*), the envelope value and
    /// the series the allocation laws are fitted to are the true ones at every budget.
    @Test func jointArgmaxRecoversTheTrueAllocationOnAnUnbalancedGrid() throws {
        let truth = unbalancedTruth()
        let (report, g) = try analyse(store(truth))
        #expect(g.configurations.count == truth.count)
        #expect(g.configurations.allSatisfy { $0.fit.isOK })
        #expect(g.allocation.count == 24)
        var checked = 0
        var seen: [ArmDimension: Set<Double>] = [:]
        for row in g.allocation {
            let t = try #require(trueArgmax(truth, at: row.budget))
            // Skip near-ties, where a 1e-9 fitting error could legitimately flip the argmax.
            guard t.margin > 1e-6 else { continue }
            let want = t.best.configuration
            #expect(row.parameters == want.parameters && row.rolloutsPerProblem == want.rolloutsPerProblem
                    && row.problemsPerBatch == want.problemsPerBatch, "at \(row.budget): \(row) vs \(want)")
            #expect(abs(row.score - t.score) < 1e-6, "at \(row.budget)")
            let fpr = 1e5 * want.parameters / 1e4
            #expect(relClose(row.rollouts, row.budget / fpr, 1e-12))
            #expect(relClose(row.steps, row.budget / fpr / (want.rolloutsPerProblem * want.problemsPerBatch), 1e-12))
            for d in ArmDimension.allCases { seen[d, default: []].insert(want[d]) }
            checked += 1
        }
        #expect(checked >= 22, "only \(checked) budgets without a near-tie")
        // The truth moves along every dimension, so this is a joint search, not three marginals.
        #expect(seen[.rollouts] == [2, 4, 8, 16, 32] && seen[.parameters] == [1e4, 4e4] && seen[.batch] == [4, 8])
        // The allocation laws are fitted to that series: n* at every budget.
        let nStar = try #require(g.law("n_star", .powerLaw))
        #expect(nStar.data.x == g.budgets)
        for (c, n) in zip(nStar.data.x, nStar.data.y) {
            if let t = trueArgmax(truth, at: c), t.margin > 1e-6 { #expect(n == Double(t.best.n), "n* at \(c)") }
        }
        #expect(g.law("N_star", .powerLaw)?.data.y == g.allocation.map(\.parameters))
        #expect(g.law("Bp_star", .powerLaw)?.data.y == g.allocation.map(\.problemsPerBatch))
        // laws.csv: one row per configuration law, named by its coordinates, no duplicate law.
        let t = report.lawsTable()
        #expect(t.rows.contains { $0[4] == "score[N=40000,n=2,Bp=8]" && $0[6] == "A" && $0[16].hasPrefix("ok") })
        let keys = g.laws.map { $0.quantity + "|" + $0.estimate.fit.form.rawValue }
        #expect(Set(keys).count == keys.count)
        #expect(g.laws.filter { $0.quantity.hasPrefix("score[N=") && $0.quantity.contains(",n=") }.count == truth.count)
        // The envelope law: one row, the number of configuration laws competing.
        let env = try #require(g.law("score_envelope", .envelope))
        #expect(env.estimate.fit.value("configurations") == Double(truth.count))
        let envRows = t.rows.filter { $0[4] == "score_envelope" }
        #expect(envRows.count == 1 && envRows[0][5] == "envelope" && envRows[0][6] == "configurations" && envRows[0][15] == "gain")
        #expect(envRows[0][7] == csvNumber(Double(truth.count)))
    }

    /// Arms pooled across an unbalanced dimension say so in their status; a balanced grid's do not.
    @Test func unbalancedArmsAreFlagged() throws {
        let (report, g) = try analyse(store(unbalancedTruth()))
        func status(_ q: String) -> String { g.laws.first { $0.quantity == q }?.estimate.status ?? "" }
        // n arms: n = 32 has Bp ∈ {4, 8}, n = 2 has Bp ∈ {8, 16}; every n has both N.
        for n in [2, 4, 8, 16, 32] { #expect(status("score[n=\(n)]").hasSuffix("unbalanced: arms pool different Bp values)")) }
        #expect(status("score[Bp=4]").contains("unbalanced: arms pool different n and N values"))
        #expect(status("score[N=40000]").contains("unbalanced: arms pool different Bp values"))
        // Configuration laws pool nothing.
        #expect(!status("score[N=10000,n=4,Bp=4]").contains("unbalanced"))
        #expect(report.lawsTable().rows.contains { $0[4] == "score[n=32]" && $0[16].contains("unbalanced: arms pool different Bp values") })
        // A full factorial grid is balanced.
        let balanced = GridAnalysis.analyse(method: "grpo", taskMix: "add:1", cells: crossingGrid(), options: Self.noBootstrap)
        #expect(balanced.laws.allSatisfy { !$0.estimate.status.contains("unbalanced") })
    }

    /// Scores quadratic in log2 n with the vertex at n = 6 (between the swept 4 and 8): the
    /// continuous optimum is 6, the discrete one 8, status ok; Bp has two values (at edge), N
    /// one (single value).
    @Test func continuousOptimumRecoversAnInteriorOptimum() throws {
        let (report, g) = try analyse(store(quadraticTruth(bestN: 6)))
        var checked = 0
        for row in g.allocation {
            let n = try #require(row.optimum[.rollouts])
            #expect(row.rolloutsPerProblem == 8)
            #expect(n.discrete == 8 && n.status == .ok && n.competing >= 4)
            #expect(abs(n.continuous - 6) < 1e-4, "at \(row.budget): \(n.continuous)")
            #expect(row.optimum[.batch]?.status == .atEdge && row.optimum[.batch]?.continuous == row.problemsPerBatch)
            #expect(row.optimum[.parameters]?.status == .singleValue && row.optimum[.parameters]?.competing == 1)
            checked += 1
        }
        #expect(checked == 24)
        // Both Bp values win somewhere (the slice the quadratic is fitted in changes).
        #expect(Set(g.allocation.map(\.problemsPerBatch)) == [4, 8])
        let t = report.allocationTable()
        let cont = try t.numbers("n_opt_cont"), status = try #require(t.header.firstIndex(of: "n_opt_status"))
        #expect(cont.allSatisfy { abs($0 - 6) < 1e-4 })
        #expect(t.rows.allSatisfy { $0[status] == "ok" })
        #expect(t.rows.allSatisfy { $0[status + 1] == "single value" && $0[status + 2] == "at edge of grid" })
        // A vertex beyond the sweep (n = 64): the argmax is the largest n of its slice.
        let (_, h) = try analyse(store(quadraticTruth(bestN: 64)))
        for row in h.allocation {
            let n = try #require(row.optimum[.rollouts])
            #expect(n.status == .atEdge, "at \(row.budget)")
            #expect(n.discrete == (row.problemsPerBatch == 4 ? 32 : 16))
            #expect(n.continuous == n.discrete)
        }
        #expect(h.law("n_star", .powerLaw)?.optimumStatuses.allSatisfy { $0 == .atEdge } == true)
    }

    /// On noiseless data every resample that has an envelope at C agrees with the full data's
    /// argmax. Each configuration has 10 identical cells (a resample misses one with probability
    /// ≈ e^-10), except one low configuration with a single cell that alone runs to 1e13: at
    /// budgets beyond 1e12 only resamples that drew it have an envelope (≈ 63%), and the
    /// frequency counts those only.
    @Test func winFrequenciesAreOneOnNoiselessData() throws {
        var truth: [TrueConfiguration] = []
        for n in [4, 16] {
            for bp in [4, 8] {
                truth.append(TrueConfiguration(parameters: 1e4, n: n, bp: bp, r0: 0.1, a: 0.4 + 0.02 * Double(n) + 0.02 * Double(bp),
                                               cmid: 1e8 * Double(n * bp), replicates: 10))
            }
        }
        truth.append(TrueConfiguration(parameters: 1e4, n: 2, bp: 16, r0: 0.1, a: 0.3, cmid: 1e10, reach: 1e13))
        let options = AnalysisOptions(bootstrap: BootstrapOptions(resamples: 40, seed: 4), budgets: 16)
        let (report, g) = try analyse(store(truth), options)
        var beyond = 0
        for row in g.allocation {
            let t = try #require(trueArgmax(truth, at: row.budget))
            #expect(row.rolloutsPerProblem == Double(t.best.n) && row.problemsPerBatch == Double(t.best.bp), "at \(row.budget)")
            for d in ArmDimension.allCases { #expect(row.frequency[d] == 1, "\(d) at \(row.budget): \(row.frequency)") }
            // Noiseless resamples: the envelope's interval collapses onto its value.
            #expect(row.interval.low <= row.score + 1e-9 && row.interval.high >= row.score - 1e-9)
            #expect(row.interval.high - row.interval.low < 1e-6)
            if row.budget > 1e12 * (1 + 1e-9) { beyond += 1; #expect(row.rolloutsPerProblem == 2) }
        }
        #expect(beyond >= 3)
        let env = try #require(g.law("score_envelope", .envelope))
        // The run bootstrap resamples within each configuration: the single run of the far-reaching
        // configuration is in every resample, so the envelope exists at the largest budget in all.
        #expect(!env.estimate.status.contains("bootstrap: envelope at the largest budget in"), "\(env.estimate.status)")
        let freq = try report.allocationTable().numbers("Bp_opt_freq")
        #expect(freq.allSatisfy { $0 == 1 })
    }

    /// Per-n sigmoids with small noise: the frontier is the envelope of the arms, which a single
    /// ScaleRL curve does not describe; the envelope of the arm laws fitted below a tenth of the
    /// largest compute predicts the top decade of the empirical frontier to within 5% of the
    /// gain, better than the single curve.
    @Test func envelopeExtrapolatesBetterThanTheSingleFrontierCurve() throws {
        let truth = [2, 4, 8, 16, 32].map { n in
            let k = log2(Double(n))
            return TrueConfiguration(parameters: 1e4, n: n, bp: 8, r0: 0.1, a: 0.35 + 0.1 * k, b: 1.5, cmid: 1e8 * pow(3, k), replicates: 2)
        }
        let (_, g) = try analyse(store(truth, noise: 0.003, seed: 9))
        // One varying dimension: the configurations are the n arms, not refitted.
        #expect(g.configurations.count == 5)
        #expect(!g.laws.contains { $0.quantity.contains(",") })
        for (law, arm) in zip(g.configurations, g.arms[.rollouts] ?? []) {
            #expect(law.fit.values == arm.fit.values && law.configuration.rolloutsPerProblem == arm.value)
        }
        let env = try #require(g.law("score_envelope", .envelope))
        let single = try #require(g.law("score_frontier", .scaleRL))
        let e = env.estimate.holdoutError, s = single.estimate.holdoutError
        #expect(e.isFinite && e < 0.05, "envelope holdout \(e) (\(env.estimate.status))")
        #expect(s.isFinite && e < s, "envelope \(e) vs single curve \(s)")
        #expect(env.estimate.holdoutMetric == .gain)
    }

    /// Hand-made allocation laws: `edge` when more than half of the series' budgets have the
    /// optimum at the edge of the grid; checked right after too_few_arms, before the holdout.
    @Test func gradesEdge() {
        func law(_ q: String, arms: Int = 3, holdout: Double = 0.05, _ statuses: [OptimumStatus]) -> LawResult {
            LawResult(quantity: q, fit: LawFit(form: .powerLaw, values: [1, 0.3]),
                      intervals: [Interval(low: 0.5, high: 2), Interval(low: 0.2, high: 0.4)], holdoutError: holdout, nPoints: arms,
                      optimumStatuses: statuses)
        }
        for q in ["n_star", "N_star", "Bp_star"] {
            #expect(law(q, [.atEdge, .atEdge, .ok]).quality == .edge)
            // Exactly half is not more than half.
            #expect(law(q, [.atEdge, .ok, .atEdge, .ok]).quality == .pass)
            #expect(law(q, [.ok, .singleValue, .atEdge]).quality == .pass)
            #expect(law(q, []).quality == .pass)
            // After too_few_arms, before the holdout gate.
            #expect(law(q, arms: 2, [.atEdge, .atEdge]).quality == .tooFewArms)
            #expect(law(q, holdout: 0.5, [.atEdge, .atEdge]).quality == .edge)
        }
        // Not a gate for other laws.
        #expect(law("steps_star", [.atEdge, .atEdge]).quality == .pass)
        #expect(LawQuality.edge.rawValue == "edge")
        #expect(Array(LawQuality.allCases.prefix(4)) == [.pass, .noFit, .tooFewArms, .edge])
        #expect(LawQuality.edge.words.contains("edge"))
    }

    /// The envelope's seeds gate on a hand-made law: each seed's own envelope is compared with
    /// the pooled interval at the largest budget where both are known, and only there.
    @Test func envelopeSeedsGateReadsTheLargestKnownBudget() {
        func law(_ seeds: [[Double]]) -> LawResult {
            var l = LawResult(quantity: "score_envelope", fit: LawFit(form: .envelope, values: [4]),
                              intervals: [Interval(low: 4, high: 4)], holdoutError: 0.02, nPoints: 40,
                              seedFits: seeds.enumerated().map { SeedFit(seed: UInt64($0), values: [4], intervals: [], band: $1) })
            l.band = [(1e9, 0.3, Interval(low: 0.28, high: 0.32)), (1e10, 0.5, Interval(low: 0.48, high: 0.52)),
                      (1e11, 0.7, Interval(low: 0.68, high: 0.72)), (1e12, 0.8, .unknown)]
            return l
        }
        // Inside at 1e11 (the last budget with a pooled interval), outside earlier: agrees.
        #expect(law([[0.1, 0.1, 0.7, 0.2]]).quality == .pass)
        // Outside at 1e11: disagrees, whatever the earlier budgets say.
        #expect(law([[0.3, 0.5, 0.6, 0.8], [0.3, 0.5, 0.71, 0.8]]).disagreeingSeeds == [0])
        #expect(law([[0.3, 0.5, 0.6, 0.8]]).quality == .seedsDisagree)
        // A seed whose envelope stops earlier is compared at its own largest budget.
        #expect(law([[0.3, 0.4, .nan, .nan]]).disagreeingSeeds == [0])
        #expect(law([[0.3, 0.5, .nan, .nan]]).disagreeingSeeds.isEmpty)
        // Nothing to compare: no disagreement.
        #expect(law([[]]).quality == .pass)
        #expect(LawQuality.headlineParameters(.envelope).isEmpty)
    }

    /// `--within`: parsing, errors that name the culprit, and the filter itself.
    @Test func withinKeepsOneStratum() throws {
        let cells = store(unbalancedTruth())
        let all = CellStore(grid: "env", cells: cells, skipped: [(id: "x", reason: "failed")])
        let bp8 = all.within(try Stratum(parsing: "bp=8"))
        #expect(!bp8.cells.isEmpty && bp8.cells.allSatisfy { $0.problemsPerBatch == 8 })
        #expect(bp8.cells.count == cells.filter { $0.problemsPerBatch == 8 }.count)
        #expect(bp8.skipped.count == 1 && bp8.within?.description == "Bp=8")
        let two = all.within(try Stratum(parsing: " n=4 , Bp=8"))
        #expect(two.cells.map(\.id) == cells.filter { $0.rolloutsPerProblem == 4 && $0.problemsPerBatch == 8 }.map(\.id))
        #expect(two.cells.count == 2)
        #expect(all.within(try Stratum(parsing: "N=40000")).cells.allSatisfy { $0.parameters == 4e4 })
        #expect(all.within(try Stratum(parsing: "N=1e4,bp=16")).cells.count == 4)
        #expect(all.within(try Stratum(parsing: "bp=64")).cells.isEmpty)
        func message(_ text: String) -> String {
            do { _ = try Stratum(parsing: text); return "" } catch { return "\(error)" }
        }
        #expect(message("x=8").contains("unknown key 'x'"))
        #expect(message("bp=abc").contains("'abc'") && message("bp=abc").contains("bp"))
        #expect(message("bp=-2").contains("'-2'"))
        #expect(message("bp").contains("'bp' is not KEY=VALUE"))
        #expect(message("bp=8,BP=4").contains("given twice"))
        #expect(message("").contains("is not KEY=VALUE"))
        // The analysis of a stratum says so in report.md.
        let report = GridAnalysis.run(bp8, score: try ScoreSelector(), options: Self.noBootstrap)
        #expect(report.within?.description == "Bp=8")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("laws-within-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try report.write(to: dir)
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        #expect(md.contains("Stratum: Bp=8 (`--within`"))
    }
}
