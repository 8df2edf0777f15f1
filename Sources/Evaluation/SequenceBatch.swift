import Tasks

/// One padded training batch of prompt + completion sequences, with the loss on
/// completion tokens only.
public struct SequenceBatch: Sendable {
    public var tokens: [Int32]
    public var targets: [Int32]
    public var rows: Int
    public var length: Int
    /// Positions carrying a target (completion tokens).
    public var targetCount: Int

    /// Right-pads `(prompt, completion)` pairs with PAD; position t targets token t + 1
    /// whenever that token belongs to the completion.
    public init(_ pairs: [(prompt: [Int32], completion: [Int32])]) {
        rows = pairs.count
        length = pairs.map { $0.prompt.count + $0.completion.count - 1 }.max() ?? 0
        tokens = Array(repeating: Vocabulary.pad, count: rows * length)
        targets = Array(repeating: -1, count: rows * length)
        targetCount = 0
        for (b, p) in pairs.enumerated() {
            let seq = p.prompt + p.completion
            for t in 0..<(seq.count - 1) {
                tokens[b * length + t] = seq[t]
                if t + 1 >= p.prompt.count {
                    targets[b * length + t] = seq[t + 1]
                    targetCount += 1
                }
            }
        }
    }
}
