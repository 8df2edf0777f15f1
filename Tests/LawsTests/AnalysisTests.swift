import Foundation
import Laws
import RLCommon
import Testing

/// A synthetic grid: arms in n that cross (small n rises early to a low ceiling, large n
/// late to a high one), two model sizes, two seeds, noise on every evaluation.
func syntheticGrid(method: String = "grpo", lift: Double = 0) -> [Cell] {
    var cells: [Cell] = []
    var rng = SeededRNG(seed: 77).derived(method)
    for bigN in [1e4, 4e4] {
        for n in [4, 16] {
            for seed in 0..<2 {
                let a = (n == 4 ? 0.45 : 0.8) + (bigN > 2e4 ? 0.05 : 0) + lift
                let cmid = (n == 4 ? 3e9 : 3e10) * (bigN > 2e4 ? 1.5 : 1)
                let fpr = 1e5 * bigN / 1e4
                let budget = 1e12
                var curve = [CurvePoint(compute: 0, rollouts: 0, score: 0.1 + 0.005 * rng.gaussian())]
                for c in logSpace(8, 12, 9) {
                    curve.append(CurvePoint(compute: c, rollouts: c / fpr,
                                            score: 0.1 + (a - 0.1) / (1 + pow(cmid / c, 1.1)) + 0.01 * rng.gaussian()))
                }
                cells.append(Cell(id: "\(method)-N\(Int(bigN))-n\(n)-s\(seed)", method: method, taskMix: "add:1,mul:1",
                                  parameters: bigN, rolloutsPerProblem: n, problemsPerBatch: 8, seed: UInt64(seed), curve: curve,
                                  flopsPerRollout: fpr * (budget > 0 ? 1 : 0)))
            }
        }
    }
    return cells
}

@Suite("Grid analysis and report")
struct AnalysisTests {
    @Test func allocationFollowsTheCrossingArms() throws {
        let store = CellStore(grid: "synth", cells: syntheticGrid() + syntheticGrid(method: "dapo", lift: 0.05))
        let report = GridAnalysis.run(store, score: try ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 20, seed: 2), budgets: 12))
        #expect(report.groups.map(\.method) == ["dapo", "grpo"])
        let g = try #require(report.groups.last)
        #expect(g.frontier.first?.compute == 0)
        let env = try #require(g.envelopes[.rollouts])
        #expect(env.first?.armValue == 4)
        #expect(env.last?.armValue == 16)
        #expect(g.allocation.count == 12)
        let last = try #require(g.allocation.last)
        #expect(last.rolloutsPerProblem == 16)
        #expect(last.problemsPerBatch == 8)
        // steps = rollouts / (Bp·n), rollouts = C / F_roll(N*).
        let fpr = 1e5 * last.parameters / 1e4
        #expect(relClose(last.rollouts, last.budget / fpr, 1e-12))
        #expect(relClose(last.steps, last.rollouts / (8 * 16), 1e-12))
        #expect(last.interval.low <= last.score && last.score <= last.interval.high)
        // The frontier law sees the ceiling near the high arm's asymptote.
        let law = try #require(g.law("score_frontier", .scaleRL))
        #expect(law.estimate.fit.isOK)
        #expect(abs(law.estimate.fit.value("A") - 0.85) < 0.1)
        #expect(law.estimate.fit.value("R0") == g.initialScore)
        // n* rises: the joint argmax has n = 4 early and n = 16 late. (At the first budget, where
        // no configuration has moved off its step-0 score, the argmax is the configuration with
        // the highest noisy step-0 mean, whatever its n.)
        let nLaw = try #require(g.law("n_star", .powerLaw))
        #expect(nLaw.data.y == g.allocation.map(\.rolloutsPerProblem))
        #expect(g.allocation.dropFirst().prefix(5).allSatisfy { $0.rolloutsPerProblem == 4 })
        #expect(g.allocation.suffix(4).allSatisfy { $0.rolloutsPerProblem == 16 })
        #expect(nLaw.estimate.fit.isOK && nLaw.estimate.fit.value("b") > 0, "\(nLaw.estimate.status)")
        // DAPO (lifted) beats GRPO at the largest budget.
        let dapo = try #require(report.groups.first)
        #expect(dapo.allocation.last!.score > last.score)
    }

    @Test func writesEveryOutput() throws {
        let store = CellStore(grid: "synth", cells: syntheticGrid())
        let report = GridAnalysis.run(store, score: try ScoreSelector(),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 10, seed: 2), budgets: 8))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("laws-out-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try report.write(to: dir)
        let names = Set(files.map { ($0 as NSString).lastPathComponent })
        for n in ["laws.csv", "allocation.csv", "frontier.csv", "report.md", "frontier-grpo-add_1_mul_1.svg",
                  "n_star-grpo-add_1_mul_1.svg", "N_star-grpo-add_1_mul_1.svg", "curves-n-grpo-add_1_mul_1.svg", "methods-add_1_mul_1.svg"] {
            #expect(names.contains(n), "\(n)")
        }
        let laws = try CSVTable.read(path: dir + "/laws.csv")
        #expect(laws.header == ["grid", "method", "task_mix", "settings", "quantity", "form", "parameter", "value", "ci_low", "ci_high",
                                "n_points", "n_runs", "r2", "rmse", "holdout_error", "holdout_metric", "status", "quality",
                                "runs_needed", "eval_problems_needed", "core_hours_needed"])
        #expect(laws.rows.allSatisfy { $0[2] == "add:1,mul:1" && $0[0] == "synth" })
        #expect(laws.rows.contains { $0[4] == "score[n=16]" && $0[6] == "A" && $0[16].hasPrefix("ok") })
        let alloc = try CSVTable.read(path: dir + "/allocation.csv")
        #expect(alloc.rows.count == 8)
        #expect(alloc.header == ["method", "task_mix", "settings", "budget_flops", "budget_rollouts", "N_opt", "n_opt", "Bp_opt", "steps_opt",
                                 "predicted_score", "predicted_score_ci_low", "predicted_score_ci_high",
                                 "n_opt_freq", "N_opt_freq", "Bp_opt_freq", "n_opt_cont", "N_opt_cont", "Bp_opt_cont",
                                 "n_opt_status", "N_opt_status", "Bp_opt_status"])
        let frontier = try CSVTable.read(path: dir + "/frontier.csv")
        #expect(frontier.rows.count == report.groups[0].frontier.count)
        let svg = try String(contentsOfFile: dir + "/frontier-grpo-add_1_mul_1.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("RL compute C (FLOPs)") && svg.contains("empirical frontier"))
        #expect(svg.contains("envelope (95% CI)"))
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        #expect(md.contains("`score_frontier` (scalerl)") && md.contains("frontier-grpo-add_1_mul_1.svg"))
        #expect(md.contains("`score_envelope` (envelope): upper envelope of 4 configuration laws; reaches "))
    }
}
