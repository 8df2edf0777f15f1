import ArgumentParser
import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import Tasks

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pretrain (or fetch from the cache) base policies on the noisy-solver corpus.",
        discussion: """
            Builds one base of the ladder (--size), a custom shape (--d-model/--layers/--heads), \
            or the whole ladder (--ladder). Bases are cached under RESULTS/bases keyed by a \
            hash of everything that determines them, so the grid runner and later calls reuse \
            them. Each base is evaluated on the held-out set once (K samples per problem), \
            which fixes every held-out problem's pass-rate bucket. Prints pretraining FLOPs, \
            wall time and pass@1 per task.
            """)

    @Option(help: "Ladder size: \(BaseLadder.sizes.map(\.name).joined(separator: ", ")).")
    var size: String?

    @Flag(help: "Build every size of the ladder.")
    var ladder = false

    @Option(name: .customLong("d-model"), help: "Custom shape: model width.")
    var dModel: Int?
    @Option(help: "Custom shape: layers.") var layers: Int = 2
    @Option(help: "Custom shape: attention heads.") var heads: Int = 2

    @Option(help: "Task mixture, e.g. add:1,mul:1,sort:1,chain:1.")
    var tasks: String = TaskMixture.uniform.description

    @Option(help: "Pretraining tokens per non-embedding parameter.")
    var tokensPerParam: Double = 8

    @Option(help: "Minimum pretraining tokens.")
    var minTokens: Int = 2_000_000

    @Option(help: "Share of pretraining examples in the privileged rendering (the reference solution shown).")
    var privilegedFraction: Double = CorpusConfig.defaultPrivilegedFraction

    @Option(help: "Share of plain pretraining examples written as multi-turn episodes (rejected attempts, feedback, a retry).")
    var episodeFraction: Double = 0

    @Option(help: "Held-out problems per family and difficulty.")
    var evalProblems: Int = 16

    @Option(help: "Samples per held-out problem (K for the pass-rate buckets).")
    var evalSamples: Int = 32

    @Option(help: "Pretraining seed.") var seed: UInt64 = 0
    @Option(help: "BLAS threads.") var threads: Int = 1
    @Option(help: "Results directory (bases go to RESULTS/bases).") var results: String = "results"
    @Flag(help: "Print the records as JSON.") var json = false

    func run() throws {
        setBLASThreads(threads)
        let corpus: CorpusConfig
        do { corpus = CorpusConfig(
                mixture: try TaskMixture.parse(tasks), privilegedFraction: privilegedFraction, episodeFraction: episodeFraction) } catch {
            throw ValidationError("--tasks: \(error)")
        }
        guard (0...1).contains(privilegedFraction) else {
            throw ValidationError("--privileged-fraction: \(privilegedFraction) is not in [0, 1]")
        }
        guard (0...1).contains(episodeFraction) else { throw ValidationError("--episode-fraction: \(episodeFraction) is not in [0, 1]") }
        var specs: [BaseSpec] = []
        if ladder {
            specs = BaseLadder.sizes.compactMap {
                BaseLadder.spec($0.name, corpus: corpus, tokensPerParameter: tokensPerParam, minTokens: minTokens, seed: seed)
            }
        } else if let size {
            guard let s = BaseLadder.spec(size, corpus: corpus, tokensPerParameter: tokensPerParam, minTokens: minTokens, seed: seed)
            else { throw ValidationError("--size: unknown size '\(size)' (known: \(BaseLadder.sizes.map(\.name).joined(separator: ", ")))") }
            specs = [s]
        } else if let dModel {
            let shape = BaseSpec.shape(dModel: dModel, layers: layers, heads: heads)
            if let why = shape.validationError() { throw ValidationError(why) }
            specs = [BaseSpec(name: "d\(dModel)L\(layers)", model: shape, corpus: corpus, tokensPerParameter: tokensPerParam, minTokens: minTokens, seed: seed)]
        } else {
            throw ValidationError("give --size, --ladder or --d-model")
        }
        let cache = BaseCache(directory: results + "/bases")
        var records: [BaseRecord] = []
        for spec in specs {
            let (_, rec) = try cache.obtain(
                spec, evalSet: EvalSetSpec(problemsPerLevel: evalProblems), evalOptions: EvalOptions(samples: evalSamples)
            ) { msg in FileHandle.standardError.write(Data((msg + "\n").utf8)) }
            records.append(rec)
        }
        if json {
            try printJSON(records)
            return
        }
        print(LadderTable.render(records, cache: cache))
    }
}

/// The ladder table of the README: size, parameters, pretraining FLOPs and time, pass@1
/// (avg@1 over K samples) per task over all held-out levels, bucket counts, and the hint
/// uplift overall and on the easy bucket.
enum LadderTable {
    static func render(_ records: [BaseRecord], cache: BaseCache) -> String {
        let fams = records.first?.spec.corpus.mixture.families.map(\.name) ?? []
        var s = "| size | params | non-emb params | pretrain tokens | pretrain FLOPs | wall s |"
        s += fams.map { " \($0) pass@1 |" }.joined() + " solved/easy/medium/hard/unsolved | hint uplift: all | easy |\n"
        s += "|---|---|---|---|---|---|" + fams.map { _ in "---|" }.joined() + "---|---|---|\n"
        for r in records {
            s += "| \(r.spec.name) | \(r.parameters) | \(r.nonEmbeddingParameters) | \(r.tokens) | "
            s += String(format: "%.3g | %.0f |", r.trainFLOPs, r.wallSeconds)
            let summary = r.evaluation?.summary ?? []
            for f in fams {
                let all = summary.first { $0.family == f && $0.group == "all" }
                s += String(format: " %.3f |", all?.avg["1"] ?? .nan)
            }
            var counts: [PassBucket: Int] = [:]
            for o in r.evaluation?.outcomes ?? [] { counts[PassBucket.of(successes: o.successes, samples: o.samples), default: 0] += 1 }
            s += " " + [PassBucket.solved, .easy, .medium, .hard, .unsolved].map { String(counts[$0] ?? 0) }.joined(separator: "/") + " |"
            for bucket in ["all", PassBucket.easy.rawValue] {
                s += r.evaluation?.uplift(bucket: bucket).map { String(format: " %+.3f ± %.3f (%d) |", $0.uplift, $0.se ?? .nan, $0.problems) } ?? " – |"
            }
            s += "\n"
        }
        return s
    }
}
