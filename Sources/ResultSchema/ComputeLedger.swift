/// Every FLOP a cell spends, by kind, from the harness's one formula (`FLOPs`). The
/// budget is charged with `total`: sampling (including discarded rollouts), training
/// forward + backward, teacher, reference and reward-model forwards. Evaluation is measurement, not
/// training, and is recorded apart (`evaluation`), never charged.
public struct ComputeLedger: Codable, Hashable, Sendable {
    public var sampling: Double = 0
    public var training: Double = 0
    public var teacher: Double = 0
    public var reference: Double = 0
    /// A learned reward model scoring rollouts (its training is recorded on the cell's
    /// `rewardModel`, like pretraining, not here).
    public var rewardModel: Double = 0
    public var evaluation: Double = 0
    /// Rollouts sampled (the IsoCompute unit: C = Bp · n · M counts these).
    public var rollouts: Int = 0
    public var generatedTokens: Int = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case sampling, training, teacher, reference, rewardModel, evaluation, rollouts, generatedTokens
    }

    /// Reads documents written before reward models were charged (no `rewardModel`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sampling = try c.decode(Double.self, forKey: .sampling)
        training = try c.decode(Double.self, forKey: .training)
        teacher = try c.decode(Double.self, forKey: .teacher)
        reference = try c.decode(Double.self, forKey: .reference)
        rewardModel = try c.decodeIfPresent(Double.self, forKey: .rewardModel) ?? 0
        evaluation = try c.decode(Double.self, forKey: .evaluation)
        rollouts = try c.decode(Int.self, forKey: .rollouts)
        generatedTokens = try c.decode(Int.self, forKey: .generatedTokens)
    }

    /// FLOPs charged to the budget.
    public var total: Double { sampling + training + teacher + reference + rewardModel }
}
