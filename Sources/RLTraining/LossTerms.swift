import Foundation
import ResultSchema

/// One completion token as a loss term sees it: the policy's distribution at the token's
/// position, the sampled token, and what the other forwards said about it. The buffers
/// are valid only during `LossTerm.apply`.
public struct TokenView {
    public var vocab: Int
    /// The sampled token.
    public var target: Int
    /// log π_θ(target), as the engine computes it (logit − log-sum-exp, in Float).
    public var logProb: Float
    /// log π_behavior(target): the log-probability under the weights that sampled it.
    public var behaviorLogProb: Float
    /// log π_ref(target) under the method's reference (NaN when it has none).
    public var referenceLogProb: Float
    /// The token's advantage.
    public var advantage: Double
    /// Distribution terms only: π_θ's log-probabilities and probabilities over the whole
    /// vocabulary, and its entropy H = −Σ p log p (empty and NaN for sampled-token terms).
    public var logProbs: UnsafeBufferPointer<Double>
    public var probs: UnsafeBufferPointer<Double>
    public var entropy: Double
    /// The teacher's log-probabilities and probabilities over the vocabulary at the same
    /// completion token (empty when the method has no teacher or the token is not
    /// distilled: teacher-reading terms then add nothing).
    public var teacherLogProbs: UnsafeBufferPointer<Float>
    public var teacherProbs: UnsafeBufferPointer<Float>

    public init(
        vocab: Int, target: Int, logProb: Float, behaviorLogProb: Float, referenceLogProb: Float = .nan, advantage: Double,
        logProbs: UnsafeBufferPointer<Double> = .init(start: nil, count: 0),
        probs: UnsafeBufferPointer<Double> = .init(start: nil, count: 0), entropy: Double = .nan,
        teacherLogProbs: UnsafeBufferPointer<Float> = .init(start: nil, count: 0),
        teacherProbs: UnsafeBufferPointer<Float> = .init(start: nil, count: 0)
    ) {
        self.vocab = vocab; self.target = target; self.logProb = logProb; self.behaviorLogProb = behaviorLogProb
        self.referenceLogProb = referenceLogProb; self.advantage = advantage; self.logProbs = logProbs; self.probs = probs
        self.entropy = entropy; self.teacherLogProbs = teacherLogProbs; self.teacherProbs = teacherProbs
    }
}

/// Where the terms write. `loss` is the batch loss (a running sum the trainer keeps across
/// tokens); `nllWeight` and `row` belong to the current token.
public struct TermAccumulator {
    /// The batch loss so far.
    public var loss = 0.0
    /// Sampled-token terms: the token's gradient is that of −nllWeight · log π_θ(target),
    /// i.e. nllWeight · (p − onehot(target)) on its logits.
    public var nllWeight = 0.0
    /// Distribution terms add ∂ℓ/∂z (one value per vocabulary entry) to the token's row.
    public var row: UnsafeMutableBufferPointer<Float>
    /// Tokens on which a clipped branch was taken, and tokens whose importance weight was
    /// truncated at the cap.
    public var clipped = 0
    public var truncated = 0
    /// Tokens a teacher-reading term distilled, and the sum of their divergences (the
    /// term's own divergence; the sampled form's log π_θ(y) − log π_T(y)).
    public var distilled = 0
    public var divergenceSum = 0.0

    public init(row: UnsafeMutableBufferPointer<Float> = .init(start: nil, count: 0)) { self.row = row }
}

/// How a term's gradient reaches the logits.
public enum TermKind: Sendable {
    /// Through the sampled token's log-probability only (`TermAccumulator.nllWeight`).
    case sampledToken
    /// On the whole row of logits (`TermAccumulator.row`); needs the full distribution.
    case distribution
}

/// Extra forward passes a term reads.
public struct TermInputs: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// log π_ref of the sampled token under the method's reference.
    public static let reference = TermInputs(rawValue: 1)
    /// The teacher's full distribution at every completion token.
    public static let teacher = TermInputs(rawValue: 2)
}

/// One per-token objective, in the style of llm.c's layers: a small value with one function
/// that adds its loss for one token (times `scale`, the aggregation weight) and writes its
/// gradient with respect to that token's logits.
public protocol LossTerm: Sendable, CustomStringConvertible {
    var kind: TermKind { get }
    var reads: TermInputs { get }
    /// Whether the term's gradient vanishes when the token's advantage is 0 (a group whose
    /// advantages are all 0 then carries no gradient for a method made only of such terms).
    var advantageDriven: Bool { get }
    func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator)
}

// MARK: sampled-token terms

/// PPO's clipped surrogate with truncated importance sampling. With ratio ρ = π_θ/π_behavior
/// and advantage A:
///
///     ℓ = −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)·A)
///
/// where, on the unclipped branch, ρ beyond the cap c (reachable only with A < 0, as
/// `RLMethod.validationError` requires c ≥ 1 + ε_high) continues
/// as −A·c·(1 + log(ρ/c)): the loss stays continuous and its gradient is the truncated
/// importance weight, −min(ρ, c)·A·∇log π_θ.
public struct ClippedPolicyGradient: LossTerm {
    public var clipLow: Double
    public var clipHigh: Double
    public var isCap: Double
    public init(clipLow: Double = 0.2, clipHigh: Double = 0.2, isCap: Double = 2) {
        self.clipLow = clipLow; self.clipHigh = clipHigh; self.isCap = isCap
    }
    public var kind: TermKind { .sampledToken }
    public var reads: TermInputs { [] }
    public var advantageDriven: Bool { true }
    public var description: String { "clipped policy gradient (ε \(clipLow)/\(clipHigh), IS cap \(isCap))" }

    /// The token's loss, its NLL weight (gradient = that of −weight·log π_θ), and whether
    /// the clipped branch was taken.
    public func policyGradient(ratio rho: Double, advantage a: Double) -> (loss: Double, weight: Double, clipped: Bool) {
        guard a != 0 else { return (0, 0, false) }
        let unclipped = rho * a
        let clipped = min(max(rho, 1 - clipLow), 1 + clipHigh) * a
        guard unclipped <= clipped else { return (-clipped, 0, true) }
        if rho <= isCap { return (-unclipped, rho * a, false) }
        return (-a * isCap * (1 + log(rho / isCap)), isCap * a, false)
    }

    public func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator) {
        let rho = exp(Double(t.logProb - t.behaviorLogProb))
        let pg = policyGradient(ratio: rho, advantage: t.advantage)
        g.nllWeight += scale * pg.weight
        g.loss += scale * pg.loss
        if pg.clipped { g.clipped += 1 } else if rho > isCap && t.advantage != 0 { g.truncated += 1 }
    }
}

/// Supervised negative log-likelihood of the sampled token weighted by its advantage,
/// ℓ = −c·A·log π_θ(target): imitation of the tokens a method marks (expert iteration
/// marks correct samples with A = 1).
public struct SupervisedNLL: LossTerm {
    public var coef: Double
    public init(coef: Double = 1) { self.coef = coef }
    public var kind: TermKind { .sampledToken }
    public var reads: TermInputs { [] }
    public var advantageDriven: Bool { true }
    public var description: String { "supervised NLL × \(coef)" }

    public func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator) {
        guard t.advantage != 0 else { return }
        let w = coef * scale * t.advantage
        g.nllWeight += w
        g.loss -= w * Double(t.logProb)
    }
}

/// KL to the reference with Schulman's k3 estimator on the sampled token: with
/// r = log π_ref − log π_θ, ℓ = β·(eʳ − 1 − r) ≥ 0. Its value is unbiased for
/// KL(π_θ ‖ π_ref) on tokens sampled from π_θ; its expected gradient is that of
/// KL(π_ref ‖ π_θ) (the usual GRPO practice, not the reverse KL's gradient).
public struct ReferenceKL: LossTerm {
    public var coef: Double
    public init(coef: Double) { self.coef = coef }
    public var kind: TermKind { .sampledToken }
    public var reads: TermInputs { .reference }
    public var advantageDriven: Bool { false }
    public var description: String { "k3 KL to the reference × \(coef)" }

    public func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator) {
        let r = Double(t.referenceLogProb - t.logProb)
        g.loss += coef * scale * (exp(r) - 1 - r)
        // ∂ℓ/∂log π_θ = β(1 − eʳ), so the NLL weight is −β(1 − eʳ).
        g.nllWeight -= coef * scale * (1 - exp(r))
    }
}

// MARK: distribution terms

/// Entropy bonus ℓ = −η·H(π_θ(·|prefix)); ∂ℓ/∂z_v = η·p_v·(log p_v + H).
public struct EntropyBonus: LossTerm {
    public var coef: Double
    public init(coef: Double) { self.coef = coef }
    public var kind: TermKind { .distribution }
    public var reads: TermInputs { [] }
    public var advantageDriven: Bool { false }
    public var description: String { "entropy bonus × \(coef)" }

    public func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator) {
        let p = t.probs, lp = t.logProbs, h = t.entropy
        for v in 0..<t.vocab { g.row[v] += Float(coef * scale * p[v] * (lp[v] + h)) }
        g.loss -= coef * scale * h
    }
}

/// Distillation toward a teacher's token distributions: ℓ = α·D(p, q) at every distilled
/// completion token (those the trainer gives a teacher row), a dense signal that does not
/// need an advantage.
public struct TeacherDivergence: LossTerm {
    public var coef: Double
    public var divergence: Divergence
    public init(coef: Double, divergence: Divergence = .reverseKL) { self.coef = coef; self.divergence = divergence }
    public var kind: TermKind { .distribution }
    public var reads: TermInputs { .teacher }
    public var advantageDriven: Bool { false }
    public var description: String { "\(divergence) to the teacher × \(coef)" }

    public func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator) {
        let p = t.probs, lp = t.logProbs, lq = t.teacherLogProbs, V = t.vocab
        guard lq.count == V else { return }
        let c = coef * scale
        let before = g.loss
        defer {
            g.distilled += 1
            g.divergenceSum += (g.loss - before) / c  // validation keeps α > 0
        }
        switch divergence {
        case .reverseKL:
            // ∂KL(p‖q)/∂z_v = p_v (log p_v − log q_v − KL)
            var kl = 0.0
            for v in 0..<V { kl += p[v] * (lp[v] - Double(lq[v])) }
            for v in 0..<V { g.row[v] += Float(c * p[v] * (lp[v] - Double(lq[v]) - kl)) }
            g.loss += c * kl
        case .forwardKL:
            // ∂KL(q‖p)/∂z_v = p_v − q_v
            let q = t.teacherProbs
            var kl = 0.0
            for v in 0..<V where q[v] > 0 { kl += Double(q[v]) * (Double(lq[v]) - lp[v]) }
            for v in 0..<V { g.row[v] += Float(c * (p[v] - Double(q[v]))) }
            g.loss += c * kl
        case .jsd(let beta):
            // ∂JSD/∂p_v = (1 − β) log(p_v/m_v); through the softmax, p_v (d_v − Σ_u p_u d_u).
            let q = t.teacherProbs
            withUnsafeTemporaryAllocation(of: Double.self, capacity: V) { d in
                var jsd = 0.0, mean = 0.0
                for v in 0..<V {
                    d[v] = 0
                    let qv = Double(q[v]), m = beta * qv + (1 - beta) * p[v]
                    guard m > 0 else { continue }
                    let logM = log(m)
                    if qv > 0 { jsd += beta * qv * (Double(lq[v]) - logM) }
                    if p[v] > 0 { jsd += (1 - beta) * p[v] * (lp[v] - logM) }
                    d[v] = (1 - beta) * (lp[v] - logM)
                    mean += p[v] * d[v]
                }
                for v in 0..<V { g.row[v] += Float(c * p[v] * (d[v] - mean)) }
                g.loss += c * jsd
            }
        }
    }
}

/// The sampled-token form of on-policy distillation: a policy gradient whose per-token
/// advantage is the teacher's log-probability of the sampled token minus the student's,
/// A = sg(log π_T(y) − log π_θ(y)), so ℓ = −α·A·log π_θ(y). Over y ~ π_θ its expected
/// gradient is exactly that of α·KL(π_θ ‖ π_T); it reads one entry of the teacher's row
/// instead of V. The loss it reports is α·(log π_θ(y) − log π_T(y)), the sampled estimate
/// of the reverse KL.
public struct SampledTokenDistillation: LossTerm {
    public var coef: Double
    public init(coef: Double) { self.coef = coef }
    public var kind: TermKind { .sampledToken }
    public var reads: TermInputs { .teacher }
    public var advantageDriven: Bool { false }
    public var description: String { "sampled-token distillation (A = log π_T − log π_θ) × \(coef)" }

    public func apply(_ t: TokenView, scale: Double, _ g: inout TermAccumulator) {
        guard t.teacherLogProbs.count == t.vocab else { return }
        let gap = Double(t.teacherLogProbs[t.target]) - Double(t.logProb)
        g.nllWeight += coef * scale * gap
        g.loss -= coef * scale * gap
        g.distilled += 1
        g.divergenceSum -= gap
    }
}

extension LossTerm {
    /// The term's loss and its full gradient with respect to one token's logits, in Double
    /// (sampled-token terms expanded to nllWeight · (p − onehot)). The trainer never calls
    /// it; it states each term's meaning on one row, for tests and for readers.
    /// `t.probs` must hold the student's distribution.
    public func rowLossAndGradient(_ t: TokenView, scale: Double = 1) -> (loss: Double, gradient: [Double]) {
        precondition(t.probs.count == t.vocab, "rowLossAndGradient needs the student's full distribution")
        var row = [Float](repeating: 0, count: t.vocab)
        let (loss, nllWeight) = row.withUnsafeMutableBufferPointer { r in
            var acc = TermAccumulator(row: r)
            apply(t, scale: scale, &acc)
            return (acc.loss, acc.nllWeight)
        }
        var grad = row.map(Double.init)
        if kind == .sampledToken {
            for v in 0..<t.vocab { grad[v] = nllWeight * (t.probs[v] - (v == t.target ? 1 : 0)) }
        }
        return (loss, grad)
    }
}
