import ArgumentParser
import BasePolicies
import Evaluation
import Foundation
import Grid
import Laws
import PolicyModel
import RLCommon
import RLTraining
import ResultSchema
import Rewards
import Tasks

/// `rlscale bon GRID`: the best-of-n arm of the over-optimisation study, without RL.
struct BestOfNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bon",
        abstract: "Best-of-n against each proxy reward of a grid: sample m completions per problem from the base, pick by proxy, score by gold; fit the gao_bon law.",
        discussion: """
            For every base and every non-gold reward of the grid's cells (with the cells' tasks \
            and difficulties), samples M completions of each of the cells' held-out eval problems \
            from the base at temperature 1 and computes, for n = 1, 2, 4, …, M, the exact expected \
            gold and proxy reward of the proxy's pick among n (every n-subset, uniform tie-breaking). \
            d = √(log n − (n − 1)/n). Writes bon.csv (one row per arm and n, with SEs over problems) \
            and bon_laws.csv (gao_bon fitted per arm, bootstrap over problems, leak-free holdout of \
            the largest n) to OUT. Sampling is evaluation: nothing is charged; its FLOPs are printed.
            """)

    @Argument(help: "Grid file (its bases and rewards).") var grid: String
    @Option(help: "Results root (bases are cached in RESULTS/bases).") var results: String = "results"
    @Option(help: "Samples per problem M (n runs over powers of 2 up to M).") var samples: Int = 64
    @Option(help: "Output folder (default analysis/<grid>).") var out: String?
    @Option(help: "Bootstrap resamples over problems (0 = none).") var bootstrap: Int = 200
    @Option(help: "Seed of the samples and the bootstrap.") var seed: UInt64 = 0

    func run() throws {
        guard samples >= 2 else { throw ValidationError("--samples must be at least 2, got \(samples)") }
        let g = try loadGrid(grid)
        let store = ResultStore(root: results, grid: g.name)
        // One arm per base × reward (× tasks and difficulties): the first cell that asks for it.
        var arms: [(key: String, cell: GridCell)] = []
        for c in g.cells where !c.config.rewardSource.isGold {
            let key = "\(c.base)|\(c.config.rewardSource)|\(c.config.rewardModel.map { "\($0)" } ?? "")|\(c.config.tasks)|\(c.config.minDifficulty)-\(c.config.maxDifficulty ?? 0)"
            if !arms.contains(where: { $0.key == key }) { arms.append((key, c)) }
        }
        guard !arms.isEmpty else { throw ValidationError("\(grid): no cell trains on a proxy reward (every reward is gold)") }
        var rows: [BestOfNRow] = []
        var fitted: [OverOptimisationArm] = []
        var flops = 0.0
        for (_, cell) in arms {
            guard let spec = g.base(named: cell.base) else { continue }
            let (base, record) = try Worker.obtainBase(spec, grid: g, store: store)
            guard let eval = record.evaluation else { throw ValidationError("base \(spec.name) has no evaluation") }
            let set = eval.set.build(record.spec.corpus.mixture.families)
            let ranges = cell.config.trainRanges(corpus: record.spec.corpus)
            // The cells' train_dist problems: their levels, and a bucketed pool's bucket.
            let buckets = Metrics.buckets(from: eval.outcomes), bucket = cell.config.poolSize == nil ? nil : cell.config.trainBucket
            var perLevel: [String: Int] = [:]
            let problems = set.problems.enumerated().filter { i, p in
                guard let r = ranges[p.family], r.contains(p.difficulty), bucket == nil || buckets[i] == bucket else { return false }
                perLevel["\(p.family)/\(p.difficulty)", default: 0] += 1
                return perLevel["\(p.family)/\(p.difficulty)", default: 0] <= cell.config.evalProblemsPerLevel
            }.map(\.element)
            let model = try Worker.rewardModel(for: cell.config, policy: (base, record), grid: g, store: store)
            var reward = TrainingReward(
                source: cell.config.rewardSource, model: model, rng: SeededRNG(seed: seed).derived("bon-reward"))
            var rng = SeededRNG(seed: seed).derived("bon-\(cell.base)")
            let (drawn, f) = try BestOfN.sample(base, problems: problems, m: samples, reward: &reward, rng: &rng)
            flops += f
            let label = cell.config.rewardSource.description
                + (cell.config.rewardModel.map { "[\($0.size),\($0.labels),\(knobNumber($0.labelNoise)),\($0.ensemble)]" } ?? "")
            let arm = "\(label) on \(cell.base)"
            var points: [(n: Int, d: Double, gold: Double, goldSE: Double, unit: Int)] = []
            var n = 1
            var ns: [Int] = []
            while n <= samples { ns.append(n); n *= 2 }
            for n in ns {
                let e = drawn.map { BestOfN.expected($0, n: n) }
                // The pick's chance of being accepted by the proxy and rejected by gold.
                let hack: [Double] = drawn.map { s in
                    var hacked: [Double] = []
                    for (p, g) in zip(s.proxy, s.gold) { hacked.append(RuleReward.isHack(reward: p, gold: g) ? 1 : 0) }
                    return BestOfN.expected(BestOfN.Samples(proxy: s.proxy, gold: hacked), n: n).gold
                }
                let g = RewardDiagnostics.clustered(e.map { [$0.gold] }), p = RewardDiagnostics.clustered(e.map { [$0.proxy] })
                let h = RewardDiagnostics.clustered(hack.map { [$0] })
                rows.append(BestOfNRow(
                    arm: arm, reward: cell.config.rewardSource.description, base: cell.base, problems: problems.count, samples: samples,
                    n: n, d: BestOfN.d(n: n), gold: g.mean, goldSE: g.se, proxy: p.mean, proxySE: p.se, hackRate: h.mean))
                for (i, x) in e.enumerated() { points.append((n: n, d: BestOfN.d(n: n), gold: x.gold, goldSE: .nan, unit: i)) }
            }
            let key = OverOptimisationArmKey(
                method: "best_of_n", reward: cell.config.rewardSource.description, rewardModel: cell.config.rewardModel,
                base: cell.base, parameters: record.nonEmbeddingParameters, rolloutsPerProblem: samples,
                setting: OverOptimisationArmKey.setting(of: cell.config))
            fitted.append(OverOptimisation.fitBoN(
                points: points, key: key,
                options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: max(0, bootstrap), seed: seed))))
            print("bon \(arm): \(problems.count) problems × \(samples) samples")
        }
        let dir = out ?? "analysis/\(g.name)"
        var folder = try OutputFolder(dir)
        var csv = "arm,reward,base,problems,samples,n,d,gold,gold_se,proxy,proxy_se,hack_rate\n"
        for r in rows {
            csv += [CSVField.quote(r.arm), CSVField.quote(r.reward), r.base, "\(r.problems)", "\(r.samples)", "\(r.n)", fmt(r.d),
                    fmt(r.gold), fmt(r.goldSE), fmt(r.proxy), fmt(r.proxySE), fmt(r.hackRate)].joined(separator: ",") + "\n"
        }
        try folder.put("bon.csv", csv)
        try OverOptimisationReport(arms: fitted).write(to: dir, table: "bon_laws.csv", plotPrefix: "bon_")
        for a in fitted {
            if let l = a.law(.gaoBoN) {
                print(String(format: "%@: alpha %.4g beta %.4g d* %.3g R* %.3g, quality %@", a.key.label, l.value("alpha"), l.value("beta"),
                             l.peak.d, l.peak.gain, l.quality.rawValue))
            }
        }
        print(String(format: "wrote %@/bon.csv, %@/bon_laws.csv and plots (%d arms; %.3g sampling FLOPs, not charged)", dir, dir, fitted.count, flops))
    }
}

/// One row of bon.csv.
struct BestOfNRow {
    var arm: String, reward: String, base: String
    var problems: Int, samples: Int, n: Int
    var d: Double, gold: Double, goldSE: Double?, proxy: Double, proxySE: Double?, hackRate: Double
}

private func fmt(_ x: Double?) -> String { x.map { $0.isFinite ? String(format: "%.6g", $0) : "" } ?? "" }
