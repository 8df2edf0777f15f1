/// A fixed-size, zero-initialised block of floats owned by one object. The engine lays
/// out every parameter, gradient and activation buffer up front in these (as llm.c does)
/// and works on them through raw pointers in the hot loops.
final class FloatBuffer {
    let base: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { base.deallocate() }

    func zero() { base.update(repeating: 0, count: count) }

    var buffer: UnsafeMutableBufferPointer<Float> { .init(start: base, count: count) }
}

/// Errors the engine reports for bad input, instead of crashing.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    case shapeMismatch(String)
    case tokenOutOfRange(token: Int32, vocab: Int)
    case sequenceTooLong(length: Int, context: Int)
    case emptyPrompt(index: Int)

    public var description: String {
        switch self {
        case .invalidConfig(let s): "invalid model config: \(s)"
        case .shapeMismatch(let s): "shape mismatch: \(s)"
        case .tokenOutOfRange(let t, let v): "token \(t) is outside the vocabulary 0..<\(v)"
        case .sequenceTooLong(let l, let c): "sequence length \(l) exceeds the model context \(c)"
        case .emptyPrompt(let i): "prompt \(i) is empty (every prompt needs at least a BOS token)"
        }
    }
}
