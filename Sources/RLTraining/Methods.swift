import Tasks

/// One rollout: a sampled completion of a problem with its reward.
public struct Rollout: Sendable {
    public var completion: [Int32]
    /// Log-probability of each completion token under the policy that sampled it.
    public var behaviorLogProbs: [Float]
    /// Verifier reward (1 or 0).
    public var reward: Double
    /// Step scores from the step verifier (dense/process rewards).
    public var steps: [StepScore]
}

/// The n rollouts of one problem.
public struct RolloutGroup: Sendable {
    public var problem: Problem
    public var rollouts: [Rollout]

    public var rewards: [Double] { rollouts.map(\.reward) }
    /// A group whose rewards are all equal carries no GRPO signal (the dead zone).
    public var hasZeroVariance: Bool {
        guard let r0 = rollouts.first?.reward else { return true }
        return rollouts.allSatisfy { $0.reward == r0 }
    }
}

/// How token losses are aggregated into the batch loss.
public enum Aggregation: String, Codable, Sendable {
    /// Mean over every completion token in the batch (GRPO as in DAPO, token-level).
    case tokenMean = "token_mean"
    /// Sum over tokens divided by a constant, rollouts × max generation length: no length
    /// normalisation (Dr. GRPO).
    case constant
    /// Sum over each sequence's tokens, mean over sequences (REINFORCE/RLOO).
    case sequenceSum = "sequence_sum"
}

/// The surrogate objective every policy-gradient method shares. Per completion token t
/// with ratio ρ = π_θ / π_behavior and advantage A:
///
///     ℓ_t = −min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A)        (PPO clipped ratio)
///           + β · k3(π_ref, π_θ)                                (KL to the base, k3 estimator)
///           − η · H(π_θ(·|prefix))                              (entropy bonus)
///           + α · KL(π_θ ‖ π_teacher)(·|prefix)                 (self-distillation, opsd)
///
/// aggregated by `aggregation`. With policy lag the ratio in the gradient is truncated at
/// `isCap` (truncated importance sampling).
public struct Objective: Codable, Hashable, Sendable {
    public var clipLow: Double = 0.2
    public var clipHigh: Double = 0.2
    public var aggregation: Aggregation = .tokenMean
    public var klCoef: Double = 0
    public var entropyCoef: Double = 0
    /// Weight of the per-token reverse KL to the self-distillation teacher.
    public var distillCoef: Double = 0
    public var isCap: Double = 2

    /// The policy-gradient part of one token's loss: given the ratio ρ and advantage A,
    /// returns the token's surrogate loss −min(ρA, clip(ρ)A), the weight w such that the
    /// gradient equals that of −w·log π_θ(token) (w = min(ρ, isCap)·A when the unclipped
    /// branch is active, else 0), and whether the clipped branch was taken.
    public func policyGradient(ratio rho: Double, advantage a: Double) -> (loss: Double, weight: Double, clipped: Bool) {
        guard a != 0 else { return (0, 0, false) }
        let unclipped = rho * a
        let clipped = min(max(rho, 1 - clipLow), 1 + clipHigh) * a
        if unclipped <= clipped { return (-unclipped, min(rho, isCap) * a, false) }
        return (-clipped, 0, true)
    }
}

/// An RL post-training method: how a group's rewards become per-token advantages, which
/// groups are trained on, and its objective's settings.
public protocol RLMethod: Sendable {
    var name: String { get }
    var objective: Objective { get }
    /// Per-token advantages for each rollout of a group (one array per rollout, as long as
    /// its completion).
    func advantages(_ group: RolloutGroup) -> [[Double]]
    /// Whether the method discards zero-variance groups and samples replacements (DAPO).
    var dynamicSampling: Bool { get }
    /// Whether the method needs teacher forward passes (self-distillation).
    var needsTeacher: Bool { get }
}

extension RLMethod {
    public var dynamicSampling: Bool { false }
    public var needsTeacher: Bool { false }
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

/// GRPO: A_i = (r_i − mean r) / (std r + 1e-6), token-mean aggregation, symmetric clip,
/// optional KL to the base (k3) and entropy bonus.
public struct GRPO: RLMethod {
    public let name = "grpo"
    public var objective: Objective
    public init(klCoef: Double = 0, entropyCoef: Double = 0) {
        objective = Objective(klCoef: klCoef, entropyCoef: entropyCoef)
    }
    public func advantages(_ g: RolloutGroup) -> [[Double]] {
        let r = g.rewards, m = mean(r), s = std(r)
        return broadcast(g, r.map { ($0 - m) / (s + 1e-6) })
    }
}

/// Dr. GRPO: A_i = r_i − mean r (no std normalisation), constant normaliser instead of
/// per-token means (no length normalisation).
public struct DrGRPO: RLMethod {
    public let name = "dr_grpo"
    public var objective = Objective(aggregation: .constant)
    public init() {}
    public func advantages(_ g: RolloutGroup) -> [[Double]] {
        let r = g.rewards, m = mean(r)
        return broadcast(g, r.map { $0 - m })
    }
}

/// RLOO: leave-one-out baseline A_i = r_i − mean_{j≠i} r_j, sequence-sum aggregation.
public struct RLOO: RLMethod {
    public let name = "rloo"
    public var objective = Objective(aggregation: .sequenceSum)
    public init() {}
    public func advantages(_ g: RolloutGroup) -> [[Double]] {
        let r = g.rewards, n = Double(r.count), total = r.reduce(0, +)
        guard r.count > 1 else { return broadcast(g, r.map { _ in 0 }) }
        return broadcast(g, r.map { $0 - (total - $0) / (n - 1) })
    }
}

/// DAPO: GRPO advantages with clip-higher (ε_low 0.2, ε_high 0.28), token-mean
/// aggregation, and dynamic sampling: zero-variance groups are dropped and replaced until
/// the batch holds Bp informative groups; every discarded rollout's FLOPs still count.
public struct DAPO: RLMethod {
    public let name = "dapo"
    public var objective = Objective(clipLow: 0.2, clipHigh: 0.28)
    public init() {}
    public var dynamicSampling: Bool { true }
    public func advantages(_ g: RolloutGroup) -> [[Double]] { GRPO().advantages(g) }
}

/// Expert iteration: rejection sampling, then supervised updates on the correct samples
/// (advantage 1 on correct rollouts, 0 on the rest; token mean over the batch; no clip).
public struct ExpertIteration: RLMethod {
    public let name = "expert_iteration"
    public var objective = Objective(clipLow: .infinity, clipHigh: .infinity)
    public init() {}
    public func advantages(_ g: RolloutGroup) -> [[Double]] {
        broadcast(g, g.rewards.map { $0 == 1 ? 1 : 0 })
    }
}

/// On-policy self-distillation. The teacher is the policy itself (or a lagged copy)
/// conditioned on the privileged rendering (problem plus reference solution); the student
/// samples without it and is trained toward the teacher's token distributions on its own
/// samples by the per-token reverse KL(π_θ ‖ π_teacher), a dense signal on every token,
/// optionally mixed with GRPO's verifier advantages (weight `rewardWeight`). Teacher
/// forward passes count against the budget.
public struct OPSD: RLMethod {
    public let name = "opsd"
    public var objective: Objective
    public var rewardWeight: Double
    /// Teacher lag in updates (0 = the current policy).
    public var teacherLag: Int
    public init(distillCoef: Double = 1, rewardWeight: Double = 0, teacherLag: Int = 0) {
        objective = Objective(distillCoef: distillCoef)
        self.rewardWeight = rewardWeight
        self.teacherLag = teacherLag
    }
    public var needsTeacher: Bool { true }
    public func advantages(_ g: RolloutGroup) -> [[Double]] {
        GRPO().advantages(g).map { $0.map { $0 * rewardWeight } }
    }
}

/// Process reward: dense reward from the step verifier. Each step's score (the final
/// answer is the last step) is normalised over all steps of the group,
/// r̃ = (r − mean) / (std + 1e-6), and a token's advantage is the sum of the normalised
/// scores of its own step and every later step (GRPO's process supervision), so credit
/// lands on the steps that caused success or failure.
public struct ProcessReward: RLMethod {
    public let name = "process"
    public var objective = Objective()
    public init() {}
    public func advantages(_ g: RolloutGroup) -> [[Double]] {
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
            // The EOS token (and anything past the text) carries the answer's credit.
            if let last = r.steps.last {
                let answerAdv = (last.score - m) / (s + 1e-6)
                for t in min(last.end, adv.count)..<adv.count { adv[t] = answerAdv }
            }
            return adv
        }
    }
}

/// Method registry by name.
public enum Methods {
    public static let names = ["grpo", "dr_grpo", "rloo", "dapo", "expert_iteration", "opsd", "process"]

    /// The method-specific knobs `name` reads.
    public static func knobs(of name: String) -> Set<MethodKnob> {
        switch name {
        case "grpo": [.kl, .entropy]
        case "opsd": [.teacherLag, .distillRewardWeight]
        default: []
        }
    }

    /// The method called `name` with its knobs (each applies only to the method that has it).
    public static func make(
        _ name: String, klCoef: Double = 0, entropyCoef: Double = 0, distillRewardWeight: Double = 0, teacherLag: Int = 0
    ) -> (any RLMethod)? {
        switch name {
        case "grpo": GRPO(klCoef: klCoef, entropyCoef: entropyCoef)
        case "dr_grpo": DrGRPO()
        case "rloo": RLOO()
        case "dapo": DAPO()
        case "expert_iteration": ExpertIteration()
        case "opsd": OPSD(rewardWeight: distillRewardWeight, teacherLag: teacherLag)
        case "process": ProcessReward()
        default: nil
        }
    }
}
