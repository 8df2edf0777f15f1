import ArgumentParser
import Foundation
import PolicyModel

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's config, parameter counts and metadata (and optionally logits).",
        discussion: """
            With --logits 1,5,3 also prints the logits [T, vocab] of that token sequence as \
            JSON, for comparison with an independent implementation such as \
            analysis/reference_gpt.py.
            """)

    @Argument(help: "A .safetensors checkpoint written by rlscale.")
    var checkpoint: String

    @Option(help: "Comma-separated token ids whose logits to print.")
    var logits: String?

    func run() throws {
        let (model, meta) = try Checkpoint.load(checkpoint)
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
