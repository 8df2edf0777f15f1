import ArgumentParser
import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import Tasks

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on the held-out sets, per task, difficulty and pass-rate bucket.",
        discussion: """
            Samples n completions per held-out problem (and one greedy), verifies them exactly, \
            and reports greedy accuracy, avg@k, best@k (unbiased pass@k) and worst@k (all k \
            correct) per task and difficulty level, and per pass-rate bucket: unsolved (no \
            success in K samples), hard (0, 0.0625], medium, easy [0.3, 0.6], solved (> 0.6). \
            Buckets come from --reference (a base checkpoint, usually the one a policy was \
            trained from) or else from the checkpoint's own samples.
            """)

    @Argument(help: "A .safetensors checkpoint.") var checkpoint: String
    @Option(help: "Reference checkpoint whose pass rates define the buckets.") var reference: String?
    @Option(help: "Samples per problem (n).") var samples: Int = 32
    @Option(parsing: .upToNextOption, help: "k values to report.") var k: [Int] = [1, 4, 16]
    @Option(help: "Held-out problems per family and difficulty.") var problems: Int = 16
    @Option(help: "Held-out set seed.") var evalSeed: UInt64 = 1234
    @Option(help: "Task families (default: those in the checkpoint's metadata, else all).") var tasks: String?
    @Option(help: "BLAS threads.") var threads: Int = 1
    @Flag(help: "Print one JSON object.") var json = false

    struct Output: Codable {
        var checkpoint: String
        var reference: String?
        var samples: Int
        var ks: [Int]
        var problemsPerLevel: Int
        var evalSeed: UInt64
        var groups: [GroupMetrics]
        var cost: EvalCost
    }

    func run() throws {
        setBLASThreads(threads)
        for x in k where x < 1 || x > samples { throw ValidationError("--k: \(x) must lie in 1...\(samples)") }
        let (model, meta) = try Checkpoint.load(checkpoint)
        let mixture: TaskMixture
        do { mixture = try TaskMixture.parse(tasks ?? meta["rlscale.tasks"] ?? TaskMixture.uniform.description) } catch {
            throw ValidationError("--tasks: \(error)")
        }
        let set = EvalSetSpec(problemsPerLevel: problems, seed: evalSeed).build(mixture.families)
        let opts = EvalOptions(samples: samples)
        let (outcomes, cost) = try Evaluator.run(model, on: set, options: opts, seed: evalSeed)
        var buckets = Metrics.buckets(from: outcomes)
        if let reference {
            let (ref, _) = try Checkpoint.load(reference)
            buckets = Metrics.buckets(from: try Evaluator.run(ref, on: set, options: opts, seed: evalSeed).outcomes)
        }
        let groups = Metrics.summarize(outcomes, set: set, ks: k, buckets: buckets)
        if json {
            let out = Output(
                checkpoint: checkpoint, reference: reference, samples: samples, ks: k, problemsPerLevel: problems,
                evalSeed: evalSeed, groups: groups, cost: cost)
            try printJSON(out)
        } else {
            print(Metrics.table(groups, ks: k))
        }
    }
}
