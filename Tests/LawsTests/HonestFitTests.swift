import Foundation
import Laws
import RLCommon
import Testing

/// A lag-shaped store: GRPO at n = 4 and 8, lags 0 and 16, three seeds; lag 16 lowers the
/// asymptote by `damage`. Every cell runs to one budget.
func lagStore(damage: Double = 0.1) -> [Cell] {
    var cells: [Cell] = []
    var rng = SeededRNG(seed: 5).derived("lag")
    for lag in [0, 16] {
        for n in [4, 8] {
            for seed in 0..<3 {
                let a = 0.7 - (lag == 16 ? damage : 0) + (n == 8 ? 0.05 : 0)
                var curve = [CurvePoint(compute: 0, rollouts: 0, score: 0.1, se: 0.01)]
                for c in logSpace(9, 12, 10) {
                    curve.append(CurvePoint(compute: c, rollouts: c / 1e6, score: 0.1 + (a - 0.1) / (1 + 3e10 / c) + 0.01 * rng.gaussian(), se: 0.01))
                }
                cells.append(Cell(id: "lag\(lag)-n\(n)-s\(seed)", method: "grpo", taskMix: "sort:1", parameters: 1e5, rolloutsPerProblem: n,
                                  problemsPerBatch: 8, seed: UInt64(seed), curve: curve, flopsPerRollout: 1e6,
                                  settings: ["lag": String(lag), "lr": "0.0002", "budget": "1000000000000", "seed": String(seed)],
                                  budget: 1e12, wallSeconds: 60, evalProblems: 64))
            }
        }
    }
    return cells
}

extension Cell {
    /// Lowers every point of the curve after step 0 by `delta`.
    mutating func score(lowering delta: Double) {
        for i in curve.indices where curve[i].compute > 0 { curve[i].score -= delta }
    }
}

/// A selfdistill-shaped store: each run (two methods × two seeds) evaluated as three cells
/// at budgets 1e11, 3e11 and 1e12, each cell's curve the prefix of the largest one's.
func prefixStore(curriculum: String = "uniform") -> [Cell] {
    var cells: [Cell] = []
    for method in ["grpo", "sdpg"] {
        for seed in 0..<2 {
            var rng = SeededRNG(seed: UInt64(seed)).derived(method)
            let full = [CurvePoint(compute: 0, rollouts: 0, score: 0.2, se: 0.02)]
                + logSpace(8, 12, 9).map { c in CurvePoint(compute: c, rollouts: c / 1e6, score: 0.2 + 0.5 / (1 + 1e10 / c) + 0.02 * rng.gaussian(), se: 0.02) }
            for budget in [1e11, 3e11, 1e12] {
                cells.append(Cell(id: "\(method)-s\(seed)-b\(Int(log10(budget) * 10))", method: method, taskMix: "mul:1,sort:1",
                                  parameters: 1e5, rolloutsPerProblem: 8, problemsPerBatch: 8, seed: UInt64(seed),
                                  curve: full.filter { $0.compute <= budget }, flopsPerRollout: 1e6,
                                  settings: ["curriculum": curriculum, "budget": String(budget), "seed": String(seed)], budget: budget,
                                  scheduleDependsOnBudget: curriculum == "easy_to_hard"))
            }
        }
    }
    return cells
}

@Suite("Honest fit: groups, runs, gates and prices")
struct HonestFitTests {
    static let fast = AnalysisOptions(bootstrap: BootstrapOptions(resamples: 100, seed: 1), budgets: 8)

    /// Lags are settings, not seeds: each lag is its own law group, labelled by it, and the
    /// tables carry the label. (Catches grouping by method and task mixture alone.)
    @Test func lagsFormSeparateLaws() throws {
        let report = GridAnalysis.run(CellStore(grid: "lag", cells: lagStore()), score: try ScoreSelector(), options: Self.fast)
        try #require(report.groups.count == 2)
        #expect(report.groups.map(\.label) == ["grpo [lag=0]", "grpo [lag=16]"])
        #expect(report.grouping?.varying == ["lag"])
        #expect(report.groups.allSatisfy { $0.cells.count == 6 && Set($0.cells.map { $0.settings["lag"] }).count == 1 })
        let a0 = try #require(report.groups[0].law("score[n=4]", .scaleRL)).estimate.fit.value("A")
        let a16 = try #require(report.groups[1].law("score[n=4]", .scaleRL)).estimate.fit.value("A")
        #expect(a0 - a16 > 0.05, "lag 16 lowers A: \(a0) vs \(a16)")
        let laws = report.lawsTable()
        let col = try #require(laws.header.firstIndex(of: "settings"))
        #expect(Set(laws.rows.map { $0[col] }) == ["lag=0", "lag=16"])
        #expect(report.allocationTable().header.contains("settings") && report.frontierTable().header.contains("settings"))
        // Pooling on purpose puts both lags in one group and says so.
        var pooled = Self.fast
        pooled.pool = ["lag"]
        let one = GridAnalysis.run(CellStore(grid: "lag", cells: lagStore()), score: try ScoreSelector(), options: pooled)
        #expect(one.groups.count == 1 && one.groups[0].cells.count == 12)
        #expect(one.grouping?.pooled == ["lag"])
        #expect(one.reportMarkdown().contains("Pooled on purpose (`--pool`): lag"))
    }

    /// A setting that takes one value per configuration (a grid that zips lr with n, as
    /// IsoCompute scales lr with √(Bp·n)) is part of each arm: the arms stay in one law group
    /// and are compared by the allocation laws, and the report names the setting. The same
    /// setting crossed with n (two values within one configuration) separates groups.
    @Test func aSettingZippedWithTheAllocationStaysInTheArm() throws {
        let zipped = lagStore().filter { $0.settings["lag"] == "0" }.map { c -> Cell in
            var c = c
            c.settings["lr"] = c.rolloutsPerProblem == 4 ? "0.0001" : "0.00014"
            return c
        }
        let report = GridAnalysis.run(CellStore(grid: "zip", cells: zipped), score: try ScoreSelector(), options: Self.fast)
        #expect(report.groups.count == 1 && report.groups[0].cells.count == 6 && report.groups[0].label == "grpo")
        #expect(report.grouping?.followingAllocation == ["lr"] && report.grouping?.varying == [])
        #expect(report.groups[0].laws.contains { $0.quantity == "score[n=4]" } && report.groups[0].laws.contains { $0.quantity == "score[n=8]" })
        #expect(report.reportMarkdown().contains("Settings that follow the allocation (one value per configuration N, n, Bp, as a grid's `zip` gives): lr"))
        // Crossed: each n run at both learning rates is two experiments, not one arm.
        let crossed = zipped + zipped.map { c -> Cell in
            var c = c
            c.id += "-lr"
            c.settings["lr"] = c.rolloutsPerProblem == 4 ? "0.00014" : "0.0001"
            return c
        }
        let split = GridAnalysis.run(CellStore(grid: "cross", cells: crossed), score: try ScoreSelector(), options: Self.fast)
        #expect(split.groups.count == 2 && split.grouping?.varying == ["lr"] && split.grouping?.followingAllocation == [])
        // Judged within each method: a second method at one fixed lr for both n keeps GRPO's
        // zipped arms together (and is its own group by method anyway).
        let twoMethods = zipped + zipped.map { c -> Cell in
            var c = c
            c.id += "-dapo"
            c.method = "dapo"
            c.settings["lr"] = "0.0002"
            return c
        }
        let both = GridAnalysis.run(CellStore(grid: "two", cells: twoMethods), score: try ScoreSelector(), options: Self.fast)
        #expect(both.grouping?.followingAllocation == ["lr"] && both.groups.map(\.label) == ["dapo", "grpo"])
        // A measurement setting that happens to change with n is never part of the arm: the
        // arms were measured differently, so they are not compared.
        let measured = zipped.map { c -> Cell in
            var c = c
            c.settings["lr"] = "0.0001"
            c.settings["eval_levels"] = c.rolloutsPerProblem == 4 ? "all" : "train"
            return c
        }
        let apart = GridAnalysis.run(CellStore(grid: "m", cells: measured), score: try ScoreSelector(), options: Self.fast)
        #expect(apart.groups.count == 2 && apart.grouping?.varying == ["eval_levels"] && apart.grouping?.followingAllocation == [])
    }

    /// Cells of one budget stop at the first step past it, a larger n overshooting more. The
    /// envelope and the allocation are read up to the budget the cells ran to, so at the
    /// largest budget every arm competes: the better arm (n = 4, overshooting by 1e-5) wins
    /// there, not the one that overshot most (n = 8, by 2e-4, whose curve is lower).
    @Test func theLargestBudgetHoldsEveryArmThatRanToIt() throws {
        let cells = lagStore().filter { $0.settings["lag"] == "0" }.map { c -> Cell in
            var c = c
            let last = c.curve.count - 1
            c.curve[last].compute *= c.rolloutsPerProblem == 4 ? 1.00001 : 1.0002
            c.score(lowering: c.rolloutsPerProblem == 8 ? 0.1 : 0)
            return c
        }
        let report = GridAnalysis.run(CellStore(grid: "top", cells: cells), score: try ScoreSelector(), options: Self.fast)
        let table = report.allocationTable()
        let budget = try #require(table.header.firstIndex(of: "budget_flops")), n = try #require(table.header.firstIndex(of: "n_opt"))
        let top = try #require(table.rows.max { Double($0[budget])! < Double($1[budget])! })
        #expect(Double(top[budget])! <= 1e12 * (1 + 1e-9), "the grid stops at the budget the cells ran to")
        #expect(Double(top[n]) == 4, "\(table.rows.map { ($0[budget], $0[n]) })")
    }

    /// `--within` takes any setting: lag=16 keeps that lag's cells; numbers compare by value.
    @Test func withinAcceptsAnySetting() throws {
        let store = CellStore(grid: "lag", cells: lagStore())
        #expect(store.within(try Stratum(parsing: "lag=16")).cells.count == 12 / 2)
        #expect(store.within(try Stratum(parsing: "lr=2e-4,n=4")).cells.count == 6)
        #expect(store.within(try Stratum(parsing: "lag=4")).cells.isEmpty)
        #expect(throws: LawError.self) { try Stratum(parsing: "lags=4") }
        #expect(throws: LawError.self) { try Stratum(parsing: "lag=1,lag=2") }
    }

    /// Cells that are prefixes of a longer cell of the same run are folded into it: the
    /// selfdistill shape's 12 cells are 4 runs, and `n_runs` counts runs. (Catches counting
    /// every cell as a run.) A budget-reading schedule keeps them apart.
    @Test func prefixesAreOneRun() throws {
        let report = GridAnalysis.run(CellStore(grid: "sd", cells: prefixStore()), score: try ScoreSelector(), options: Self.fast)
        #expect(report.mergedCells == 8)
        #expect(report.groups.map { $0.cells.count } == [2, 2])
        for g in report.groups {
            #expect(g.cells.allSatisfy { $0.budget == 1e12 && $0.mergedPrefixes.count == 2 })
            let law = try #require(g.law("score_frontier", .scaleRL))
            #expect(law.runs?.runs == 2)
            let t = report.lawsTable()
            let runs = try #require(t.header.firstIndex(of: "n_runs"))
            #expect(t.rows.allSatisfy { $0[runs] == "2" })
        }
        #expect(report.reportMarkdown().contains("12 analysed as 4 independent runs (8 cell(s)"))
        let schedule = GridAnalysis.run(CellStore(grid: "sd", cells: prefixStore(curriculum: "easy_to_hard")),
                                        score: try ScoreSelector(), options: Self.fast)
        #expect(schedule.mergedCells == 0 && schedule.groups.map { $0.cells.count } == [6, 6])
    }

    /// Laws of a dimension that does not vary are left out (no N_star, Bp_star, score[N=…],
    /// score[Bp=…] or Chinchilla rows when only n varies).
    @Test func constantDimensionsHaveNoLaws() throws {
        let report = GridAnalysis.run(CellStore(grid: "lag", cells: lagStore()), score: try ScoreSelector(), options: Self.fast)
        let quantities = Set(report.groups[0].laws.map(\.quantity))
        #expect(quantities.contains("n_star") && quantities.contains("score[n=4]") && quantities.contains("score[n=8]"))
        #expect(quantities.isDisjoint(with: ["N_star", "Bp_star", "score[N=100000]", "score[Bp=8]", "error"]), "\(quantities)")
    }

    /// A law whose curve has flattened before the held-out top decade is `saturated`; the
    /// same world bending inside the data is not. (Catches a holdout that tests a plateau.)
    @Test func plateauInTheTopDecadeIsSaturated() {
        var early = SyntheticWorld(runsPerConfiguration: 3)
        early.arms = [.init(n: 4, asymptote: 0.6, midpoint: 2e8), .init(n: 16, asymptote: 0.7, midpoint: 3e8)]
        let late = SyntheticWorld(runsPerConfiguration: 3)
        let o = Self.fast
        let flat = GridAnalysis.analyse(method: "grpo", taskMix: "synthetic", cells: early.cells(seed: 1), options: o)
        let bending = GridAnalysis.analyse(method: "grpo", taskMix: "synthetic", cells: late.cells(seed: 1), options: o)
        for arm in ["score[n=4]", "score[n=16]"] {
            let f = flat.law(arm, .scaleRL)!, b = bending.law(arm, .scaleRL)!
            #expect(f.quality == .saturated, "\(arm): rise \(f.topDecadeRise), SE \(f.typicalSE), \(f.quality)")
            #expect(f.topDecadeRise < 3 * f.typicalSE)
            #expect(b.topDecadeRise > 3 * b.typicalSE && b.quality != .saturated, "\(arm): \(b.quality)")
        }
        #expect(flat.law("score_envelope", .envelope)?.quality == .saturated)
    }

    /// A's interval reaching the bound A ≤ 1 is saturation, however much the score rose.
    @Test func intervalOnTheBoundIsSaturated() {
        let fit = LawFit(form: .scaleRL, values: [0.2, 0.999, 1, 1e10])
        var law = LawResult(quantity: "score[n=4]", fit: fit,
                            intervals: [Interval(low: 0.2, high: 0.2), Interval(low: 0.95, high: 1), Interval(low: 0.9, high: 1.1),
                                        Interval(low: 5e9, high: 2e10)], holdoutError: 0.01, nPoints: 20, typicalSE: 0.01)
        law.topDecadeRise = 0.2
        #expect(law.quality == LawQuality.pass)
        law.asymptoteMax = 1
        law.runs = RunCount(runs: 3, strata: 1, fewestPerConfiguration: 3)
        #expect(law.quality == .saturated)
        // With one run per configuration there is no interval (the run bootstrap measures no
        // spread): the runs gate speaks.
        law.runs = RunCount(runs: 1, strata: 1, fewestPerConfiguration: 1)
        law.estimate.intervals = law.estimate.intervals.map { _ in .unknown }
        #expect(law.quality == .tooFewRuns)
    }

    /// `ci_wide` also reads C_mid: an interval over more than a decade fails, however narrow A's.
    @Test func wideMidpointIntervalFails() {
        let fit = LawFit(form: .scaleRL, values: [0.2, 0.7, 1, 1e10])
        func law(_ cmid: Interval) -> LawResult {
            var l = LawResult(quantity: "score[n=4]", fit: fit,
                              intervals: [Interval(low: 0.2, high: 0.2), Interval(low: 0.68, high: 0.72), Interval(low: 0.9, high: 1.1), cmid],
                              holdoutError: 0.01, nPoints: 20, typicalSE: 0.01)
            l.runs = RunCount(runs: 6, strata: 2, fewestPerConfiguration: 3)
            l.topDecadeRise = 0.1
            return l
        }
        #expect(law(Interval(low: 4e9, high: 3.9e10)).quality == .pass)
        #expect(law(Interval(low: 4e9, high: 4.1e10)).quality == .ciWide)
        #expect(law(.unknown).quality == .ciWide)
    }

    /// `gain<10SE` prices its evaluation: SE ∝ 1/√problems, so SE 0.02 against a gain of 0.1
    /// with 100 problems needs (10 × 0.02 / 0.1)² × 100 = 400.
    @Test func gainBelowTenSEPricesEvaluationProblems() {
        let fit = LawFit(form: .scaleRL, values: [0.2, 0.3, 1, 1e10])
        var l = LawResult(quantity: "score[n=4]", fit: fit, intervals: [Interval(low: 0.2, high: 0.2), Interval(low: 0.25, high: 0.35),
                                                                         Interval(low: 0.5, high: 1.5), Interval(low: 5e9, high: 2e10)],
                          holdoutError: 0.01, nPoints: 20, typicalSE: 0.02)
        l.evalProblems = 100
        #expect(l.quality == .gainBelow10SE)
        #expect(l.price.evalProblems == 400)
        #expect(l.price.runs == nil)
        #expect(l.price.sentence.contains("400 evaluation problems"))
    }

    /// The run price scales the measured widths by (t_new / t_now)·√(k/k'): A's interval at
    /// 0.96 of the gain with 3 runs (t = 4.303 on 2 degrees of freedom) passes half the gain
    /// at 5 runs (0.48 × 2.776/4.303 × √(3/5) = 0.240), not at 4 (0.307); without the t
    /// ratio it would ask for 12.
    @Test func runsPriceScalesTheMeasuredWidths() {
        var l = LawResult(quantity: "score[n=4]", fit: LawFit(form: .scaleRL, values: [0.1, 0.6, 1, 1e10]),
                          intervals: [Interval(low: 0.1, high: 0.1), Interval(low: 0.36, high: 0.84), Interval(low: 0.5, high: 1.5),
                                      Interval(low: 5e9, high: 2e10)], holdoutError: 0.01, nPoints: 20, typicalSE: 0.01)
        l.runs = RunCount(runs: 3, strata: 1, fewestPerConfiguration: 3)
        l.topDecadeRise = 0.1
        l.wallSecondsPerRun = 360
        #expect(l.quality == .ciWide)
        #expect(l.price.runs == 5)
        #expect(l.price.coreHours.map { abs($0 - 0.2) < 1e-12 } == true)
        #expect(l.price.sentence == "needs about 5 runs per configuration, ≈ 0.200 more core-hours")
    }

    /// The price of a law that fails `ci_wide` on noise: the predicted run count, when run,
    /// passes the interval gate in most worlds, and one run fewer than predicted mostly does not.
    @Test func predictedRunCountPasses() throws {
        var world = SyntheticWorld(runsPerConfiguration: 3)
        world.asymptoteSD = 0.12
        world.midpointDecadesSD = 0.15
        let o = Self.fast
        var predictions: [Int] = [], grades: [LawQuality] = []
        for seed in 0..<5 {
            let g = GridAnalysis.analyse(method: "grpo", taskMix: "synthetic", cells: world.cells(seed: UInt64(seed)), options: o)
            let law = try #require(g.law("score[n=4]", .scaleRL))
            grades.append(law.quality)
            guard law.quality == .ciWide, let k = law.price.runs else { continue }
            #expect(k > 3 && k <= PassingPrice.maxRuns)
            #expect(law.price.coreHours.map { abs($0 - Double(k - 3) * 100 / 3600) < 1e-9 } == true)
            predictions.append(k)
        }
        #expect(predictions.count >= 3, "most worlds fail ci_wide at 3 runs: \(predictions) \(grades)")
        let k = predictions.sorted()[predictions.count / 2]
        func passes(_ runs: Int) -> Int {
            var w = world
            w.runsPerConfiguration = runs
            return (10..<16).filter { seed in
                let g = GridAnalysis.analyse(method: "grpo", taskMix: "synthetic", cells: w.cells(seed: UInt64(seed)), options: o)
                return ![.ciWide, .tooFewRuns].contains(g.law("score[n=4]", .scaleRL)?.quality)
            }.count
        }
        #expect(passes(k) >= 4, "median prediction \(k) runs")
    }
}

/// The seeds gate's agreement interval for one seed's share of the runs.
@Suite("Seed agreement interval")
struct SeedAgreementTests {
    /// A seed holding a quarter of the runs may stray √(1/0.25 − 1) = √3 times the pooled
    /// interval's half-widths from the pooled estimate; half the runs: exactly the pooled
    /// interval; an unknown share: the pooled interval; C_mid widens on a log scale.
    @Test func widensBySeedShare() {
        let pooled = Interval(low: 0.6, high: 0.7)
        let quarter = Replication.agreementInterval(pooled, center: 0.66, share: 0.25)
        #expect(abs(quarter.low - (0.66 - 0.06 * 3.0.squareRoot())) < 1e-12 && abs(quarter.high - (0.66 + 0.04 * 3.0.squareRoot())) < 1e-12)
        let half = Replication.agreementInterval(pooled, center: 0.66, share: 0.5)
        #expect(abs(half.low - 0.6) < 1e-12 && abs(half.high - 0.7) < 1e-12)
        #expect(Replication.agreementInterval(pooled, center: 0.66, share: .nan) == pooled)
        let c = Replication.agreementInterval(Interval(low: 1e9, high: 1e11), center: 1e10, share: 0.2, logScale: true)
        #expect(abs(log10(c.low) - 8) < 1e-9 && abs(log10(c.high) - 12) < 1e-9)
    }
}

/// A merely wide interval capped at the bound is `ci_wide` with a price, not `saturated`.
@Suite("Saturation is about the estimate")
struct SaturationTests {
    @Test func aWideIntervalCappedAtTheBoundIsNotSaturation() {
        func law(a: Double) -> LawResult {
            var l = LawResult(quantity: "score[n=4]", fit: LawFit(form: .scaleRL, values: [0.1, a, 1, 1e10]),
                              intervals: [Interval(low: 0.1, high: 0.1), Interval(low: a - 0.4, high: 1), Interval(low: 0.5, high: 1.5),
                                          Interval(low: 5e9, high: 2e10)], holdoutError: 0.01, nPoints: 20, typicalSE: 0.02)
            l.runs = RunCount(runs: 2, strata: 1, fewestPerConfiguration: 2)
            l.topDecadeRise = 0.2
            l.asymptoteMax = 1
            return l
        }
        #expect(law(a: 0.7).quality == .ciWide && law(a: 0.7).price.runs != nil)
        #expect(law(a: 0.99).quality == .saturated)
    }
}
