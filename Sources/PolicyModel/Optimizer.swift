import Foundation

/// AdamW hyper-parameters.
public struct AdamWConfig: Codable, Hashable, Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay (applied as θ −= lr·λ·θ) on matrices and embeddings only.
    public var weightDecay: Float = 0.1
    /// Global-norm gradient clipping threshold; 0 or less disables clipping.
    public var gradClip: Float = 1.0

    public init(beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1, gradClip: Float = 1.0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.gradClip = gradClip
    }
}

/// Linear warmup to the peak rate, then constant or cosine decay to `minRatio · peak`.
public struct LRSchedule: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case constant, cosine }
    public var kind: Kind
    public var peak: Float
    public var warmupSteps: Int
    /// Step count at which cosine decay reaches its floor (ignored when constant).
    public var totalSteps: Int
    public var minRatio: Float

    public init(kind: Kind = .constant, peak: Float, warmupSteps: Int = 0, totalSteps: Int = 0, minRatio: Float = 0.1) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minRatio = minRatio
    }

    /// Learning rate for 0-based `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        switch kind {
        case .constant:
            return peak
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let progress = min(1, Float(step - warmupSteps) / Float(span))
            let cosine = 0.5 * (1 + cos(Float.pi * progress))
            return peak * (minRatio + (1 - minRatio) * cosine)
        }
    }
}

/// Statistics of one optimiser step.
public struct StepStats: Sendable {
    /// Global L2 norm of the gradient before clipping.
    public var gradNorm: Double
    public var clipped: Bool
}

/// AdamW with bias correction, decoupled weight decay and global-norm clipping.
public final class AdamW {
    public let config: AdamWConfig
    let m: FloatBuffer, v: FloatBuffer
    let decayMask: [(offset: Int, count: Int, decay: Bool)]
    public private(set) var steps = 0

    public init(for model: Transformer, config: AdamWConfig = AdamWConfig()) {
        self.config = config
        m = FloatBuffer(model.config.parameterCount)
        v = FloatBuffer(model.config.parameterCount)
        decayMask = model.specs.map { ($0.offset, $0.count, $0.weightDecay) }
    }

    /// Global gradient norm, accumulated in double precision (eight lanes, then across).
    public static func gradientNorm(_ g: UnsafeMutableBufferPointer<Float>, kernels: any EngineKernels.Type) -> Double {
        guard let p = g.baseAddress else { return 0 }
        return kernels.sumOfSquares(p, count: g.count).squareRoot()
    }

    /// Applies one update to `model` from its current gradients.
    @discardableResult
    public func step(_ model: Transformer, learningRate lr: Float) -> StepStats {
        let g = model.grads.base, p = model.params.base
        let K = model.kernels
        let norm = Self.gradientNorm(model.gradients, kernels: K)
        var scale: Float = 1
        var clipped = false
        if config.gradClip > 0 && norm > Double(config.gradClip) {
            scale = Float(Double(config.gradClip) / norm)
            clipped = true
        }
        steps += 1
        let b1 = config.beta1, b2 = config.beta2, eps = config.epsilon
        let c1 = 1 / (1 - powf(b1, Float(steps))), c2 = 1 / (1 - powf(b2, Float(steps)))
        for t in decayMask {
            K.adamUpdate(
                p + t.offset, m.base + t.offset, v.base + t.offset, g + t.offset, count: t.count,
                AdamStep(lr: lr, decay: t.decay ? lr * config.weightDecay : 0, scale: scale, b1: b1, b2: b2, c1: c1, c2: c2, eps: eps))
        }
        return StepStats(gradNorm: norm, clipped: clipped)
    }
}
