import COpenBLAS
import Foundation
import RLCommon

/// Offsets of one block's tensors inside the flat parameter (and gradient) buffer.
struct LayerOffsets {
    var ln1w = 0, ln1b: Int? = nil, qkvw = 0, qkvb = 0, projw = 0, projb = 0
    var ln2w = 0, ln2b: Int? = nil, fcw = 0, fcb = 0, fcprojw = 0, fcprojb = 0
}

/// Offsets of every tensor, resolved once from the config's tensor specs.
struct ParameterLayout {
    var wte = 0, wpe = 0, lnfw = 0, lnfb: Int? = nil
    var layers: [LayerOffsets]

    init(_ config: ModelConfig) {
        var byName: [String: Int] = [:]
        for s in config.tensorSpecs { byName[s.name] = s.offset }
        func at(_ n: String) -> Int { byName[n] ?? 0 }
        wte = at("transformer.wte.weight")
        wpe = at("transformer.wpe.weight")
        lnfw = at("transformer.ln_f.weight")
        lnfb = byName["transformer.ln_f.bias"]
        layers = (0..<config.layers).map { l in
            let p = "transformer.h.\(l)."
            return LayerOffsets(
                ln1w: at(p + "ln_1.weight"), ln1b: byName[p + "ln_1.bias"],
                qkvw: at(p + "attn.c_attn.weight"), qkvb: at(p + "attn.c_attn.bias"),
                projw: at(p + "attn.c_proj.weight"), projb: at(p + "attn.c_proj.bias"),
                ln2w: at(p + "ln_2.weight"), ln2b: byName[p + "ln_2.bias"],
                fcw: at(p + "mlp.c_fc.weight"), fcb: at(p + "mlp.c_fc.bias"),
                fcprojw: at(p + "mlp.c_proj.weight"), fcprojb: at(p + "mlp.c_proj.bias"))
        }
    }
}

/// Activations saved by the forward pass, plus the backward pass's scratch, laid out once
/// for the largest batch shape seen so far: a forward pass over B·T ≤ `rows` positions
/// (and B·T·Tp ≤ `attentionRows`, Tp = T rounded up to 8) runs inside these buffers, packed from their start, so
/// the RL loop's changing batch shapes neither reallocate nor zero-fill.
final class Activations {
    /// Capacity in positions (B·T) and in attention rows × padded keys (B·T·Tp).
    let rows: Int, attentionRows: Int, maxT: Int
    let encoded, ln1, ln1Mean, ln1Rstd, qkv, att, atty, res2, ln2, ln2Mean, ln2Rstd: FloatBuffer
    let fch, fchGelu, fchGate, res3, lnf, lnfMean, lnfRstd, logits, lse, probs, dlogits: FloatBuffer
    let dres, dbuf, dqkv, dfch, scratch: FloatBuffer
    var tokens: [Int32]

    init(_ c: ModelConfig, rows N: Int, attentionRows: Int, maxT: Int) {
        rows = N
        self.attentionRows = attentionRows
        self.maxT = maxT
        let C = c.dModel, L = c.layers, F = c.hidden
        encoded = FloatBuffer(N * C)
        ln1 = FloatBuffer(L * N * C); ln1Mean = FloatBuffer(L * N); ln1Rstd = FloatBuffer(L * N)
        qkv = FloatBuffer(L * N * 3 * C)
        att = FloatBuffer(L * c.heads * attentionRows)
        atty = FloatBuffer(L * N * C)
        res2 = FloatBuffer(L * N * C)
        ln2 = FloatBuffer(L * N * C); ln2Mean = FloatBuffer(L * N); ln2Rstd = FloatBuffer(L * N)
        fch = FloatBuffer(L * N * F); fchGelu = FloatBuffer(L * N * F); fchGate = FloatBuffer(L * N * F)
        res3 = FloatBuffer(L * N * C)
        lnf = FloatBuffer(N * C); lnfMean = FloatBuffer(N); lnfRstd = FloatBuffer(N)
        logits = FloatBuffer(N * c.vocab); lse = FloatBuffer(N); probs = FloatBuffer(N * c.vocab)
        dlogits = FloatBuffer(N * c.vocab)
        dres = FloatBuffer(N * C); dbuf = FloatBuffer(N * C)
        dqkv = FloatBuffer(N * 3 * C); dfch = FloatBuffer(N * F); scratch = FloatBuffer(maxT * Kernels.attentionStride(maxT))
        tokens = Array(repeating: 0, count: N)
    }

    func fits(B: Int, T: Int) -> Bool {
        B * T <= rows && B * T * Kernels.attentionStride(T) <= attentionRows && T <= maxT
    }
}

/// A GPT-style decoder-only transformer with hand-written forward and backward passes.
///
/// Usage for one training step (nanoGPT's loop, spelled out):
///
///     try model.forward(tokens: batch, batch: B, length: T)
///     model.zeroGradients()
///     let loss = try model.setWeightedNLLGradient(targets: targets, weights: weights)
///     model.backward()
///     optimizer.step(model, learningRate: lr)
///
/// The class owns its parameter, gradient and activation memory; it is not thread-safe.
public final class Transformer {
    public let config: ModelConfig
    public let specs: [TensorSpec]
    let layout: ParameterLayout
    let params: FloatBuffer
    let grads: FloatBuffer
    var acts: Activations?
    var decode: DecodeState?

    /// Batch shape of the last forward pass.
    public private(set) var batch = 0
    public private(set) var length = 0

    /// Creates a model with GPT-2 initialisation: weights N(0, 0.02), residual output
    /// projections N(0, 0.02/sqrt(2·layers)), biases 0, norm scales 1.
    public init(config: ModelConfig, seed: UInt64) throws(ModelError) {
        if let why = config.validationError() { throw .invalidConfig(why) }
        self.config = config
        specs = config.tensorSpecs
        layout = ParameterLayout(config)
        params = FloatBuffer(config.parameterCount)
        grads = FloatBuffer(config.parameterCount)
        var rng = SeededRNG(seed: seed).derived("init")
        let residualStd = 0.02 / (2 * Double(config.layers)).squareRoot()
        for s in specs {
            let p = params.base + s.offset
            if s.name.hasSuffix(".bias") {
                continue
            } else if s.shape.count == 1 {
                p.update(repeating: 1, count: s.count)
            } else {
                let std = s.name.hasSuffix("c_proj.weight") ? residualStd : 0.02
                for i in 0..<s.count { p[i] = Float(rng.gaussian() * std) }
            }
        }
    }

    /// All parameters as one flat buffer, in `specs` order.
    public var parameters: UnsafeMutableBufferPointer<Float> { params.buffer }
    /// Gradients, laid out like `parameters`.
    public var gradients: UnsafeMutableBufferPointer<Float> { grads.buffer }

    /// One named tensor's slice of `parameters`.
    public func tensor(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let s = specs.first(where: { $0.name == name }) else { return nil }
        return UnsafeMutableBufferPointer(start: params.base + s.offset, count: s.count)
    }

    public func zeroGradients() { grads.zero() }

    /// Copies all parameters from another model of the same config.
    public func copyParameters(from other: Transformer) throws(ModelError) {
        guard other.config == config else {
            throw .shapeMismatch("cannot copy \(other.config) into \(config)")
        }
        params.base.update(from: other.params.base, count: params.count)
    }

    /// The activation buffers, grown (never shrunk) to fit a B × T batch.
    func activations(B: Int, T: Int) -> Activations {
        if let a = acts, a.fits(B: B, T: T) { return a }
        let a = Activations(
            config, rows: Swift.max(B * T, acts?.rows ?? 0), attentionRows: Swift.max(B * T * Kernels.attentionStride(T), acts?.attentionRows ?? 0),
            maxT: Swift.max(T, acts?.maxT ?? 0))
        acts = a
        return a
    }

    func validate(_ tokens: some Collection<Int32>) throws(ModelError) {
        let V = config.vocab
        for t in tokens where t < 0 || Int(t) >= V { throw .tokenOutOfRange(token: t, vocab: V) }
    }

    // MARK: forward

    /// Runs the model on `batch` right-padded sequences of `length` tokens (row-major
    /// `[batch, length]`). Afterwards `logits` and `logSumExp` describe the next-token
    /// distribution at every position.
    public func forward(tokens: [Int32], batch B: Int, length T: Int) throws(ModelError) {
        guard B > 0, T > 0, tokens.count == B * T else {
            throw .shapeMismatch("\(tokens.count) tokens for batch \(B) × length \(T)")
        }
        guard T <= config.context else { throw .sequenceTooLong(length: T, context: config.context) }
        try validate(tokens)
        let a = activations(B: B, T: T)
        a.tokens.withUnsafeMutableBufferPointer { $0.baseAddress?.update(from: tokens, count: B * T) }
        batch = B
        length = T
        let c = config, C = c.dModel, F = c.hidden, NH = c.heads, N = B * T, L = c.layers
        let P = params.base
        tokens.withUnsafeBufferPointer { tok in
            guard let t = tok.baseAddress else { return }  // non-empty: B, T > 0 was checked
            Kernels.encoderForward(a.encoded.base, t, P + layout.wte, P + layout.wpe, B: B, T: T, C: C)
        }
        var residual = UnsafePointer(a.encoded.base)
        for l in 0..<L {
            let o = layout.layers[l]
            let ln1 = a.ln1.base + l * N * C, qkv = a.qkv.base + l * N * 3 * C
            let att = a.att.base + l * B * NH * T * Kernels.attentionStride(T), atty = a.atty.base + l * N * C
            let res2 = a.res2.base + l * N * C, ln2 = a.ln2.base + l * N * C
            let fch = a.fch.base + l * N * F, fchGelu = a.fchGelu.base + l * N * F
            let fchGate = a.fchGate.base + l * N * F
            let res3 = a.res3.base + l * N * C
            Kernels.normForward(
                c.norm, ln1, a.ln1Mean.base + l * N, a.ln1Rstd.base + l * N, residual,
                P + o.ln1w, o.ln1b.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
            Kernels.linearForward(qkv, ln1, P + o.qkvw, P + o.qkvb, N: N, IN: C, OUT: 3 * C, accumulate: false)
            Kernels.attentionForward(atty, att, qkv, B: B, T: T, C: C, NH: NH)
            res2.update(from: residual, count: N * C)
            Kernels.linearForward(res2, atty, P + o.projw, P + o.projb, N: N, IN: C, OUT: C, accumulate: true)
            Kernels.normForward(
                c.norm, ln2, a.ln2Mean.base + l * N, a.ln2Rstd.base + l * N, res2,
                P + o.ln2w, o.ln2b.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
            Kernels.linearForward(fch, ln2, P + o.fcw, P + o.fcb, N: N, IN: C, OUT: F, accumulate: false)
            Kernels.geluForward(fchGelu, gate: fchGate, fch, N: N * F)
            res3.update(from: res2, count: N * C)
            Kernels.linearForward(res3, fchGelu, P + o.fcprojw, P + o.fcprojb, N: N, IN: F, OUT: C, accumulate: true)
            residual = UnsafePointer(res3)
        }
        Kernels.normForward(
            c.norm, a.lnf.base, a.lnfMean.base, a.lnfRstd.base, residual,
            P + layout.lnfw, layout.lnfb.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
        Kernels.headForward(a.logits.base, a.lse.base, a.probs.base, a.lnf.base, P + layout.wte, N: N, C: C, V: c.vocab)
    }

    /// Positions (B·T) the activation buffers are laid out for: the largest forward pass
    /// so far (they grow, never shrink).
    public var activationCapacity: Int { acts?.rows ?? 0 }

    /// Sequences per forward pass when a batch is run only for its logits (evaluation,
    /// reward scoring): the activations, laid out for the largest pass, then stay the size
    /// of a training batch's instead of growing with every sequence evaluated at once.
    public static let passRows = 64

    /// Row ranges of at most `passRows` sequences covering `0..<rows`.
    public static func passes(rows: Int) -> [Range<Int>] {
        stride(from: 0, to: rows, by: passRows).map { $0..<Swift.min(rows, $0 + passRows) }
    }

    /// `forward` over the sequences `rows` of a row-major `[_, length]` token batch.
    public func forward(tokens: [Int32], rows: Range<Int>, length T: Int) throws(ModelError) {
        try forward(tokens: Array(tokens[(rows.lowerBound * T)..<(rows.upperBound * T)]), batch: rows.count, length: T)
    }

    /// Logits of the last forward pass, `[batch, length, vocab]`.
    public var logits: UnsafeBufferPointer<Float> {
        guard let a = acts else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: a.logits.base, count: batch * length * config.vocab)
    }

    /// Log-sum-exp of each position's logits, `[batch, length]`: log p(v) = logit(v) − lse.
    public var logSumExp: UnsafeBufferPointer<Float> {
        guard let a = acts else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: a.lse.base, count: batch * length)
    }

    /// Softmax probabilities of the last forward pass, `[batch, length, vocab]`
    /// (exp(logit − logSumExp), computed once by the forward pass).
    public var probabilities: UnsafeBufferPointer<Float> {
        guard let a = acts else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: a.probs.base, count: batch * length * config.vocab)
    }

    /// Gradient of the loss with respect to the logits, `[batch, length, vocab]`; the
    /// caller fills it (directly or through `setWeightedNLLGradient`) before `backward()`.
    public var logitGradient: UnsafeMutableBufferPointer<Float> {
        guard let a = acts else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
        return UnsafeMutableBufferPointer(start: a.dlogits.base, count: batch * length * config.vocab)
    }

    /// Log-probability of `targets[n]` at every position n of the last forward pass
    /// (0 where the target is negative, meaning "no target").
    public func logProbs(targets: [Int32]) throws(ModelError) -> [Float] {
        let N = batch * length, V = config.vocab
        guard targets.count == N, let a = acts else {
            throw .shapeMismatch("\(targets.count) targets for \(N) positions")
        }
        var out = [Float](repeating: 0, count: N)
        for n in 0..<N where targets[n] >= 0 {
            guard Int(targets[n]) < V else { throw .tokenOutOfRange(token: targets[n], vocab: V) }
            out[n] = a.logits.base[n * V + Int(targets[n])] - a.lse.base[n]
        }
        return out
    }

    /// Sets the logit gradient to that of the weighted negative log-likelihood
    /// `L = −Σₙ wₙ · log p(targetₙ)` and returns L. Positions with a negative target or a
    /// zero weight contribute nothing; RL passes wₙ = advantage-derived coefficients, SFT
    /// passes a mask divided by the token count.
    @discardableResult
    public func setWeightedNLLGradient(targets: [Int32], weights: [Float]) throws(ModelError) -> Double {
        let N = batch * length, V = config.vocab
        guard targets.count == N, weights.count == N, let a = acts else {
            throw .shapeMismatch("\(targets.count) targets and \(weights.count) weights for \(N) positions")
        }
        a.dlogits.base.update(repeating: 0, count: N * V)
        var loss = 0.0
        for n in 0..<N where targets[n] >= 0 && weights[n] != 0 {
            let tgt = Int(targets[n])
            guard tgt < V else { throw .tokenOutOfRange(token: targets[n], vocab: V) }
            let z = a.logits.base + n * V, d = a.dlogits.base + n * V
            let lse = a.lse.base[n], w = weights[n]
            d.update(from: a.probs.base + n * V, count: V)
            VectorMath.scale(d, count: V, by: w)
            d[tgt] -= w
            loss -= Double(w) * Double(z[tgt] - lse)
        }
        return loss
    }

    // MARK: backward

    /// Backpropagates `logitGradient` through the last forward pass, accumulating into
    /// `gradients` (call `zeroGradients()` first for a fresh step).
    public func backward() {
        guard let a = acts, batch > 0 else { return }
        let c = config, B = batch, T = length, C = c.dModel, F = c.hidden, NH = c.heads
        let N = B * T, L = c.layers
        let P = params.base, G = grads.base
        let dres = a.dres.base, dbuf = a.dbuf.base
        let lastResidual = L > 0 ? a.res3.base + (L - 1) * N * C : a.encoded.base
        Kernels.headBackward(dbuf, G + layout.wte, a.dlogits.base, a.lnf.base, P + layout.wte, N: N, C: C, V: c.vocab)
        dres.update(repeating: 0, count: N * C)
        Kernels.normBackward(
            c.norm, dres, G + layout.lnfw, layout.lnfb.map { G + $0 }, dbuf, lastResidual,
            P + layout.lnfw, a.lnfMean.base, a.lnfRstd.base, N: N, C: C)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let o = layout.layers[l]
            let residual = l == 0 ? a.encoded.base : a.res3.base + (l - 1) * N * C
            let ln1 = a.ln1.base + l * N * C, qkv = a.qkv.base + l * N * 3 * C
            let att = a.att.base + l * B * NH * T * Kernels.attentionStride(T), atty = a.atty.base + l * N * C
            let res2 = a.res2.base + l * N * C, ln2 = a.ln2.base + l * N * C
            let fch = a.fch.base + l * N * F, fchGelu = a.fchGelu.base + l * N * F
            let fchGate = a.fchGate.base + l * N * F
            // MLP branch: res3 = res2 + c_proj(gelu(c_fc(ln2(res2))))
            Kernels.linearBackward(
                a.dfch.base, G + o.fcprojw, G + o.fcprojb, dres, fchGelu, P + o.fcprojw,
                N: N, IN: F, OUT: C, accumulateInput: false)
            Kernels.geluBackward(a.dfch.base, fch, gate: fchGate, a.dfch.base, N: N * F)
            Kernels.linearBackward(
                dbuf, G + o.fcw, G + o.fcb, a.dfch.base, ln2, P + o.fcw, N: N, IN: C, OUT: F, accumulateInput: false)
            Kernels.normBackward(
                c.norm, dres, G + o.ln2w, o.ln2b.map { G + $0 }, dbuf, res2, P + o.ln2w,
                a.ln2Mean.base + l * N, a.ln2Rstd.base + l * N, N: N, C: C)
            // attention branch: res2 = res1 + c_proj(attn(c_attn(ln1(res1))))
            Kernels.linearBackward(
                dbuf, G + o.projw, G + o.projb, dres, atty, P + o.projw, N: N, IN: C, OUT: C, accumulateInput: false)
            Kernels.attentionBackward(a.dqkv.base, a.scratch.base, dbuf, qkv, att, B: B, T: T, C: C, NH: NH)
            Kernels.linearBackward(
                dbuf, G + o.qkvw, G + o.qkvb, a.dqkv.base, ln1, P + o.qkvw, N: N, IN: C, OUT: 3 * C,
                accumulateInput: false)
            Kernels.normBackward(
                c.norm, dres, G + o.ln1w, o.ln1b.map { G + $0 }, dbuf, residual, P + o.ln1w,
                a.ln1Mean.base + l * N, a.ln1Rstd.base + l * N, N: N, C: C)
        }
        a.tokens.withUnsafeBufferPointer { tok in
            guard let t = tok.baseAddress else { return }
            Kernels.encoderBackward(G + layout.wte, G + layout.wpe, dres, t, B: B, T: T, C: C)
        }
    }
}

/// Sets OpenBLAS's thread count for this process (1 gives bitwise-reproducible runs).
public func setBLASThreads(_ n: Int) {
    openblas_set_num_threads(Int32(max(1, n)))
}

/// OpenBLAS's current thread count.
public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
