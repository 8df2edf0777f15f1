import KernelInterface
/// Shape of a GPT-style decoder-only transformer.
///
/// Architecture (exactly what `Transformer` computes, so that an outside implementation
/// can reproduce the logits): token embedding `wte[V, C]` plus learned position embedding
/// `wpe[T, C]`; `layers` pre-norm blocks, each `x += attn(norm1(x))`, `x += mlp(norm2(x))`
/// with multi-head causal self-attention (fused `c_attn` producing q, k, v in that order,
/// scale 1/sqrt(head_dim)) and an MLP `c_proj(gelu_tanh(c_fc(x)))` of width 4C; a final
/// norm; logits = `norm_f(x) · wteᵀ` (the output head is tied to the token embedding).
/// All linear layers have biases and store weights as `[out, in]` (PyTorch `nn.Linear`).
public struct ModelConfig: Codable, Hashable, Sendable, CustomStringConvertible {
    public var vocab: Int
    public var context: Int
    public var dModel: Int
    public var layers: Int
    public var heads: Int
    public var norm: NormKind
    /// Epsilon inside the norm's square root.
    public var normEpsilon: Float

    public init(
        vocab: Int, context: Int, dModel: Int, layers: Int, heads: Int,
        norm: NormKind = .layerNorm, normEpsilon: Float = 1e-5
    ) {
        self.vocab = vocab
        self.context = context
        self.dModel = dModel
        self.layers = layers
        self.heads = heads
        self.norm = norm
        self.normEpsilon = normEpsilon
    }

    /// Checks the shape is buildable; returns a reason when it is not.
    public func validationError() -> String? {
        if vocab < 2 { return "vocab must be at least 2 (got \(vocab))" }
        if context < 1 { return "context must be positive (got \(context))" }
        if dModel < 1 || layers < 1 || heads < 1 { return "d_model, layers and heads must be positive" }
        if dModel % heads != 0 { return "d_model \(dModel) is not divisible by heads \(heads)" }
        if !(normEpsilon > 0) { return "norm epsilon must be positive (got \(normEpsilon))" }
        return nil
    }

    public var headDim: Int { dModel / heads }
    public var hidden: Int { 4 * dModel }
    public var hasNormBias: Bool { norm == .layerNorm }

    public var description: String {
        "d\(dModel)-L\(layers)-H\(heads)-T\(context)-V\(vocab)-\(norm.rawValue)"
    }

    /// Every parameter tensor, in storage order, with its name and shape.
    ///
    /// Names follow nanoGPT's `state_dict`, so a PyTorch GPT with the same config loads
    /// the checkpoint directly (its `lm_head.weight` is the tied `transformer.wte.weight`).
    public var tensorSpecs: [TensorSpec] {
        let C = dModel, F = hidden
        var specs: [TensorSpec] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int], decay: Bool) {
            let s = TensorSpec(name: name, shape: shape, offset: offset, weightDecay: decay)
            specs.append(s)
            offset += s.count
        }
        add("transformer.wte.weight", [vocab, C], decay: true)
        add("transformer.wpe.weight", [context, C], decay: true)
        for l in 0..<layers {
            let p = "transformer.h.\(l)."
            add(p + "ln_1.weight", [C], decay: false)
            if hasNormBias { add(p + "ln_1.bias", [C], decay: false) }
            add(p + "attn.c_attn.weight", [3 * C, C], decay: true)
            add(p + "attn.c_attn.bias", [3 * C], decay: false)
            add(p + "attn.c_proj.weight", [C, C], decay: true)
            add(p + "attn.c_proj.bias", [C], decay: false)
            add(p + "ln_2.weight", [C], decay: false)
            if hasNormBias { add(p + "ln_2.bias", [C], decay: false) }
            add(p + "mlp.c_fc.weight", [F, C], decay: true)
            add(p + "mlp.c_fc.bias", [F], decay: false)
            add(p + "mlp.c_proj.weight", [C, F], decay: true)
            add(p + "mlp.c_proj.bias", [C], decay: false)
        }
        add("transformer.ln_f.weight", [C], decay: false)
        if hasNormBias { add("transformer.ln_f.bias", [C], decay: false) }
        return specs
    }

    /// Total number of parameters (the tied head is counted once).
    public var parameterCount: Int {
        tensorSpecs.reduce(0) { $0 + $1.count }
    }

    /// Parameters outside the token and position embeddings (Kaplan et al.'s N).
    public var nonEmbeddingParameterCount: Int {
        parameterCount - vocab * dModel - context * dModel
    }
}

/// One named parameter tensor inside the flat parameter buffer.
public struct TensorSpec: Hashable, Sendable {
    public var name: String
    public var shape: [Int]
    /// Offset in floats from the start of the flat buffer.
    public var offset: Int
    /// Whether AdamW applies decoupled weight decay (matrices and embeddings only).
    public var weightDecay: Bool
    public var count: Int { shape.reduce(1, *) }
}
