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

    /// Global gradient norm, accumulated in double precision.
    public static func gradientNorm(_ g: UnsafeMutableBufferPointer<Float>) -> Double {
        var s = 0.0
        for x in g { s += Double(x) * Double(x) }
        return s.squareRoot()
    }

    /// Applies one update to `model` from its current gradients.
    @discardableResult
    public func step(_ model: Transformer, learningRate lr: Float) -> StepStats {
        let g = model.grads.base, p = model.params.base
        let norm = Self.gradientNorm(model.gradients)
        var scale: Float = 1
        var clipped = false
        if config.gradClip > 0 && norm > Double(config.gradClip) {
            scale = Float(Double(config.gradClip) / norm)
            clipped = true
        }
        steps += 1
        let b1 = config.beta1, b2 = config.beta2, eps = config.epsilon
        let c1 = 1 / (1 - powf(b1, Float(steps))), c2 = 1 / (1 - powf(b2, Float(steps)))
        let M = m.base, Vv = v.base
        for t in decayMask {
            let decay: Float = t.decay ? lr * config.weightDecay : 0
            for i in t.offset..<(t.offset + t.count) {
                let gi = g[i] * scale
                M[i] = b1 * M[i] + (1 - b1) * gi
                Vv[i] = b2 * Vv[i] + (1 - b2) * gi * gi
                let update = (M[i] * c1) / ((Vv[i] * c2).squareRoot() + eps)
                p[i] -= lr * update + decay * p[i]
            }
        }
        return StepStats(gradNorm: norm, clipped: clipped)
    }
}
