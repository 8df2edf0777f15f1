import PolicyModel
import Tasks

/// Prompt + completion sequences laid end to end (no padding), with the loss on
/// completion tokens only. Row r's position t is `position(r, t)` in `tokens`, `targets`
/// and every per-position output of a forward pass over the whole batch.
public struct SequenceBatch: Sendable {
    /// Every sequence's tokens, one after another.
    public var tokens: [Int32]
    /// Next-token target of each position: the token after it when that token belongs to
    /// the completion, −1 otherwise.
    public var targets: [Int32]
    /// Each sequence's length: its prompt and completion, less the last token (which
    /// nothing follows).
    public var lengths: [Int]
    /// Where each sequence starts in `tokens`.
    public var starts: [Int]
    /// Positions carrying a target (completion tokens).
    public var targetCount: Int

    public var rows: Int { lengths.count }

    /// The position of index `t` of sequence `row`.
    @inline(__always)
    public func position(_ row: Int, _ t: Int) -> Int { starts[row] + t }

    /// Lays out `(prompt, completion)` pairs; position t of a pair targets token t + 1
    /// whenever that token belongs to the completion.
    public init(_ pairs: [(prompt: [Int32], completion: [Int32])]) {
        lengths = pairs.map { $0.prompt.count + $0.completion.count - 1 }
        starts = []
        starts.reserveCapacity(pairs.count)
        tokens = []
        tokens.reserveCapacity(lengths.reduce(0, +))
        targets = []
        targets.reserveCapacity(tokens.capacity)
        targetCount = 0
        for p in pairs {
            starts.append(tokens.count)
            let seq = p.prompt + p.completion
            for t in 0..<(seq.count - 1) {
                tokens.append(seq[t])
                if t + 1 >= p.prompt.count {
                    targets.append(seq[t + 1])
                    targetCount += 1
                } else {
                    targets.append(-1)
                }
            }
        }
    }

    /// Positions of the sequences `rows`, end to end.
    public func positions(_ rows: Range<Int>) -> Range<Int> {
        guard !rows.isEmpty else { return 0..<0 }
        return starts[rows.lowerBound]..<(starts[rows.upperBound - 1] + lengths[rows.upperBound - 1])
    }

    /// Runs `model` on the sequences `rows` (all of them by default); afterwards the
    /// model's outputs at position `position(r, t) − positions(rows).lowerBound` describe
    /// row r's index t.
    public func forward(_ model: Transformer, rows: Range<Int>? = nil) throws(ModelError) {
        guard let rows, rows != 0..<self.rows else { return try model.forward(tokens: tokens, lengths: lengths) }
        try model.forward(tokens: Array(tokens[positions(rows)]), lengths: Array(lengths[rows]))
    }

    /// Forward FLOPs of the sequences `rows` (all by default) under `config`: each
    /// sequence at its own length, as the engine computes them.
    public func forwardFLOPs(_ config: ModelConfig, rows: Range<Int>? = nil) -> Double {
        (rows ?? 0..<self.rows).reduce(0) { $0 + FLOPs.forwardSequence(config, length: lengths[$1]) }
    }

    /// Forward plus backward FLOPs of training on the whole batch (`FLOPs.trainSequence`
    /// of each sequence at its own length).
    public func trainFLOPs(_ config: ModelConfig) -> Double {
        lengths.reduce(0) { $0 + FLOPs.trainSequence(config, length: $1) }
    }

    /// Row ranges of at most `Transformer.passRows` sequences covering the batch: run one
    /// forward pass each when a batch is evaluated only for its logits.
    public var passes: [Range<Int>] { Transformer.passes(rows: rows) }
}
