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
/// ≥ 0.5, i.e. 1 from a verifier), 0 on the rest; of a multi-turn episode only the
/// accepted attempt is marked (the rejected attempts before it are not imitated).
public struct CorrectOnly: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] {
        let marks = broadcast(g, g.rewards.map { RuleReward.accepts($0) ? 1 : 0 })
        return zip(g.rollouts, marks).map { r, a in
            guard r.turns.count > 1, let accepted = r.turns.last(where: \.correct) else { return a }
            var out = [Double](repeating: 0, count: a.count)
            for i in accepted.start..<accepted.end { out[i] = 1 }
            return out
        }
    }
}

/// No advantage at all (every token 0): a method whose terms ignore rewards (pure
/// self-distillation).
public struct NoAdvantage: AdvantageEstimator {
    public init() {}
    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] { broadcast(g, g.rewards.map { _ in 0 }) }
}

/// Credit per turn of multi-turn episodes (`TurnCredit.discounted`): turn t's reward r_t
/// (1 when its attempt was accepted; an episode stops there) plus the improvement bonus
/// α·(r_t − r_{t−1}) (r₀ = r₁), discounted returns G_t = Σ_{k≥t} γ^{k−t} r̃_k, normalised
/// over every turn of the group's episodes, A = (G − mean G)/(std G + 1e-6); each attempt's
/// tokens carry its turn's advantage, feedback tokens 0 (they are never trained). A
/// single-turn rollout is one turn with its reward, so on single-turn groups this is GRPO's
/// `GroupNormalized`.
public struct TurnReturns: AdvantageEstimator {
    public var gamma: Double
    public var bonus: Double
    public init(gamma: Double, bonus: Double = 0) {
        self.gamma = gamma
        self.bonus = bonus
    }

    /// The discounted returns G_t of one episode's turn rewards.
    public func returns(_ rewards: [Double]) -> [Double] {
        var shaped = rewards
        for t in rewards.indices.dropFirst() { shaped[t] += bonus * (rewards[t] - rewards[t - 1]) }
        var g = [Double](repeating: 0, count: rewards.count)
        var acc = 0.0
        for t in rewards.indices.reversed() {
            acc = shaped[t] + gamma * acc
            g[t] = acc
        }
        return g
    }

    public func callAsFunction(_ g: RolloutGroup) -> [[Double]] {
        // Each rollout's turns as (token range, reward); a single-turn rollout is one turn.
        let turns: [[(range: Range<Int>, reward: Double)]] = g.rollouts.map { r in
            r.turns.isEmpty ? [(0..<r.completion.count, r.reward)] : r.turns.map { ($0.start..<$0.end, $0.correct ? 1 : 0) }
        }
        let G = turns.map { returns($0.map(\.reward)) }
        let all = G.flatMap { $0 }, m = mean(all), s = std(all)
        return zip(g.rollouts, zip(turns, G)).map { r, episode in
            var adv = [Double](repeating: 0, count: r.completion.count)
            for (t, turn) in episode.0.enumerated() { for i in turn.range { adv[i] = (episode.1[t] - m) / (s + 1e-6) } }
            return adv
        }
    }
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
