import Foundation
import Tasks

// MARK: multi-turn episodes

/// How credit is spread over the turns of a multi-turn episode (`turn_credit = …`).
///
/// An episode stops at its first accepted attempt, so its turn rewards r₁ … r_τ are 0 except
/// r_τ = 1 on success.
public enum TurnCredit: Sendable, Hashable, KnobSpelled {
    /// Outcome reward on the final turn only: the episode's reward (solved within T turns)
    /// goes through the method's own advantage estimator, on every token the policy wrote.
    case final
    /// Per-turn rewards with a turn-improvement bonus, r̃_t = r_t + α·(r_t − r_{t−1}) (SCoRe,
    /// arXiv 2409.12917; r₀ = r₁, so turn 1 gets no bonus), and discounted returns
    /// G_t = Σ_{k≥t} γ^{k−t} r̃_k, normalised over every turn of the problem's group of
    /// episodes, A = (G − mean G)/(std G + 1e-6) (GTPO, arXiv 2511.14846); each turn's
    /// tokens carry its own turn's advantage. Because an episode stops at success,
    /// r_{t−1} = 0 wherever the bonus is paid: it raises a success after feedback to 1 + α.
    case discounted(gamma: Double, bonus: Double)

    public var description: String {
        switch self {
        case .final: "final"
        case .discounted(let g, let a): "discounted:\(knobNumber(g))" + (a == 0 ? "" : ",\(knobNumber(a))")
        }
    }

    public init?(_ s: String) {
        let t = s.trimmingCharacters(in: .whitespaces)
        let parts = t.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        switch (parts.first ?? "", parts.count) {
        case ("final", 1): self = .final
        case ("discounted", 2):
            let f = parts[1].split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 1 || f.count == 2, let g = Double(f[0]), g > 0, g <= 1 else { return nil }
            let a = f.count == 2 ? Double(f[1]) : 0
            guard let a, a >= 0, a.isFinite else { return nil }
            self = .discounted(gamma: g, bonus: a)
        default: return nil
        }
    }

    public static let knob = "turn_credit"
    public static let spellings = "final or discounted:γ[,α] (0 < γ ≤ 1, α ≥ 0)"
}

extension Feedback: KnobSpelled {
    public init?(_ s: String) { self.init(rawValue: s.trimmingCharacters(in: .whitespaces)) }
    public var description: String { rawValue }
    public static let knob = "feedback"
    public static let spellings = "retry, reason or step"
}

/// A cell's training episodes (`turns`, `feedback`, `turn_credit`): up to `turns` attempts
/// per rollout, the environment's feedback after each rejected one, and how credit is
/// spread over the turns.
public struct EpisodeSpec: Codable, Hashable, Sendable {
    public var turns: Int
    public var feedback: Feedback
    public var credit: TurnCredit

    public init(turns: Int = 1, feedback: Feedback = .reason, credit: TurnCredit = .final) {
        self.turns = turns
        self.feedback = feedback
        self.credit = credit
    }

    /// How the episodes lay out in the context.
    public var layout: EpisodeLayout { EpisodeLayout(turns: turns, feedback: feedback) }

    /// The most turns a cell may ask for.
    public static let maxTurns = 16
}
