import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Tasks

/// A fixed GRPO cell per base-ladder size, for `rlscale bench --cell`: what a grid's
/// worker actually spends its time on, end to end (sampling, training, evaluation and
/// everything else), in charged FLOPs per wall second.
///
/// The base has the ladder's shape but untrained (seeded) weights, so the benchmark
/// needs no pretraining and is the same workload on every machine: its completions run
/// until a sampled EOS (about 23 tokens on average) or the 48-token cap, much as a
/// pretrained base's do. Its pass buckets come from a small real evaluation.
public enum CellBenchmark {
    /// Budgets per ladder size: each cell takes seconds, not minutes, on one core.
    public static let budgets: [String: Double] = ["xs": 1e11, "s": 2e11, "m": 5e11, "l": 1e12]

    public static func config(budget: Double) -> CellConfig {
        // The training mixture and eval settings of grids/quick.toml.
        CellConfig(
            method: "grpo", rolloutsPerProblem: 8, problemsPerBatch: 8, budgetFLOPs: budget, learningRate: 5e-5,
            tasks: (try? TaskMixture.parse("mul:1,sort:1")) ?? .uniform, seed: 0, evalPoints: 8, evalSamples: 8,
            evalProblemsPerLevel: 4)
    }

    /// Runs the cell of ladder size `size`; nil for an unknown size.
    public static func run(size: String) throws -> CellResult? {
        guard let spec = BaseLadder.spec(size), let budget = budgets[size] else { return nil }
        let model = try Transformer(config: spec.model, seed: 1)
        let setSpec = EvalSetSpec(problemsPerLevel: 4, seed: 5)
        let eval = try Pretraining.evaluate(model, spec: spec, set: setSpec, options: EvalOptions(samples: 4))
        let record = BaseRecord(spec: spec, evaluation: eval)
        return try CellRunner(config: config(budget: budget), base: model, baseRecord: record).run()
    }
}
