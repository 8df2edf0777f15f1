import Rewards
/// How a method turns a group's rewards into per-token advantages: one array per rollout,
/// as long as its completion.
public protocol AdvantageEstimator: Sendable {
    func callAsFunction(_ group: RolloutGroup) -> [[Double]]
}

func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }

func std(_ xs: [Double]) -> Double {
    let m = mean(xs)
    return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(1, xs.count))).squareRoot()
}

/// Broadcasts one scalar advantage per rollout to all of its tokens.
func broadcast(_ group: RolloutGroup, _ a: [Double]) -> [[Double]] {
    zip(group.rollouts, a).map { r, x in Array(repeating: x, count: r.completion.count) }
}

/// GRPO's A_i = (r_i − mean r)/(std r + 1e-6), on every token of rollout i.
public struct GroupNormalized: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] {
        let r = g.rewards, m = mean(r), s = std(r)
        return broadcast(g, r.map { ($0 - m) / (s + 1e-6) })
    }
}

/// Dr. GRPO's A_i = r_i − mean r (no std normalisation).
public struct GroupCentered: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] {
        let r = g.rewards, m = mean(r)
        return broadcast(g, r.map { $0 - m })
    }
}

/// RLOO's leave-one-out baseline A_i = r_i − mean_{j≠i} r_j (0 for a group of one).
public struct LeaveOneOut: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] {
        let r = g.rewards, n = Double(r.count), total = r.reduce(0, +)
        guard r.count > 1 else { return broadcast(g, r.map { _ in 0 }) }
        return broadcast(g, r.map { $0 - (total - $0) / (n - 1) })
    }
}

/// Rejection sampling's marks: A = 1 on accepted rollouts (`RuleReward.accepts`: reward
/// ≥ 0.5, i.e. 1 from a verifier), 0 on the rest.
public struct CorrectOnly: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] { broadcast(g, g.rewards.map { RuleReward.accepts($0) ? 1 : 0 }) }
}

/// No advantage at all (every token 0): a method whose terms ignore rewards (pure
/// self-distillation).
public struct NoAdvantage: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] { broadcast(g, g.rewards.map { _ in 0 }) }
}

/// Process credit from the step verifier. Each step's score (the final answer is the last
/// step) is normalised over all steps of the group, r̃ = (r − mean)/(std + 1e-6), and a
/// token's advantage is the sum of the normalised scores of its own step and every later
/// step (GRPO's process supervision), so credit lands on the steps that caused success or
/// failure; the EOS token and anything past the text carry the answer's credit.
public struct ProcessCredit: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] {
        let all = g.rollouts.flatMap { $0.steps.map(\.score) }
        let m = mean(all), s = std(all)
        return g.rollouts.map { r in
            var adv = [Double](repeating: 0, count: r.completion.count)
            var suffix = 0.0
            for step in r.steps.reversed() {
                suffix += (step.score - m) / (s + 1e-6)
                let lo = min(step.start, adv.count), hi = min(max(step.end, step.start), adv.count)
                for t in lo..<hi { adv[t] = suffix }
            }
            if let last = r.steps.last {
                let answerAdv = (last.score - m) / (s + 1e-6)
                for t in min(last.end, adv.count)..<adv.count { adv[t] = answerAdv }
            }
            return adv
        }
    }
}
