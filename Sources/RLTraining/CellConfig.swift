import BasePolicies
import Evaluation
import Foundation
import ResultSchema
import Rewards
import Tasks

// `CellConfig` itself (its stored knobs, defaults and `value(of:)`) is part of the result
// schema (ResultSchema); what needs the methods, the bases or the task corpus is here.

extension CellConfig {
    /// The method object this config names, with its knobs applied.
    public func makeMethod() -> RLMethod? { Methods.make(method, self) }

    /// Method-specific knobs set away from their defaults that this config does not read
    /// (its method's knobs, the episode knobs only with `turns` > 1, the `rm_*` knobs only
    /// with `reward = "rm"`): they would change the cell's identity and nothing else.
    public func unusedKnobs() -> [MethodKnob] {
        let used = Methods.knobs(of: method).subtracting(MethodKnob.conditionalKnobs)
            .union(knobsRead.intersection(MethodKnob.conditionalKnobs))
        return MethodKnob.allCases.filter { !used.contains($0) && value(of: $0) != CellDefaults.cell.value(of: $0) }
    }

    /// "kl = 0.1 is not used by dapo (it is read by grpo)".
    public func unusedKnobMessage(_ knob: MethodKnob) -> String {
        if MethodKnob.rewardModelKnobs.contains(knob) {
            return "\(knob.rawValue) = \(value(of: knob)) is not used: it is read only with reward = \"rm\" (this cell's reward is \(rewardSource))"
        }
        if MethodKnob.episodeKnobs.contains(knob), Methods.knobs(of: method).contains(knob) {
            let gate = knob == .feedback ? "turns > 1 or eval_turns > 1" : "turns > 1"
            return "\(knob.rawValue) = \(value(of: knob)) is not used: it is read only with \(gate) (this cell has \(episodeSpec.turns) turn(s))"
        }
        let users = Methods.names.filter { Methods.knobs(of: $0).contains(knob) }
        return "\(knob.rawValue) = \(value(of: knob)) is not used by \(method)"
            + (users.isEmpty ? "" : " (it is read by \(users.joined(separator: ", ")))")
    }

    /// Why this config cannot run, or nil.
    public func validationError() -> String? {
        if makeMethod() == nil { return "method: unknown '\(method)' (known: \(Methods.names.joined(separator: ", ")))" }
        if let k = unusedKnobs().first { return "\(k.rawValue): " + unusedKnobMessage(k) }
        if rolloutsPerProblem < 1 { return "n: must be at least 1 (got \(rolloutsPerProblem))" }
        if problemsPerBatch < 1 { return "bp: must be at least 1 (got \(problemsPerBatch))" }
        if !(budgetFLOPs > 0) || !budgetFLOPs.isFinite { return "budget: must be a positive number of FLOPs (got \(budgetFLOPs))" }
        if !(learningRate > 0) { return "lr: must be positive (got \(learningRate))" }
        if policyLag < 0 { return "lag: must be >= 0 (got \(policyLag))" }
        if Methods.knobs(of: method).contains(.distill), !(distill > 0) || !distill.isFinite {
            return "distill: must be a positive number (got \(distill)); 0 would charge teacher forwards that teach nothing"
        }
        if method == "process", !rewardSource.isGold {
            return "reward: process credits steps with the exact step verifier, which has no proxy form; it trains on gold only (got \(rewardSource))"
        }
        if rewardSource == .learned, rewardModel == nil { return "reward: rm needs a reward-model spec" }
        if rewardSource != .learned, rewardModel != nil {
            return "rm_size: a reward-model spec on a cell whose reward is \(rewardSource) (it is read only with reward = \"rm\")"
        }
        if episodeSpec.turns > 1, !rewardSource.isGold {
            return "reward: multi-turn episodes are judged turn by turn by the exact verifier; they train on gold only (got \(rewardSource))"
        }
        if !(1...EpisodeSpec.maxTurns).contains(episodeSpec.turns) {
            return "turns: must be in 1...\(EpisodeSpec.maxTurns) (got \(episodeSpec.turns))"
        }
        if evalTurns == episodeSpec.turns { return "eval_turns: equal to turns (\(episodeSpec.turns)) is the default; leave it unset" }
        if let t = evalTurns, !(1...EpisodeSpec.maxTurns).contains(t) {
            return "eval_turns: must be in 1...\(EpisodeSpec.maxTurns) (got \(t))"
        }
        if let k = supportSamples, k < 4 { return "support_samples: need at least 4 (got \(k))" }
        if evalPoints < 2 { return "eval_points: need at least 2 (got \(evalPoints))" }
        if evalSamples < 4 { return "eval_samples: need at least 4 for avg@4 (got \(evalSamples))" }
        if minDifficulty < 1 { return "min_difficulty: must be at least 1 (got \(minDifficulty))" }
        if let m = maxDifficulty, m < minDifficulty { return "max_difficulty: \(m) is below min_difficulty \(minDifficulty)" }
        if let d = poolSize, d < 1 { return "pool_size: must be at least 1 (got \(d))" }
        if let b = trainBucket, poolSize == nil {
            return "train_bucket: '\(b.rawValue)' needs pool_size (the number of distinct problems to train on)"
        }
        if poolSize != nil, curriculum != .uniform {
            return "curriculum: '\(curriculum)' cannot steer a fixed pool (pool_size); use uniform"
        }
        return nil
    }
}

extension CellConfig {
    /// Training difficulties per family: [min_difficulty, max_difficulty], where a missing
    /// maximum is the highest level the base was pretrained on (`corpus`).
    public func trainRanges(corpus: CorpusConfig) -> [String: ClosedRange<Int>] {
        var range: [String: ClosedRange<Int>] = [:]
        for f in tasks.families {
            let hi = min(f.maxDifficulty, maxDifficulty ?? corpus.maxPretrainDifficulty(f))
            range[f.name] = min(minDifficulty, hi)...hi
        }
        return range
    }

    /// Why this cell's episodes (training turns, and evaluation turns) cannot fit the
    /// context on some family and difficulty it trains on, or nil: every turn must have room
    /// for the reference solution and EOS (`EpisodeLayout.fits`).
    public func episodeFitError(corpus: CorpusConfig) -> String? {
        let asked = [("turns", episodeSpec.turns), ("eval_turns", evaluationTurns)].filter { $0.1 > 1 }
        for (key, turns) in asked {
            for (family, range) in trainRanges(corpus: corpus).sorted(by: { $0.key < $1.key }) {
                guard let f = TaskFamilies.named(family) else { continue }
                for d in range {
                    let most = EpisodeLayout.maxTurns(f, difficulty: d, feedback: episodeSpec.feedback)
                    if turns > most {
                        return "\(key): \(turns) turns with \(episodeSpec.feedback) feedback do not fit the \(taskContext)-token context on "
                            + "\(family) difficulty \(d) (at most \(most) there); lower max_difficulty or the turns"
                    }
                }
            }
        }
        return nil
    }

    /// The pool this cell trains on from `base` (nil without `poolSize`); K is the base
    /// evaluation's sample count, so pool and held-out buckets share their boundaries.
    public func poolRequest(base: BaseRecord) -> PoolRequest? {
        guard let d = poolSize else { return nil }
        return PoolRequest(
            mixture: tasks, ranges: trainRanges(corpus: base.spec.corpus), bucket: trainBucket, size: d,
            samples: base.evaluation?.options.samples ?? EvalOptions().samples)
    }
}

extension CellConfig {
    /// The reward model this cell trains on, given its policy base and the base its reward
    /// model starts from (`rm_size`; the policy base itself for `base`); nil unless
    /// `reward = "rm"`. It learns on the cell's training distribution.
    public func rewardModelRequest(policyBase: BaseRecord, rmBase: BaseRecord) -> RewardModelRequest? {
        guard rewardSource == .learned, var spec = rewardModel else { return nil }
        spec.size = rmBase.spec.name  // `base` and the base's own name are one model
        return RewardModelRequest(
            policyBaseKey: policyBase.key, rmBaseKey: rmBase.key, rmBaseName: rmBase.spec.name, mixture: tasks,
            ranges: trainRanges(corpus: policyBase.spec.corpus), spec: spec)
    }
}
