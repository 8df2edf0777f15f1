import ArgumentParser
import Evaluation
import Foundation
import PolicyModel
import RLCommon
import ResultSchema
import Tasks

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's config, parameter counts and metadata (and optionally logits).",
        discussion: """
            With --logits 1,5,3 also prints the logits [T, vocab] of that token sequence as \
            JSON, for comparison with an independent implementation such as \
            analysis/reference_gpt.py. With --episodes N, samples N multi-turn episodes \
            (--turns, --feedback) on held-out problems of --family at --difficulty and prints \
            them as text, turn by turn.
            """)

    @Argument(help: "A .safetensors checkpoint written by rlscale.")
    var checkpoint: String

    @Option(help: "Comma-separated token ids whose logits to print.")
    var logits: String?

    @Option(help: "Sample this many multi-turn episodes and print them.") var episodes: Int?
    @Option(help: "Episodes: attempts per episode.") var turns: Int = 4
    @Option(help: "Episodes: \(Feedback.spellings).") var feedback: String = CellDefaults.feedback.description
    @Option(help: "Episodes: the task family.") var family: String = "sort"
    @Option(help: "Episodes: the difficulty.") var difficulty: Int = 2
    @Option(help: "Episodes: seed.") var seed: UInt64 = 0

    func run() throws {
        let (model, meta) = try Checkpoint.load(checkpoint)
        if let episodes {
            guard let fb = Feedback(feedback) else { throw ValidationError("--feedback: '\(feedback)' is not \(Feedback.spellings)") }
            guard let f = TaskFamilies.named(family) else { throw ValidationError("--family: unknown '\(family)' (known: \(TaskFamilies.names.joined(separator: ", ")))") }
            var rng = SeededRNG(seed: seed).derived("inspect-episodes")
            let problems = (0..<episodes).map { _ in TaskFamilies.sample(f, difficulty: difficulty, split: .heldOut, rng: &rng) }
            let layout = EpisodeLayout(turns: turns, feedback: fb)
            guard problems.allSatisfy(layout.fits) else { throw ValidationError("--turns: \(turns) turns do not fit \(family) difficulty \(difficulty)") }
            let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
            let (eps, _) = try EpisodeSampler.sample(model, problems: problems, layout: layout, options: opts, rng: &rng)
            for (p, e) in zip(problems, eps) {
                var line = Vocabulary.decode(p.promptTokens)
                for t in e.turns {
                    line += "[" + Vocabulary.decode(e.completion.tokens[t.start..<t.end]) + "]"
                    line += Vocabulary.decode(e.completion.tokens[t.end..<t.feedbackEnd])
                }
                print(line + "   solved at " + (e.solvedAt.map(String.init) ?? "-") + ", reference " + p.solution)
            }
            return
        }
        if let logits {
            var toks: [Int32] = []
            for part in logits.split(separator: ",") {
                guard let t = Int32(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--logits: '\(part)' is not a token id")
                }
                toks.append(t)
            }
            try model.forward(tokens: toks, batch: 1, length: toks.count)
            let out = model.logits.map { Double($0) }
            print(String(decoding: try JSONSerialization.data(withJSONObject: out), as: UTF8.self))
            return
        }
        let c = model.config
        print("config: \(c)")
        print("parameters: \(c.parameterCount) total, \(c.nonEmbeddingParameterCount) non-embedding")
        for k in meta.keys.sorted() { print("  \(k) = \(meta[k] ?? "")") }
    }
}
