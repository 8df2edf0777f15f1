/// Every FLOP a cell spends, by kind, from the harness's one formula (`FLOPs`). The
/// budget is charged with `total`: sampling (including discarded rollouts), training
/// forward + backward, teacher and reference forwards. Evaluation is measurement, not
/// training, and is recorded apart (`evaluation`), never charged.
public struct ComputeLedger: Codable, Hashable, Sendable {
    public var sampling: Double = 0
    public var training: Double = 0
    public var teacher: Double = 0
    public var reference: Double = 0
    public var evaluation: Double = 0
    /// Rollouts sampled (the IsoCompute unit: C = Bp · n · M counts these).
    public var rollouts: Int = 0
    public var generatedTokens: Int = 0

    public init() {}

    /// FLOPs charged to the budget.
    public var total: Double { sampling + training + teacher + reference }
}
