// The engine's kernel interface: what every SIMD level's kernel module implements
// (KernelsAVX512, KernelsAVX2, KernelsPortable: one source, Sources/KernelSource, compiled
// for each instruction set) and the value types their signatures share. PolicyModel picks
// one module at start-up (`SIMDLevel`) and calls it through `EngineKernels`.

public typealias FMut = UnsafeMutablePointer<Float>
public typealias FPtr = UnsafePointer<Float>

/// Which normalisation the pre-norm blocks and the final norm use.
public enum NormKind: String, Codable, Sendable, CaseIterable {
    /// LayerNorm with learned scale and bias: y = (x − mean) / sqrt(var + eps) · w + b.
    case layerNorm = "layernorm"
    /// RMSNorm with learned scale only: y = x / sqrt(mean(x²) + eps) · w.
    case rmsNorm = "rmsnorm"
}

/// Slots one head's row of `count` attention probabilities occupies: whole 8-float
/// vectors, so that its last partial vector is read and written whole.
@inline(__always)
public func attentionStride(_ count: Int) -> Int { (count + 7) & ~7 }

/// The sequences of one forward pass laid end to end, with no padding: position n belongs
/// to the sequence that starts at `start[n]` and sits at index n − start[n] in it. Every
/// layer works on the N = Σ lengths real positions; attention keeps to each sequence.
public struct PackedLayout: Sendable, Equatable {
    /// Each sequence's length, in order.
    public let lengths: [Int]
    /// For each position, the position where its sequence starts.
    public let start: [Int]
    /// For each position, the offset of its heads' probability rows within one layer's
    /// attention buffer (head h's row at + h · attentionStride(t + 1)).
    public let attention: [Int]
    /// Floats one layer's attention probabilities take.
    public let attentionFloats: Int

    public init(lengths: [Int], heads: Int) {
        self.lengths = lengths
        var start: [Int] = [], attention: [Int] = [], offset = 0
        start.reserveCapacity(lengths.reduce(0, +))
        attention.reserveCapacity(start.capacity)
        for length in lengths {
            let s0 = start.count
            for t in 0..<length {
                start.append(s0)
                attention.append(offset)
                offset += heads * attentionStride(t + 1)
            }
        }
        self.start = start
        self.attention = attention
        attentionFloats = offset
    }

    /// Positions of the pass (Σ lengths).
    public var positions: Int { start.count }
}

/// The engine's kernels, one function per layer pass (forward and backward, as llm.c lays
/// them out) plus the element-wise helpers the sampler and the optimiser call. Every
/// implementation computes the same bits from the same inputs: the modules share one
/// source, whose vectors have a fixed width (lanes are IEEE operations, never contracted
/// into FMAs), so a SIMD level changes only how many lanes one instruction carries.
public protocol EngineKernels {
    static func normForward(
        _ kind: NormKind, _ out: FMut, _ mean: FMut, _ rstd: FMut, _ inp: FPtr, _ w: FPtr, _ bias: FPtr?, N: Int, C: Int, eps: Float)
    static func normBackward(
        _ kind: NormKind, _ dinp: FMut, _ dw: FMut, _ dbias: FMut?, _ dout: FPtr, _ inp: FPtr, _ w: FPtr, _ mean: FPtr,
        _ rstd: FPtr, N: Int, C: Int)
    static func linearForward(_ out: FMut, _ inp: FPtr, _ w: FPtr, _ bias: FPtr, N: Int, IN: Int, OUT: Int, accumulate: Bool)
    static func linearBackward(
        _ dinp: FMut, _ dw: FMut, _ dbias: FMut, _ dout: FPtr, _ inp: FPtr, _ w: FPtr, N: Int, IN: Int, OUT: Int,
        accumulateInput: Bool)
    static func attendRow(_ out: FMut, _ probs: FMut, q: FPtr, k: FPtr, v: FPtr, ld: Int, t: Int, C: Int, NH: Int, scale: Float)
    static func attentionForward(_ out: FMut, _ att: FMut, _ qkv: FPtr, layout: PackedLayout, C: Int, NH: Int)
    static func attentionBackward(
        _ dqkv: FMut, _ scratch: FMut, _ dout: FPtr, _ qkv: FPtr, _ att: FPtr, layout: PackedLayout, C: Int, NH: Int)
    static func encoderForward(_ out: FMut, _ tokens: UnsafePointer<Int32>, _ wte: FPtr, _ wpe: FPtr, layout: PackedLayout, C: Int)
    static func encoderBackward(_ dwte: FMut, _ dwpe: FMut, _ dout: FPtr, _ tokens: UnsafePointer<Int32>, layout: PackedLayout, C: Int)
    static func geluForward(_ out: FMut, gate: FMut?, _ inp: FPtr, N: Int)
    static func geluBackward(_ dinp: FMut, _ inp: FPtr, gate: FPtr, _ dout: FPtr, N: Int)
    static func headForward(_ logits: FMut, _ lse: FMut, _ probs: FMut, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int)
    static func headBackward(_ dinp: FMut, _ dwte: FMut, _ dlogits: FPtr, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int)
    /// logits[N, V] = inp[N, C] · wteᵀ only (sampling normalises the one row it draws from).
    static func headLogits(_ logits: FMut, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int)
    /// out[i] = exp(inp[i] − shift); returns Σ out[i].
    static func exp(_ out: FMut, _ inp: FPtr, count: Int, shift: Float) -> Float
    /// The largest of `count` ≥ 1 floats.
    static func max(_ x: FPtr, count: Int) -> Float
    /// x[i] *= a.
    static func scale(_ x: FMut, count: Int, by a: Float)
    /// Σ x[i]², accumulated in double precision.
    static func sumOfSquares(_ x: FPtr, count: Int) -> Double
    /// One AdamW update of `count` parameters (see `AdamStep`).
    static func adamUpdate(_ p: FMut, _ m: FMut, _ v: FMut, _ g: FPtr, count: Int, _ h: AdamStep)
}

/// One AdamW step's constants: learning rate, decoupled decay (lr·wd, or 0 for tensors
/// without decay), the gradient-clipping scale, the moment rates and their bias corrections.
public struct AdamStep: Sendable {
    public var lr, decay, scale, b1, b2, c1, c2, eps: Float
    public init(lr: Float, decay: Float, scale: Float, b1: Float, b2: Float, c1: Float, c2: Float, eps: Float) {
        self.lr = lr; self.decay = decay; self.scale = scale; self.b1 = b1; self.b2 = b2; self.c1 = c1; self.c2 = c2; self.eps = eps
    }
}
