import Evaluation
import ResultSchema
import Rewards
import Tasks

/// One rollout: a sampled completion of a problem with its reward.
public struct Rollout: Sendable {
    public var completion: [Int32]
    /// Log-probability of each completion token under the policy that sampled it.
    public var behaviorLogProbs: [Float]
    /// The training reward (the exact verifier's 1 or 0 unless the cell trains on a proxy).
    public var reward: Double
    /// The exact verifier's reward, recorded whatever the training reward (never read by a
    /// loss unless it is the training reward).
    public var gold: Double
    /// Step scores from the step verifier (dense/process rewards); for an episode, of its
    /// last attempt (ranges in the completion's coordinates).
    public var steps: [StepScore]
    /// The turns of a multi-turn episode (`completion` holds every attempt and the feedback
    /// between them); empty for a single-turn rollout.
    public var turns: [EpisodeTurn] = []

    /// Which completion tokens the policy wrote and is trained on (feedback is not); nil
    /// when it wrote them all.
    public var policyTokens: [Bool]? {
        guard turns.count > 1 else { return nil }
        var mask = [Bool](repeating: false, count: completion.count)
        for t in turns { for i in t.start..<t.end { mask[i] = true } }
        return mask
    }
}

/// The n rollouts of one problem.
public struct RolloutGroup: Sendable {
    public var problem: Problem
    public var rollouts: [Rollout]

    public var rewards: [Double] { rollouts.map(\.reward) }
    /// Whether every rollout got the same reward: GRPO's dead zone (its advantages vanish).
    /// Whether a group carries gradient for a given method is `RLMethod.carriesGradient`.
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

/// What prompt a teacher sees in front of the student's completion.
public enum TeacherPrompt: Sendable, Hashable {
    /// The student's own prompt.
    case plain
    /// The privileged rendering: the problem plus its reference solution.
    case privileged
    /// The problem plus a successful sibling rollout of the same group (`sdpo`): the first
    /// successful rollout other than the student's own; a rollout without one (no success
    /// in the group, or it is the group's only success) is not distilled.
    case sibling
}

/// A method's teacher: whose weights, on which prompt, teaching which tokens.
public struct Teacher: Sendable, Hashable {
    public var weights: PolicySource
    public var prompt: TeacherPrompt
    public var tokens: DistillMask
    public init(weights: PolicySource, prompt: TeacherPrompt, tokens: DistillMask = .all) {
        self.weights = weights; self.prompt = prompt; self.tokens = tokens
    }

    /// The teacher prompt for rollout `i` of `group`, or nil when that rollout is not
    /// distilled (no successful sibling; `failed` and it succeeded; or the teacher's
    /// sequence would not fit `context`).
    public func prompt(for i: Int, of group: RolloutGroup, context: Int) -> [Int32]? {
        let r = group.rollouts[i]
        if case .failed = tokens, RuleReward.accepts(r.reward) { return nil }
        let p: [Int32]
        switch prompt {
        case .plain: p = group.problem.promptTokens
        case .privileged: p = group.problem.privilegedPromptTokens
        case .sibling:
            guard let j = group.rollouts.indices.first(where: { $0 != i && RuleReward.accepts(group.rollouts[$0].reward) }) else { return nil }
            var shown = group.rollouts[j].completion
            if shown.last == Vocabulary.eos { shown.removeLast() }
            p = group.problem.privilegedPromptTokens(showing: shown)
        }
        return p.count + r.completion.count <= context ? p : nil
    }
}

/// How a method fills its batch.
public enum SamplingRule: Sendable, Hashable {
    /// Bp problems, n rollouts each, trained as sampled.
    case plain
    /// Groups that carry no gradient are discarded and replaced (up to `maxRounds` sampling
    /// rounds per step) until the batch holds Bp groups; discarded rollouts are charged.
    case dynamic(maxRounds: Int)
}

/// An RL post-training method, as a declaration: how a group's rewards become per-token
/// advantages, which loss terms with which coefficients, how token losses are aggregated,
/// which teacher and reference its terms read, and how it samples. The trainer runs the
/// forwards the terms ask for, applies the terms, and runs the backward; it knows no method
/// by name. A group whose advantages are all 0 carries no gradient for a method whose terms
/// are all advantage-driven (`carriesGradient`).
public struct RLMethod: Sendable {
    public var name: String
    public var advantages: any AdvantageEstimator
    public var terms: [any LossTerm]
    public var aggregation: Aggregation
    /// The reference of `.reference`-reading terms (k3 KL), nil when no term reads one.
    public var reference: PolicySource?
    /// The teacher of `.teacher`-reading terms (distillation), nil when none reads one.
    public var teacher: Teacher?
    public var sampling: SamplingRule
    /// The cell knobs this method reads (any other set away from its default is an error);
    /// every method reads its training reward.
    public var knobs: Set<MethodKnob>

    public init(
        name: String, advantages: any AdvantageEstimator, terms: [any LossTerm], aggregation: Aggregation = .tokenMean,
        reference: PolicySource? = nil, teacher: Teacher? = nil, sampling: SamplingRule = .plain, knobs: Set<MethodKnob> = [.reward]
    ) {
        self.name = name; self.advantages = advantages; self.terms = terms; self.aggregation = aggregation
        self.reference = reference; self.teacher = teacher; self.sampling = sampling; self.knobs = knobs
    }

    /// Everything the terms read, in one set.
    public var reads: TermInputs { terms.reduce([]) { $0.union($1.reads) } }

    /// Why the declaration cannot run (a term reads a forward the method does not name).
    public var validationError: String? {
        if reads.contains(.reference) && reference == nil { return "\(name): a term reads a reference but none is declared" }
        if reads.contains(.teacher) && teacher == nil { return "\(name): a term reads a teacher but none is declared" }
        if case .dynamic(let r) = sampling, r < 1 { return "\(name): dynamic sampling needs at least one round" }
        let rates = [teacher?.weights, reference].compactMap { s -> Double? in if case .ema(let r)? = s { r } else { nil } }
        if rates.contains(where: { !($0 > 0 && $0 < 1) }) { return "\(name): the EMA rate must be in (0, 1)" }
        if Set(rates).count > 1 { return "\(name): the teacher and the reference read EMAs of different rates (one is kept)" }
        if case .lagged(let k)? = teacher?.weights, k < 1 { return "\(name): a lagged teacher needs a lag of at least 1" }
        if case .confident(let tau)? = teacher?.tokens, !(tau > 0 && tau <= 1) {
            return "\(name): the confidence threshold must be in (0, 1] (got \(tau))"
        }
        for term in terms {
            if let pg = term as? ClippedPolicyGradient, !(pg.isCap >= 1 + pg.clipHigh) {
                return "\(name): the IS cap \(pg.isCap) is below 1 + ε_high"
            }
            if let td = term as? TeacherDivergence, case .jsd(let b) = td.divergence, !(b > 0 && b < 1) {
                return "\(name): JSD needs 0 < β < 1 (got \(b))"
            }
        }
        return nil
    }

    /// Whether a group moves the policy under this method: when some token's advantage is
    /// not 0 and a term is advantage-driven; always when a term reads neither advantages
    /// nor a teacher (KL, entropy); and when a teacher-reading term has a rollout of the
    /// group to distill (`Teacher.prompt(for:of:context:)`; a confidence mask is decided
    /// per token later, so such a group counts as carrying gradient).
    public func carriesGradient(_ group: RolloutGroup, _ advantages: [[Double]], context: Int) -> Bool {
        if terms.contains(where: \.advantageDriven), advantages.contains(where: { $0.contains { $0 != 0 } }) { return true }
        if terms.contains(where: { !$0.advantageDriven && !$0.reads.contains(.teacher) }) { return true }
        guard let teacher, terms.contains(where: { $0.reads.contains(.teacher) }) else { return false }
        return group.rollouts.indices.contains { teacher.prompt(for: $0, of: group, context: context) != nil }
    }

    /// The oldest update any of the method's forwards reads.
    var oldestLag: Int { max(reference?.lag ?? 0, teacher?.weights.lag ?? 0) }
}

extension RLMethod {
    /// GRPO: A_i = (r_i − mean r)/(std r + 1e-6), token mean, symmetric clip 0.2; optional
    /// k3 KL to the frozen base and entropy bonus.
    public static func grpo(kl: Double = 0, entropy: Double = 0) -> RLMethod {
        RLMethod(
            name: "grpo", advantages: GroupNormalized(),
            terms: [ClippedPolicyGradient()] + (kl > 0 ? [ReferenceKL(coef: kl)] : []) + (entropy > 0 ? [EntropyBonus(coef: entropy)] : []),
            reference: kl > 0 ? .frozenBase : nil, knobs: MethodKnob.read(by: "grpo"))
    }

    /// Dr. GRPO: A_i = r_i − mean r (no std normalisation), constant normaliser (no length
    /// normalisation).
    public static let drGRPO = RLMethod(
        name: "dr_grpo", advantages: GroupCentered(), terms: [ClippedPolicyGradient()], aggregation: .constant,
        knobs: MethodKnob.read(by: "dr_grpo"))

    /// RLOO: leave-one-out baseline A_i = r_i − mean_{j≠i} r_j, sequence-sum aggregation.
    public static let rloo = RLMethod(
        name: "rloo", advantages: LeaveOneOut(), terms: [ClippedPolicyGradient()], aggregation: .sequenceSum,
        knobs: MethodKnob.read(by: "rloo"))

    /// DAPO: GRPO advantages, clip-higher (ε_low 0.2, ε_high 0.28), token mean, and dynamic
    /// sampling: groups without gradient are replaced (up to 8 rounds), their FLOPs charged.
    public static let dapo = RLMethod(
        name: "dapo", advantages: GroupNormalized(), terms: [ClippedPolicyGradient(clipLow: 0.2, clipHigh: 0.28)],
        sampling: .dynamic(maxRounds: 8), knobs: MethodKnob.read(by: "dapo"))

    /// Expert iteration: rejection sampling, then supervised updates on the correct samples
    /// (A = 1 on correct rollouts, 0 on the rest; token mean over the batch).
    public static let expertIteration = RLMethod(
        name: "expert_iteration", advantages: CorrectOnly(), terms: [SupervisedNLL()], knobs: MethodKnob.read(by: "expert_iteration"))

    /// The distillation term of a `DistillLoss`, weighted α.
    static func distillation(_ loss: DistillLoss, coef: Double) -> any LossTerm {
        switch loss {
        case .full(let d): TeacherDivergence(coef: coef, divergence: d)
        case .sampledToken: SampledTokenDistillation(coef: coef)
        }
    }

    static let distillKnobs = MethodKnob.read(by: "opsd")

    /// On-policy self-distillation (OPSD): the teacher (by default the frozen base) reads
    /// the privileged prompt (problem plus reference solution); the student is trained on
    /// its own samples toward the teacher's token distributions, α·D(π_θ, π_T), with no
    /// verifier signal.
    public static func opsd(
        teacher: PolicySource = CellDefaults.teacher, divergence: DistillLoss = CellDefaults.divergence,
        distill: Double = CellDefaults.distill, on tokens: DistillMask = CellDefaults.distillOn
    ) -> RLMethod {
        RLMethod(
            name: "opsd", advantages: NoAdvantage(), terms: [distillation(divergence, coef: distill)],
            teacher: Teacher(weights: teacher, prompt: .privileged, tokens: tokens), knobs: distillKnobs)
    }

    /// Self-distillation from a successful sibling (SDPO): no reference solution is needed;
    /// the teacher reads the problem plus the first successful rollout of the same group
    /// other than the student's own, and rollouts without one get no loss (a group without
    /// a success carries no gradient).
    public static func sdpo(
        teacher: PolicySource = CellDefaults.teacher, divergence: DistillLoss = CellDefaults.divergence,
        distill: Double = CellDefaults.distill, on tokens: DistillMask = CellDefaults.distillOn
    ) -> RLMethod {
        RLMethod(
            name: "sdpo", advantages: NoAdvantage(), terms: [distillation(divergence, coef: distill)],
            teacher: Teacher(weights: teacher, prompt: .sibling, tokens: tokens), knobs: distillKnobs)
    }

    /// Self-distilled policy gradient (SDPG): GRPO's advantages and clipped policy gradient,
    /// plus λ·D(π_θ, π_T) to the self-teacher on the privileged prompt (`distill` is λ).
    public static func sdpg(
        teacher: PolicySource = CellDefaults.teacher, divergence: DistillLoss = CellDefaults.divergence,
        distill: Double = CellDefaults.distill, on tokens: DistillMask = CellDefaults.distillOn
    ) -> RLMethod {
        RLMethod(
            name: "sdpg", advantages: GroupNormalized(), terms: [ClippedPolicyGradient(), distillation(divergence, coef: distill)],
            teacher: Teacher(weights: teacher, prompt: .privileged, tokens: tokens), knobs: distillKnobs)
    }

    /// Process reward: per-step credit from the step verifier (`ProcessCredit`).
    public static let process = RLMethod(name: "process", advantages: ProcessCredit(), terms: [ClippedPolicyGradient()])
}

/// Method registry by name.
public enum Methods {
    public static let names = ["grpo", "dr_grpo", "rloo", "dapo", "expert_iteration", "opsd", "sdpo", "sdpg", "process"]

    /// The method-specific knobs `name` reads.
    public static func knobs(of name: String) -> Set<MethodKnob> {
        make(name, CellDefaults.cell)?.knobs ?? []
    }

    /// The method a config names, with the knobs it reads taken from the config; with
    /// multi-turn episodes credited per turn (`turn_credit = discounted:…`), its advantages
    /// are `TurnReturns`.
    public static func make(_ name: String, _ c: CellConfig) -> RLMethod? {
        guard var m = declared(name, c) else { return nil }
        if c.episodeSpec.turns > 1, m.knobs.contains(.turnCredit), case .discounted(let gamma, let bonus) = c.episodeSpec.credit {
            m.advantages = TurnReturns(gamma: gamma, bonus: bonus)
        }
        return m
    }

    static func declared(_ name: String, _ c: CellConfig) -> RLMethod? {
        switch name {
        case "grpo": .grpo(kl: c.klCoef, entropy: c.entropyCoef)
        case "dr_grpo": .drGRPO
        case "rloo": .rloo
        case "dapo": .dapo
        case "expert_iteration": .expertIteration
        case "opsd": .opsd(teacher: c.teacher, divergence: c.divergence, distill: c.distill, on: c.distillOn)
        case "sdpo": .sdpo(teacher: c.teacher, divergence: c.divergence, distill: c.distill, on: c.distillOn)
        case "sdpg": .sdpg(teacher: c.teacher, divergence: c.divergence, distill: c.distill, on: c.distillOn)
        case "process": .process
        default: nil
        }
    }
}
