import Foundation
import Laws
import Testing

/// Cells of one method whose evaluations carry a score SE (`se(i, c)` for cell i at compute c;
/// NaN leaves it unknown), two arms in n, scores on a ScaleRL curve.
func cellsWithSE(_ se: (Int, Double) -> Double) -> [Cell] {
    [4, 16].enumerated().map { i, n in
        let a = n == 4 ? 0.5 : 0.8
        let curve = [CurvePoint(compute: 0, rollouts: 0, score: 0.1, se: se(i, 0))] + logSpace(8, 12, 9).map { c in
            CurvePoint(compute: c, rollouts: c / 1e5, score: 0.1 + (a - 0.1) / (1 + pow(1e10 / c, 1.1)), se: se(i, c))
        }
        return Cell(id: "c\(n)", method: "grpo", taskMix: "mul:1", parameters: 1e4, rolloutsPerProblem: n,
                    problemsPerBatch: 8, curve: curve, flopsPerRollout: 1e5)
    }
}

@Suite("Score standard errors, weighted fits and quality grades")
struct QualityTests {
    /// Writes one cell document into a fresh store and loads it with `score`.
    func load(_ json: String, _ score: ScoreSelector) throws -> CellStore {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("laws-se-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/cells", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data(json.utf8).write(to: URL(fileURLWithPath: root + "/cells/c1.json"))
        return try CellStore.load(results: root, score: score)
    }

    /// The document's per-family SEs combine as sqrt(Σ w² se²) / Σ w with the score's weights;
    /// a family without an SE (or an old document without `se`) leaves the SE unknown.
    @Test func readsAndCombinesScoreSE() throws {
        var json = CSVAndCellTests.cellJSON()
        json = json.replacingOccurrences(
            of: #"{"family":"mul","group":"all","problems":30,"#,
            with: #"{"family":"mul","group":"all","se":{"avg@4":0.03,"greedy":0.01,"p_ref":0.02},"pRef":0.2,"refProblems":60,"problems":30,"#)
        json = json.replacingOccurrences(
            of: #"{"family":"sort","group":"all","problems":10,"#,
            with: #"{"family":"sort","group":"all","se":{"avg@4":0.06,"p_ref":0.04},"pRef":0.5,"refProblems":20,"problems":10,"#)
        let avg = try #require(try load(json, try ScoreSelector()).cells.first)
        #expect(abs(avg.curve[1].score - 0.375) < 1e-12)
        // Weights = problems (30, 10).
        let want = (900 * 0.03 * 0.03 + 100 * 0.06 * 0.06).squareRoot() / 40
        #expect(avg.curve.allSatisfy { abs($0.se - want) < 1e-15 })
        // p_ref weighs by refProblems (60, 20).
        let pref = try #require(try load(json, try ScoreSelector(metric: "p_ref")).cells.first)
        #expect(abs(pref.curve[0].se - (3600 * 0.02 * 0.02 + 400 * 0.04 * 0.04).squareRoot() / 80) < 1e-15)
        // greedy: sort has no SE for it, so the combined SE is unknown.
        let greedy = try #require(try load(json, try ScoreSelector(metric: "greedy")).cells.first)
        #expect(greedy.curve.allSatisfy { $0.se.isNaN })
        // A single family: its own SE. An old document: unknown.
        let easy = try #require(try load(json.replacingOccurrences(
            of: #"{"family":"sort","group":"easy","problems":3,"#,
            with: #"{"family":"sort","group":"easy","se":{"best@4":0.05},"problems":3,"#),
            try ScoreSelector(metric: "best@4", group: "easy")).cells.first)
        #expect(easy.curve.allSatisfy { abs($0.se - 0.05) < 1e-15 })
        let old = try #require(try load(CSVAndCellTests.cellJSON(), try ScoreSelector()).cells.first)
        #expect(old.curve.allSatisfy { $0.se.isNaN })
        // The default initialiser leaves SE unknown; points with unknown SE still compare equal.
        #expect(CurvePoint(compute: 1, rollouts: 1, score: 0.5) == CurvePoint(compute: 1, rollouts: 1, score: 0.5, se: .nan))
    }

    /// frontier.csv's last column is the SE of the evaluation that set each frontier point.
    @Test func frontierTableCarriesScoreSE() throws {
        let cells = cellsWithSE { i, c in c == 0 ? 0.001 : 0.002 * Double(i + 1) + c * 1e-15 }
        let report = GridAnalysis.run(CellStore(grid: "se", cells: cells), score: try ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0), budgets: 6))
        let t = report.frontierTable()
        #expect(t.header == ["method", "task_mix", "settings", "compute_flops", "score", "cell_id", "score_se", "seed_sd"])
        let g = try #require(report.groups.first)
        #expect(t.rows.count == g.frontier.count && t.rows.count > 2)
        for (row, p) in zip(t.rows, g.frontier) {
            let cell = try #require(cells.first { $0.id == row[5] })
            let point = try #require(cell.curve.first { $0.compute == p.compute })
            #expect(row[6] == csvNumber(point.se), "\(row)")
            #expect(row[6] != "")
        }
        // Unknown SEs leave the column empty.
        let plain = GridAnalysis.run(CellStore(grid: "se", cells: cellsWithSE { _, _ in .nan }), score: try ScoreSelector(),
                                     options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0), budgets: 6))
        #expect(plain.frontierTable().rows.allSatisfy { $0[6] == "" })
    }

    /// Points far off the curve with huge SEs barely move a weighted ScaleRL fit.
    @Test func weightedScaleRLFitDiscountsNoisyPoints() {
        let xs = logSpace(8, 12, 17)
        let truth = LawFit(form: .scaleRL, values: [0.1, 0.7, 1.2, 1e10])
        var y = xs.map { truth.predict($0) }
        var se = [Double](repeating: 0.005, count: xs.count)
        for i in [10, 12, 14, 16] { y[i] -= 0.25; se[i] = 5 }
        let weights = se.map { 1 / ($0 * $0) }
        let o = FitOptions(r0: 0.1, asymptoteMax: 1)
        let weighted = Laws.fit(.scaleRL, LawData(x: xs, y: y, weights: weights), options: o)
        #expect(weighted.isOK)
        #expect(abs(weighted.value("A") - 0.7) < 1e-3)
        #expect(abs(weighted.value("B") - 1.2) < 1e-2)
        #expect(abs(log(weighted.value("C_mid") / 1e10)) < 1e-2)
        // Unweighted, the same data pull A well below the truth.
        let plain = Laws.fit(.scaleRL, LawData(x: xs, y: y), options: o)
        #expect(plain.isOK && plain.value("A") < 0.65)
    }

    /// The analysis weights a ScaleRL fit only when every point it uses has a known SE.
    @Test func analysisWeightsOnlyWhenEverySEIsKnown() throws {
        let opts = AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0), budgets: 6)
        let known = GridAnalysis.run(CellStore(grid: "w", cells: cellsWithSE { _, _ in 0.01 }), score: try ScoreSelector(), options: opts)
        let g = try #require(known.groups.first)
        let arm = try #require(g.law("score[n=4]", .scaleRL))
        #expect(arm.data.weights?.allSatisfy { abs($0 - 1e4) < 1e-6 } == true)
        #expect(g.law("score_frontier", .scaleRL)?.data.weights != nil)
        #expect(abs(arm.typicalSE - 0.01) < 1e-15)
        // One unknown SE at positive compute: that arm (and the frontier it feeds) unweighted.
        let partial = GridAnalysis.run(CellStore(grid: "w", cells: cellsWithSE { i, c in i == 0 && c == 1e12 ? .nan : 0.01 }),
                                       score: try ScoreSelector(), options: opts)
        let h = try #require(partial.groups.first)
        #expect(h.law("score[n=4]", .scaleRL)?.data.weights == nil)
        #expect(h.law("score[n=16]", .scaleRL)?.data.weights != nil)
    }

    // MARK: - Quality gates

    /// A ScaleRL score law R0 = 0.1, A = 0.6 (gain 0.5) with A's interval, holdout and SE
    /// (C_mid's interval spans 0.6 decades).
    func scoreLaw(ci: Interval = Interval(low: 0.55, high: 0.65), holdout: Double = 0.05, se: Double = 0.01,
                  quantity: String = "score_frontier") -> LawResult {
        let fit = LawFit(form: .scaleRL, values: [0.1, 0.6, 1, 1e10])
        return LawResult(quantity: quantity, fit: fit, intervals: [Interval(low: 0.1, high: 0.1), ci, .unknown, Interval(low: 5e9, high: 2e10)],
                         holdoutError: holdout, nPoints: 12, typicalSE: se)
    }

    /// An allocation law on `arms` distinct arm values.
    func armLaw(_ quantity: String, arms: Int, holdout: Double = 0.05) -> LawResult {
        LawResult(quantity: quantity, fit: LawFit(form: .powerLaw, values: [1, 0.3]),
                  intervals: [Interval(low: 0.5, high: 2), Interval(low: 0.2, high: 0.4)], holdoutError: holdout, nPoints: arms)
    }

    @Test func passesAGoodLaw() {
        #expect(scoreLaw().quality == .pass)
        #expect(scoreLaw(quantity: "score[n=8]").quality == .pass)
        // Unknown SE: the gain gate is not applied.
        #expect(scoreLaw(se: .nan).quality == .pass)
        #expect(armLaw("n_star", arms: 3).quality == .pass)
        // steps_star is not an arm series: two points are not gated.
        #expect(armLaw("steps_star", arms: 2).quality == .pass)
    }

    @Test func gradesNoFit() {
        let failed = LawResult(quantity: "score_frontier", fit: .failure(.scaleRL, "flat", nPoints: 3, options: FitOptions()),
                               intervals: [], holdoutError: .nan, nPoints: 3, typicalSE: 1)
        #expect(failed.quality == .noFit)
        #expect(failed.quality.rawValue == "no_fit")
    }

    @Test func gradesTooFewArms() {
        for q in ["n_star", "N_star", "Bp_star"] {
            #expect(armLaw(q, arms: 2).quality == .tooFewArms)
            // Checked before the holdout gate.
            #expect(armLaw(q, arms: 2, holdout: 0.5).quality == .tooFewArms)
        }
        #expect(LawQuality.tooFewArms.rawValue == "too_few_arms")
    }

    @Test func gradesGainBelowTenSE() {
        // 10 × 0.06 = 0.6 > gain 0.5; 10 × 0.04 = 0.4 < 0.5.
        #expect(scoreLaw(se: 0.06).quality == .gainBelow10SE)
        #expect(scoreLaw(se: 0.04).quality == .pass)
        // Checked before the CI and holdout gates.
        #expect(scoreLaw(ci: .unknown, holdout: 0.5, se: 0.06).quality == .gainBelow10SE)
        #expect(LawQuality.gainBelow10SE.rawValue == "gain<10SE")
    }

    @Test func gradesWideInterval() {
        // Width 0.3 > 0.5 × 0.5; width 0.2 passes.
        #expect(scoreLaw(ci: Interval(low: 0.45, high: 0.75)).quality == .ciWide)
        #expect(scoreLaw(ci: Interval(low: 0.5, high: 0.7)).quality == .pass)
        #expect(scoreLaw(ci: .unknown).quality == .ciWide)
        // Checked before the holdout gate.
        #expect(scoreLaw(ci: .unknown, holdout: 0.5).quality == .ciWide)
        // Not a gate for laws other than score laws.
        #expect(armLaw("steps_star", arms: 5).quality == .pass)
    }

    @Test func gradesHoldout() {
        #expect(scoreLaw(holdout: 0.11).quality == .holdoutAbove10Percent)
        #expect(scoreLaw(holdout: 0.09).quality == .pass)
        #expect(scoreLaw(holdout: .nan).quality == .holdoutAbove10Percent)
        #expect(armLaw("N_star", arms: 4, holdout: 0.2).quality == .holdoutAbove10Percent)
        #expect(LawQuality.holdoutAbove10Percent.rawValue == "holdout>10%")
    }

    /// laws.csv ends with `quality`, the same on every row of a law and equal to its grade;
    /// report.md states each grade in words and the typical SE of each score law.
    @Test func reportCarriesQuality() throws {
        let report = GridAnalysis.run(CellStore(grid: "q", cells: cellsWithSE { _, _ in 0.01 }), score: try ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 10, seed: 1), budgets: 6))
        let t = report.lawsTable()
        #expect(t.header[17] == "quality")
        let g = try #require(report.groups.first)
        for law in g.laws {
            let rows = t.rows.filter { $0[4] == law.quantity && $0[5] == law.estimate.fit.form.rawValue }
            #expect(!rows.isEmpty)
            #expect(rows.allSatisfy { $0[17] == law.quality.rawValue }, "\(law.quantity)")
        }
        // The n arms never cross: n* is flat, so no fit.
        #expect(t.rows.filter { $0[4] == "n_star" }.allSatisfy { $0[17] == "no_fit" })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("laws-quality-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try report.write(to: dir)
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        let lines = md.split(separator: "\n").filter { $0.hasPrefix("- `") }
        #expect(lines.count == g.laws.count)
        #expect(lines.allSatisfy { $0.contains("quality: pass") || $0.contains("quality: fails — ") })
        for line in lines where line.contains("(scalerl)") { #expect(line.contains("typical score SE 0.010"), "\(line)") }
        // One run per configuration: the score laws have no interval that covers (too_few_runs).
        #expect(md.contains("quality: fails — too few independent runs") && md.contains("quality: fails — no fit"))
    }
}
