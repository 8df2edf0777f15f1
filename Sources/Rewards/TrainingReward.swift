import PolicyModel
import RLCommon
import ResultSchema
import Tasks

/// A cell's reward, ready to score samples: a rule (`RuleReward`) or a learned reward
/// model. The coins of `pattern` and `noisy` come from its own generator, so scoring
/// never disturbs the cell's sampling stream.
public struct TrainingReward {
    public let source: RewardSource
    public let model: RewardModel?
    var rng: SeededRNG

    /// `model` is required exactly when `source` is `.learned`.
    public init(source: RewardSource, model: RewardModel?, rng: SeededRNG) {
        precondition((source == .learned) == (model != nil), "a learned reward needs its model, and only it")
        self.source = source
        self.model = model
        self.rng = rng
    }

    /// One score per (problem, completion) and the reward-model FLOPs it took (0 for rules).
    public mutating func score(_ items: [(Problem, [Int32])]) throws(ModelError) -> (rewards: [Double], flops: Double) {
        if let model {
            let (s, f) = try model.score(items)
            return (s, f)
        }
        var out: [Double] = []
        out.reserveCapacity(items.count)
        for (p, c) in items { out.append(RuleReward.score(source, p, completion: c, rng: &rng)) }
        return (out, 0)
    }
}
