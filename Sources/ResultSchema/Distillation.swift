import Foundation

/// How much a policy gains from seeing the reference solution: pass@1 (avg@1 over K
/// samples) with the privileged prompt minus pass@1 with the plain prompt, on the same
/// held-out problems. A self-distillation teacher is only better informed than its
/// student by this much.
public struct HintUplift: Codable, Sendable, Hashable {
    /// A task family, or "all".
    public var family: String
    /// A base pass bucket (`PassBucket` raw value), or "all".
    public var bucket: String
    public var problems: Int
    public var plain: Double
    public var hinted: Double
    /// hinted − plain.
    public var uplift: Double
    /// Standard error of `uplift`: of the mean of the per-problem differences (paired);
    /// nil for a single problem.
    public var se: Double?

    public init(family: String, bucket: String, problems: Int, plain: Double, hinted: Double, se: Double?) {
        self.family = family; self.bucket = bucket; self.problems = problems
        self.plain = plain; self.hinted = hinted; uplift = hinted - plain; self.se = se
    }
}

/// A self-distillation cell's teacher at one evaluation point: how far the policy is from
/// it, how much the hint helps it, and how much of the training since the previous point
/// it taught. With KL to the base and entropy (on the `EvalPoint` itself), a collapse is
/// explained by numbers.
public struct TeacherDiagnostics: Codable, Sendable, Hashable {
    /// Mean per-token divergence (the cell's own divergence) of the policy from its teacher
    /// over the policy's eval samples, the teacher reading the privileged prompt.
    public var divergence: Double
    /// The teacher's hint uplift over the cell's eval problems (family "all").
    public var uplift: HintUplift
    /// Fraction of trained completion tokens that received a distillation loss since the
    /// previous evaluation point (0 before the first update).
    public var distilledFraction: Double
    /// Mean per-token divergence to the teacher on those distilled training tokens (nil
    /// when none was distilled).
    public var trainingDivergence: Double?

    public init(divergence: Double, uplift: HintUplift, distilledFraction: Double, trainingDivergence: Double?) {
        self.divergence = divergence; self.uplift = uplift
        self.distilledFraction = distilledFraction; self.trainingDivergence = trainingDivergence
    }
}

// MARK: the self-distillation knobs

/// A knob value that grid files, options and cell documents all write as its spelling
/// (`ema:0.05`, `jsd:0.5`, `confident:0.9`): `description` writes it, `init?(_:)` reads it
/// back, and it is coded as that string.
public protocol KnobSpelled: LosslessStringConvertible, Codable {
    /// The knob's grid key, for messages.
    static var knob: String { get }
    /// What the knob accepts, for messages.
    static var spellings: String { get }
}

extension KnobSpelled {
    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = Self(s) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "\(Self.knob) '\(s)' is not \(Self.spellings)"))
        }
        self = v
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Weights a method's forwards can come from (its teacher, its reference). As a knob
/// (`teacher = "…"`) it is written `base`, `lag:k`, `ema:r` or `policy`.
public enum PolicySource: Sendable, Hashable, KnobSpelled {
    /// The current policy (no extra weights; a forward on another prompt, for example).
    case policy
    /// The policy as it was `k` updates ago (it trails the policy; it is not frozen).
    case lagged(Int)
    /// An exponential moving average of the policy: after each update θ̄ ← θ̄ + r·(θ − θ̄),
    /// 0 < r < 1 (r = 1 would be the policy, r → 0 the frozen base).
    case ema(rate: Double)
    /// The frozen base the cell started from.
    case frozenBase

    /// The knob spelling: "policy", "lag:k", "ema:r", "base".
    public var description: String {
        switch self {
        case .policy: "policy"
        case .lagged(let k): "lag:\(k)"
        case .ema(let r): "ema:\(knobNumber(r))"
        case .frozenBase: "base"
        }
    }

    /// In words, for messages and the README.
    public var prose: String {
        switch self {
        case .policy: "the current policy"
        case .lagged(let k): "the policy \(k) updates old"
        case .ema(let r): "an EMA of the policy (rate \(compactNumber(r)))"
        case .frozenBase: "the frozen base"
        }
    }

    /// Parses the knob spelling; nil for anything else (a lag below 1 or a rate outside
    /// (0, 1) included).
    public init?(_ s: String) {
        let parts = s.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        switch (parts.first, parts.count) {
        case ("policy", 1): self = .policy
        case ("base", 1): self = .frozenBase
        case ("lag", 2):
            guard let k = Int(parts[1]), k >= 1 else { return nil }
            self = .lagged(k)
        case ("ema", 2):
            guard let r = Double(parts[1]), r > 0, r < 1 else { return nil }
            self = .ema(rate: r)
        default: return nil
        }
    }

    public static let knob = "teacher"
    public static let spellings = "base, lag:k (k ≥ 1), ema:r (0 < r < 1) or policy"


    /// Updates of history this source reads (0 unless lagged).
    public var lag: Int { if case .lagged(let k) = self { k } else { 0 } }
}

/// A divergence between the student π_θ (p) and a teacher distribution (q) over the whole
/// vocabulary.
public enum Divergence: Sendable, Hashable, CustomStringConvertible {
    /// KL(p ‖ q): mode-seeking, the on-policy distillation default.
    case reverseKL
    /// KL(q ‖ p): mass-covering, what supervised distillation minimises.
    case forwardKL
    /// Generalised Jensen–Shannon (GKD): with m = β·q + (1 − β)·p,
    /// JSD(β) = β·KL(q ‖ m) + (1 − β)·KL(p ‖ m), 0 < β < 1.
    case jsd(beta: Double)

    /// The knob spelling: "reverse_kl", "forward_kl", "jsd:β".
    public var description: String {
        switch self {
        case .reverseKL: "reverse_kl"
        case .forwardKL: "forward_kl"
        case .jsd(let b): "jsd:\(knobNumber(b))"
        }
    }
}

/// How a self-distillation method moves the student toward its teacher (`divergence = …`).
public enum DistillLoss: Sendable, Hashable, KnobSpelled {
    /// A divergence over the full vocabulary at every distilled token.
    case full(Divergence)
    /// The sampled-token form: a policy gradient with per-token advantage
    /// log π_T(y) − log π_θ(y) on the sampled token y (its expectation is the reverse KL's
    /// gradient; one logit row's worth of information instead of V).
    case sampledToken

    public var description: String {
        switch self {
        case .full(let d): d.description
        case .sampledToken: "sampled"
        }
    }

    public init?(_ s: String) {
        let t = s.trimmingCharacters(in: .whitespaces)
        switch t {
        case "reverse_kl": self = .full(.reverseKL)
        case "forward_kl": self = .full(.forwardKL)
        case "sampled": self = .sampledToken
        default:
            guard t.hasPrefix("jsd:"), let b = Double(t.dropFirst(4).trimmingCharacters(in: .whitespaces)), b > 0, b < 1 else {
                return nil
            }
            self = .full(.jsd(beta: b))
        }
    }

    public static let knob = "divergence"
    public static let spellings = "reverse_kl, forward_kl, jsd:β (0 < β < 1) or sampled"

}

/// Which completion tokens receive the distillation loss (`distill_on = …`).
public enum DistillMask: Sendable, Hashable, KnobSpelled {
    /// Every completion token of every rollout that has a teacher.
    case all
    /// Only the tokens of rollouts the training reward rejected, i.e. scored below 0.5
    /// (SRPO's routing: successes are left to the reward terms).
    case failed
    /// Only tokens where the teacher is confident: its largest probability ≥ τ.
    case confident(Double)

    public var description: String {
        switch self {
        case .all: "all"
        case .failed: "failed"
        case .confident(let t): "confident:\(knobNumber(t))"
        }
    }

    public init?(_ s: String) {
        let t = s.trimmingCharacters(in: .whitespaces)
        switch t {
        case "all": self = .all
        case "failed": self = .failed
        default:
            guard t.hasPrefix("confident:"), let x = Double(t.dropFirst(10).trimmingCharacters(in: .whitespaces)), x > 0, x <= 1
            else { return nil }
            self = .confident(x)
        }
    }

    public static let knob = "distill_on"
    public static let spellings = "all, failed or confident:τ (0 < τ ≤ 1)"

}
