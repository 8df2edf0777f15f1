import Foundation
import Laws
import RLCommon
import Testing

/// A two-seed grid of one arm (n = 16, N = 1e4, Bp = 8): four cells per seed, each on the
/// ScaleRL curve R0 = 0.1, A, B = 1.1, C_mid = 1e10 with its own evaluation noise (SD 0.005,
/// recorded as each point's SE; step-0 score exactly 0.1). Seed 1's ceiling is A + `shift`.
func seedGrid(shift: Double = 0, seeds: [UInt64] = [0, 1]) -> [Cell] {
    var rng = SeededRNG(seed: 5).derived("seeds")
    var cells: [Cell] = []
    for seed in seeds {
        let a = 0.7 + (seed == 1 ? shift : 0)
        for k in 0..<4 {
            var curve = [CurvePoint(compute: 0, rollouts: 0, score: 0.1)]
            for c in logSpace(8, 12, 9) {
                curve.append(CurvePoint(compute: c, rollouts: c / 1e5,
                                        score: 0.1 + (a - 0.1) / (1 + pow(1e10 / c, 1.1)) + 0.005 * rng.gaussian(), se: 0.005))
            }
            cells.append(Cell(id: "s\(seed)-r\(k)", method: "grpo", taskMix: "mul:1", parameters: 1e4, rolloutsPerProblem: 16,
                              problemsPerBatch: 8, seed: seed, curve: curve, flopsPerRollout: 1e5))
        }
    }
    return cells
}

@Suite("Replication by seed")
struct ReplicationTests {
    static let options = AnalysisOptions(bootstrap: BootstrapOptions(resamples: 100, seed: 3), budgets: 8)

    func analyse(_ cells: [Cell]) throws -> LawsReport {
        GridAnalysis.run(CellStore(grid: "seeds", cells: cells), score: try ScoreSelector(), options: Self.options)
    }

    static let header = ["method", "task_mix", "settings", "quantity", "form", "parameter", "seed", "value", "ci_low", "ci_high", "agrees"]

    /// Two seeds drawn from the same curves: every pooled law that fitted has one row per
    /// (parameter, seed) in replication.csv, each seed's value agrees with the pooled interval
    /// (fixed parameters: empty), and the frontier law passes.
    @Test func agreeingSeedsPass() throws {
        let report = try analyse(seedGrid())
        let g = try #require(report.groups.first)
        #expect(g.seeds == [0, 1])
        let t = report.replicationTable()
        #expect(t.header == Self.header)
        let fitted = g.laws.filter { $0.estimate.fit.isOK }
        #expect(t.rows.count == fitted.reduce(0) { $0 + 2 * $1.estimate.fit.form.parameterNames.count })
        let frontier = try #require(g.law("score_frontier", .scaleRL))
        #expect(frontier.seedFits.map(\.seed) == [0, 1])
        for row in t.rows {
            // Fixed parameters (R0, the envelope's count of configurations) are not compared.
            if ["R0", "configurations"].contains(row[5]) { #expect(row[10] == "", "\(row)") } else { #expect(row[10] == "true", "\(row)") }
        }
        // A seed's row carries that seed's own fit.
        let aRow = try #require(t.rows.first { $0[3] == "score_frontier" && $0[5] == "A" && $0[6] == "1" })
        #expect(aRow[7] == csvNumber(frontier.seedFits[1].values[1]))
        #expect(frontier.quality == .pass, "\(frontier.estimate.intervals) \(frontier.seedFits)")
        #expect(frontier.disagreeingSeeds.isEmpty)
        // The envelope: each seed's own envelope at the largest budget lies in the pooled interval.
        let envelope = try #require(g.law("score_envelope", .envelope))
        #expect(envelope.seedFits.map(\.seed) == [0, 1] && envelope.seedFits.allSatisfy { $0.band.count == g.budgets.count })
        #expect(envelope.disagreeingSeeds.isEmpty && envelope.quality == .pass, "\(envelope.estimate.status)")
    }

    /// Seed 1's ceiling 0.25 higher (four runs per seed: a seed effect the agreement interval resolves clearly): seed 0's frontier A falls outside the pooled interval, the
    /// row says so and the frontier law, passing every earlier gate, is graded seeds_disagree.
    @Test func shiftedSeedDisagrees() throws {
        let report = try analyse(seedGrid(shift: 0.25))
        let g = try #require(report.groups.first)
        let law = try #require(g.law("score_frontier", .scaleRL))
        let a = law.estimate.intervals[1]
        let seed0 = try #require(law.seedFits.first { $0.seed == 0 })
        #expect(seed0.values[1] < a.low, "\(seed0.values) \(a)")
        let rows = report.replicationTable().rows.filter { $0[3] == "score_frontier" && $0[5] == "A" }
        #expect(rows.map { $0[6] + ":" + $0[10] } == ["0:false", "1:true"])
        #expect(law.disagreeingSeeds == [0])
        // The envelope's seeds gate compares each seed's own envelope at the largest budget with
        // the pooled envelope's interval there: seed 0 falls below it.
        let envelope = try #require(g.law("score_envelope", .envelope))
        let top = try #require(envelope.band.last)
        let seed0Envelope = try #require(envelope.seedFits.first { $0.seed == 0 }?.band.last)
        #expect(seed0Envelope < top.interval.low, "\(seed0Envelope) vs \(top.interval)")
        #expect(envelope.disagreeingSeeds.contains(0))
        // (It fails the earlier holdout gate too: the empirical frontier it is checked against
        // follows the better seed's cells, the envelope their mean.)
        #expect(envelope.quality != .pass)
        #expect(law.quality == .seedsDisagree, "\(law.estimate.intervals) \(law.estimate.holdoutError)")
        let laws = report.lawsTable().rows.filter { $0[4] == "score_frontier" }
        #expect(!laws.isEmpty && laws.allSatisfy { $0[17] == "seeds_disagree" })
        // report.md states the gate in words.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("laws-seeds-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try report.write(to: dir)
        #expect(files.contains { $0.hasSuffix("/replication.csv") })
        let csv = try CSVTable.read(path: dir + "/replication.csv")
        #expect(csv.header == Self.header && csv.rows.count == report.replicationTable().rows.count)
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        #expect(md.contains("`score_frontier` (scalerl)") && md.contains(LawQuality.seedsDisagree.words))
        #expect(md.contains("2 seeds"))
    }

    /// seeds_disagree is checked after every other gate, on A and C_mid of score laws (not B,
    /// not the fixed R0) and on every parameter of other forms; no seeds, no grade.
    @Test func gradesSeedsDisagree() {
        let fit = LawFit(form: .scaleRL, values: [0.1, 0.6, 1, 1e10])
        let iv = [Interval(low: 0.1, high: 0.1), Interval(low: 0.55, high: 0.65), Interval(low: 0.9, high: 1.1),
                  Interval(low: 8e9, high: 1.2e10)]
        func law(_ seedValues: [[Double]], holdout: Double = 0.05) -> LawResult {
            LawResult(quantity: "score_frontier", fit: fit, intervals: iv, holdoutError: holdout, nPoints: 12, typicalSE: 0.01,
                      seedFits: seedValues.enumerated().map { SeedFit(seed: UInt64($0), values: $1, intervals: iv) })
        }
        #expect(law([]).quality == .pass)
        #expect(law([[0.1, 0.6, 1, 1e10], [0.1, 0.64, 1.05, 1.1e10]]).quality == .pass)
        #expect(law([[0.1, 0.6, 1, 1e10], [0.1, 0.7, 1, 1e10]]).quality == .seedsDisagree)
        #expect(law([[0.1, 0.6, 1, 1e10], [0.1, 0.6, 1, 2e10]]).disagreeingSeeds == [1])
        // Slack: A within one typical score SE (0.01) of the interval agrees, beyond it not;
        // C_mid within the fits' numerical tolerance (1e-6 relative) agrees, 1e-3 beyond not.
        #expect(law([[0.1, 0.655, 1, 1e10]]).quality == .pass)
        #expect(law([[0.1, 0.665, 1, 1e10]]).quality == .seedsDisagree)
        #expect(law([[0.1, 0.6, 1, 1.2e10 * (1 + 1e-8)]]).quality == .pass)
        #expect(law([[0.1, 0.6, 1, 1.2e10 * (1 + 1e-3)]]).quality == .seedsDisagree)
        #expect(Replication.agrees(0.655, Interval(low: 0.55, high: 0.65), resolution: 0.01) == true)
        #expect(Replication.agrees(0.655, Interval(low: 0.55, high: 0.65)) == false)
        // B and R0 are not headline parameters of a score law.
        #expect(law([[0.3, 0.6, 5, 1e10]]).quality == .pass)
        // An unknown seed value is not a disagreement.
        #expect(law([[0.1, .nan, 1, 1e10]]).quality == .pass)
        // Earlier gates win.
        #expect(law([[0.1, 0.9, 1, 1e10]], holdout: 0.5).quality == .holdoutAbove10Percent)
        // Other forms: every parameter.
        let pl = LawResult(quantity: "steps_star", fit: LawFit(form: .powerLaw, values: [1, 0.3]),
                           intervals: [Interval(low: 0.5, high: 2), Interval(low: 0.2, high: 0.4)], holdoutError: 0.05, nPoints: 5,
                           seedFits: [SeedFit(seed: 4, values: [1, 0.45], intervals: [])])
        #expect(pl.quality == .seedsDisagree && pl.disagreeingSeeds == [4])
        #expect(LawQuality.seedsDisagree.rawValue == "seeds_disagree")
        #expect(LawQuality.allCases.last == .seedsDisagree)
    }

    /// seed_sd on a tiny store: two seeds, one cell each, plus a second seed-0 cell. Each
    /// seed's own frontier at each pooled frontier compute, then the sample SD of the two.
    @Test func seedSDByHand() throws {
        func cell(_ id: String, _ seed: UInt64, _ pts: [(Double, Double)]) -> Cell {
            Cell(id: id, method: "m", taskMix: "t:1", parameters: 1e4, rolloutsPerProblem: 4, problemsPerBatch: 8, seed: seed,
                 curve: pts.map { CurvePoint(compute: $0.0, rollouts: $0.0 / 1e5, score: $0.1) }, flopsPerRollout: 1e5)
        }
        let cells = [cell("a", 0, [(0, 0.1), (1e9, 0.2), (1e10, 0.3)]),
                     cell("b", 0, [(0, 0.1), (1e9, 0.25), (1e10, 0.26)]),
                     cell("c", 1, [(0, 0.12), (1e9, 0.18), (1e10, 0.4)])]
        let report = GridAnalysis.run(CellStore(grid: "sd", cells: cells), score: try ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0), budgets: 4))
        let t = report.frontierTable()
        #expect(t.header == ["method", "task_mix", "settings", "compute_flops", "score", "cell_id", "score_se", "seed_sd"])
        // Pooled frontier: (0, 0.12), (1e9, 0.25), (1e10, 0.4). Seed 0: 0.1, 0.25, 0.3; seed 1: 0.12, 0.18, 0.4.
        // Sample SD of two values = |x − y| / √2.
        let want = [0.02, 0.07, 0.1].map { $0 / 2.0.squareRoot() }
        #expect(t.rows.map { $0[3] } == [csvNumber(0), csvNumber(1e9), csvNumber(1e10)])
        for (row, w) in zip(t.rows, want) {
            let sd = try #require(Double(row[7]))
            #expect(abs(sd - w) < 1e-12, "\(row)")
        }
        #expect(abs(Replication.seedSD(cells: cells, at: [5e8])[0] - 0.02 / 2.0.squareRoot()) < 1e-12)
    }

    /// One seed: no replication rows, no seed fits, empty seed_sd, quality unaffected.
    @Test func oneSeedWritesNoReplication() throws {
        let report = try analyse(seedGrid(seeds: [1]))
        let g = try #require(report.groups.first)
        #expect(g.seeds == [1])
        #expect(g.laws.allSatisfy { $0.seedFits.isEmpty })
        let t = report.replicationTable()
        #expect(t.header == Self.header && t.rows.isEmpty)
        let f = report.frontierTable()
        #expect(!f.rows.isEmpty && f.rows.allSatisfy { $0[7] == "" })
        #expect(g.laws.allSatisfy { $0.quality != .seedsDisagree })
    }
}
