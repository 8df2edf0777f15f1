import COpenBLAS
import Foundation
import KernelInterface
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

/// One layer's activations inside `Activations`: the per-layer offsets, computed in one
/// place for the forward and the backward pass.
struct LayerActivations {
    let ln1, ln1Mean, ln1Rstd, qkv, att, atty, res2, ln2, ln2Mean, ln2Rstd, fch, fchGelu, fchGate, res3: FMut
}

/// Activations saved by the forward pass, plus the backward pass's scratch, laid out once
/// for the largest pass seen so far: a forward pass over N ≤ `rows` positions (whose
/// attention probabilities take ≤ `attentionFloats` per layer) runs inside these buffers,
/// packed from their start, so the RL loop's changing batch shapes neither reallocate nor
/// zero-fill.
final class Activations {
    /// Capacity in positions and in attention floats per layer.
    let rows: Int, attentionFloats: Int
    let C: Int, F: Int
    let encoded, ln1, ln1Mean, ln1Rstd, qkv, att, atty, res2, ln2, ln2Mean, ln2Rstd: FloatBuffer
    let fch, fchGelu, fchGate, res3, lnf, lnfMean, lnfRstd, logits, lse, probs, dlogits: FloatBuffer
    let dres, dbuf, dqkv, dfch, scratch: FloatBuffer
    var tokens: [Int32]

    init(_ c: ModelConfig, rows N: Int, attentionFloats: Int) {
        rows = N
        self.attentionFloats = attentionFloats
        let C = c.dModel, L = c.layers, F = c.hidden
        self.C = C
        self.F = F
        encoded = FloatBuffer(N * C)
        ln1 = FloatBuffer(L * N * C); ln1Mean = FloatBuffer(L * N); ln1Rstd = FloatBuffer(L * N)
        qkv = FloatBuffer(L * N * 3 * C)
        att = FloatBuffer(L * attentionFloats)
        atty = FloatBuffer(L * N * C)
        res2 = FloatBuffer(L * N * C)
        ln2 = FloatBuffer(L * N * C); ln2Mean = FloatBuffer(L * N); ln2Rstd = FloatBuffer(L * N)
        fch = FloatBuffer(L * N * F); fchGelu = FloatBuffer(L * N * F); fchGate = FloatBuffer(L * N * F)
        res3 = FloatBuffer(L * N * C)
        lnf = FloatBuffer(N * C); lnfMean = FloatBuffer(N); lnfRstd = FloatBuffer(N)
        logits = FloatBuffer(N * c.vocab); lse = FloatBuffer(N); probs = FloatBuffer(N * c.vocab)
        dlogits = FloatBuffer(N * c.vocab)
        dres = FloatBuffer(N * C); dbuf = FloatBuffer(N * C)
        dqkv = FloatBuffer(N * 3 * C); dfch = FloatBuffer(N * F); scratch = FloatBuffer(c.context)
        tokens = Array(repeating: 0, count: N)
    }

    func fits(_ layout: PackedLayout) -> Bool {
        layout.positions <= rows && layout.attentionFloats <= attentionFloats
    }

    /// Layer l's slices for a pass of N positions whose attention takes `attention` floats
    /// per layer (packed from each buffer's start).
    func layer(_ l: Int, N: Int, attention: Int) -> LayerActivations {
        let nc = l * N * C, nf = l * N * F
        return LayerActivations(
            ln1: ln1.base + nc, ln1Mean: ln1Mean.base + l * N, ln1Rstd: ln1Rstd.base + l * N,
            qkv: qkv.base + 3 * nc, att: att.base + l * attention, atty: atty.base + nc, res2: res2.base + nc,
            ln2: ln2.base + nc, ln2Mean: ln2Mean.base + l * N, ln2Rstd: ln2Rstd.base + l * N,
            fch: fch.base + nf, fchGelu: fchGelu.base + nf, fchGate: fchGate.base + nf, res3: res3.base + nc)
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
    /// The kernels of the SIMD level the model computes with (`SIMDLevel.active` when it
    /// was created).
    public let kernels: any EngineKernels.Type
    /// That SIMD level.
    public let simd: SIMDLevel
    let params: FloatBuffer
    let grads: FloatBuffer
    var acts: Activations?
    var decode: DecodeState?

    /// The sequences of the last forward pass.
    public private(set) var pass = PackedLayout(lengths: [], heads: 1)
    /// Positions of the last forward pass (Σ of its sequences' lengths).
    public var positions: Int { pass.positions }

    /// Creates a model with GPT-2 initialisation: weights N(0, 0.02), residual output
    /// projections N(0, 0.02/sqrt(2·layers)), biases 0, norm scales 1.
    public init(config: ModelConfig, seed: UInt64, simd: SIMDLevel = .active) throws(ModelError) {
        if let why = config.validationError() { throw .invalidConfig(why) }
        self.config = config
        self.simd = simd
        kernels = simd.kernels
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

    /// The activation buffers, grown (never shrunk) to fit a pass.
    func activations(_ p: PackedLayout) -> Activations {
        if let a = acts, a.fits(p) { return a }
        let a = Activations(
            config, rows: Swift.max(p.positions, acts?.rows ?? 0),
            attentionFloats: Swift.max(p.attentionFloats, acts?.attentionFloats ?? 0))
        acts = a
        return a
    }

    func validate(_ tokens: some Collection<Int32>) throws(ModelError) {
        let V = config.vocab
        for t in tokens where t < 0 || Int(t) >= V { throw .tokenOutOfRange(token: t, vocab: V) }
    }

    // MARK: forward

    /// Runs the model on `batch` sequences of `length` tokens each (row-major
    /// `[batch, length]`): `forward(tokens:lengths:)` with equal lengths.
    public func forward(tokens: [Int32], batch B: Int, length T: Int) throws(ModelError) {
        guard B > 0, T > 0, tokens.count == B * T else {
            throw .shapeMismatch("\(tokens.count) tokens for batch \(B) × length \(T)")
        }
        try forward(tokens: tokens, lengths: Array(repeating: T, count: B))
    }

    /// Runs the model on sequences laid end to end (`tokens` holds Σ lengths tokens, no
    /// padding). Afterwards `logits` and `logSumExp` describe the next-token distribution
    /// at every position, in the same packed order.
    public func forward(tokens: [Int32], lengths: [Int]) throws(ModelError) {
        guard !lengths.isEmpty, lengths.allSatisfy({ $0 > 0 }), tokens.count == lengths.reduce(0, +) else {
            throw .shapeMismatch("\(tokens.count) tokens for sequences of lengths \(lengths)")
        }
        if let T = lengths.max(), T > config.context { throw .sequenceTooLong(length: T, context: config.context) }
        try validate(tokens)
        let p = PackedLayout(lengths: lengths, heads: config.heads)
        let a = activations(p)
        a.tokens.withUnsafeMutableBufferPointer { $0.baseAddress?.update(from: tokens, count: tokens.count) }
        pass = p
        let c = config, N = p.positions, P = params.base
        a.tokens.withUnsafeBufferPointer { tok in
            guard let t = tok.baseAddress else { return }  // non-empty: lengths > 0 was checked
            kernels.encoderForward(a.encoded.base, t, P + layout.wte, P + layout.wpe, layout: p, C: c.dModel)
        }
        var residual = UnsafePointer(a.encoded.base)
        for l in 0..<c.layers {
            let x = a.layer(l, N: N, attention: p.attentionFloats)
            blockForward(x, residual: residual, weights: layout.layers[l], pass: p)
            residual = UnsafePointer(x.res3)
        }
        kernels.normForward(
            c.norm, a.lnf.base, a.lnfMean.base, a.lnfRstd.base, residual,
            P + layout.lnfw, layout.lnfb.map { P + $0 }, N: N, C: c.dModel, eps: c.normEpsilon)
        kernels.headForward(a.logits.base, a.lse.base, a.probs.base, a.lnf.base, P + layout.wte, N: N, C: c.dModel, V: c.vocab)
    }

    /// One block's forward: res2 = x + attn(ln1(x)), res3 = res2 + mlp(ln2(res2)).
    func blockForward(_ x: LayerActivations, residual: FPtr, weights o: LayerOffsets, pass p: PackedLayout) {
        let c = config, C = c.dModel, F = c.hidden, N = p.positions, P = params.base, K = kernels
        K.normForward(
            c.norm, x.ln1, x.ln1Mean, x.ln1Rstd, residual, P + o.ln1w, o.ln1b.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
        K.linearForward(x.qkv, x.ln1, P + o.qkvw, P + o.qkvb, N: N, IN: C, OUT: 3 * C, accumulate: false)
        K.attentionForward(x.atty, x.att, x.qkv, layout: p, C: C, NH: c.heads)
        x.res2.update(from: residual, count: N * C)
        K.linearForward(x.res2, x.atty, P + o.projw, P + o.projb, N: N, IN: C, OUT: C, accumulate: true)
        K.normForward(
            c.norm, x.ln2, x.ln2Mean, x.ln2Rstd, x.res2, P + o.ln2w, o.ln2b.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
        K.linearForward(x.fch, x.ln2, P + o.fcw, P + o.fcb, N: N, IN: C, OUT: F, accumulate: false)
        K.geluForward(x.fchGelu, gate: x.fchGate, x.fch, N: N * F)
        x.res3.update(from: x.res2, count: N * C)
        K.linearForward(x.res3, x.fchGelu, P + o.fcprojw, P + o.fcprojb, N: N, IN: F, OUT: C, accumulate: true)
    }

    /// Positions the activation buffers are laid out for: the largest forward pass
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

    /// Logits of the last forward pass, `[positions, vocab]`.
    public var logits: UnsafeBufferPointer<Float> {
        guard let a = acts else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: a.logits.base, count: positions * config.vocab)
    }

    /// Log-sum-exp of each position's logits, `[positions]`: log p(v) = logit(v) − lse.
    public var logSumExp: UnsafeBufferPointer<Float> {
        guard let a = acts else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: a.lse.base, count: positions)
    }

    /// Softmax probabilities of the last forward pass, `[positions, vocab]`
    /// (exp(logit − logSumExp), computed once by the forward pass).
    public var probabilities: UnsafeBufferPointer<Float> {
        guard let a = acts else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: a.probs.base, count: positions * config.vocab)
    }

    /// Gradient of the loss with respect to the logits, `[positions, vocab]`; the
    /// caller fills it (directly or through `setWeightedNLLGradient`) before `backward()`.
    public var logitGradient: UnsafeMutableBufferPointer<Float> {
        guard let a = acts else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
        return UnsafeMutableBufferPointer(start: a.dlogits.base, count: positions * config.vocab)
    }

    /// Log-probability of `targets[n]` at every position n of the last forward pass
    /// (0 where the target is negative, meaning "no target").
    public func logProbs(targets: [Int32]) throws(ModelError) -> [Float] {
        let N = positions, V = config.vocab
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
        let N = positions, V = config.vocab
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
            kernels.scale(d, count: V, by: w)
            d[tgt] -= w
            loss -= Double(w) * Double(z[tgt] - lse)
        }
        return loss
    }

    // MARK: backward

    /// Backpropagates `logitGradient` through the last forward pass, accumulating into
    /// `gradients` (call `zeroGradients()` first for a fresh step).
    public func backward() {
        guard let a = acts, positions > 0 else { return }
        let c = config, C = c.dModel, N = positions, L = c.layers
        let P = params.base, G = grads.base, K = kernels
        let lastResidual = L > 0 ? a.layer(L - 1, N: N, attention: pass.attentionFloats).res3 : a.encoded.base
        K.headBackward(a.dbuf.base, G + layout.wte, a.dlogits.base, a.lnf.base, P + layout.wte, N: N, C: C, V: c.vocab)
        a.dres.base.update(repeating: 0, count: N * C)
        K.normBackward(
            c.norm, a.dres.base, G + layout.lnfw, layout.lnfb.map { G + $0 }, a.dbuf.base, lastResidual,
            P + layout.lnfw, a.lnfMean.base, a.lnfRstd.base, N: N, C: C)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let residual = l == 0 ? a.encoded.base : a.layer(l - 1, N: N, attention: pass.attentionFloats).res3
            blockBackward(a, a.layer(l, N: N, attention: pass.attentionFloats), residual: residual, weights: layout.layers[l])
        }
        a.tokens.withUnsafeBufferPointer { tok in
            guard let t = tok.baseAddress else { return }
            K.encoderBackward(G + layout.wte, G + layout.wpe, a.dres.base, t, layout: pass, C: C)
        }
    }

    /// One block's backward: `a.dres` holds the gradient at the block's output on entry and
    /// at its input on exit; parameter gradients accumulate.
    func blockBackward(_ a: Activations, _ x: LayerActivations, residual: FPtr, weights o: LayerOffsets) {
        let c = config, C = c.dModel, F = c.hidden, N = positions
        let K = kernels, P = params.base, G = grads.base, dres = a.dres.base, dbuf = a.dbuf.base, dfch = a.dfch.base
        // MLP branch: res3 = res2 + c_proj(gelu(c_fc(ln2(res2))))
        K.linearBackward(dfch, G + o.fcprojw, G + o.fcprojb, dres, x.fchGelu, P + o.fcprojw, N: N, IN: F, OUT: C, accumulateInput: false)
        K.geluBackward(dfch, x.fch, gate: x.fchGate, dfch, N: N * F)
        K.linearBackward(dbuf, G + o.fcw, G + o.fcb, dfch, x.ln2, P + o.fcw, N: N, IN: C, OUT: F, accumulateInput: false)
        K.normBackward(
            c.norm, dres, G + o.ln2w, o.ln2b.map { G + $0 }, dbuf, x.res2, P + o.ln2w, x.ln2Mean, x.ln2Rstd, N: N, C: C)
        // attention branch: res2 = res1 + c_proj(attn(c_attn(ln1(res1))))
        K.linearBackward(dbuf, G + o.projw, G + o.projb, dres, x.atty, P + o.projw, N: N, IN: C, OUT: C, accumulateInput: false)
        K.attentionBackward(a.dqkv.base, a.scratch.base, dbuf, x.qkv, x.att, layout: pass, C: C, NH: c.heads)
        K.linearBackward(
            dbuf, G + o.qkvw, G + o.qkvb, a.dqkv.base, x.ln1, P + o.qkvw, N: N, IN: C, OUT: 3 * C, accumulateInput: false)
        K.normBackward(
            c.norm, dres, G + o.ln1w, o.ln1b.map { G + $0 }, dbuf, residual, P + o.ln1w, x.ln1Mean, x.ln1Rstd, N: N, C: C)
    }
}

/// Sets OpenBLAS's thread count for this process (1 gives bitwise-reproducible runs).
public func setBLASThreads(_ n: Int) {
    openblas_set_num_threads(Int32(max(1, n)))
}

/// OpenBLAS's current thread count.
public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
