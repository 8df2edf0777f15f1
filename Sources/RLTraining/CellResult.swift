import RLCommon
import Evaluation

/// One evaluation of a cell's policy.
public struct EvalPoint: Codable, Sendable {
    public var step: Int
    /// Compute charged so far, and what was sampled.
    public var compute: ComputeLedger
    public var wallSeconds: Double
    /// Metrics per family × difficulty, family × base pass bucket, family overall.
    public var groups: [GroupMetrics]
    /// Held-out problems the base never solved in K samples that the policy solves at
    /// least once in its eval samples.
    public var supportExpansion: Int
    /// Eval problems the base never solved (the denominator of support expansion).
    public var baseUnsolved: Int
    /// Mean per-token KL(π ‖ base) over the policy's own eval samples (exact, full vocabulary).
    public var klToBase: Double
    /// Mean per-token entropy of the policy on its eval samples.
    public var entropy: Double
}

/// Diagnostics over a window of training steps.
public struct StepWindow: Codable, Sendable {
    public var firstStep: Int
    public var lastStep: Int
    public var meanReward: Double
    /// Fraction of sampled groups with zero reward variance (GRPO's dead zone).
    public var deadZoneFraction: Double
    /// Share of the window's sampling FLOPs spent on those groups.
    public var deadZoneFLOPsShare: Double
    /// Fraction of sampled groups that carried no gradient for the cell's method (all
    /// advantages 0 and every term advantage-driven): GRPO's dead zone for reward methods,
    /// never for a dense term (KL, entropy, distillation). Absent in older documents.
    public var noGradientFraction: Double? = nil
    /// Shares of the window's sampling and training FLOPs spent on those groups (dynamic
    /// sampling discards them, so it spends no training on them).
    public var noGradientSamplingShare: Double? = nil
    public var noGradientTrainingShare: Double? = nil
    /// Groups sampled but discarded (dynamic sampling).
    public var discardedGroups: Int
    public var entropy: Double
    public var clipFraction: Double
    public var responseLength: Double
    public var loss: Double
    public var gradNorm: Double
}

/// A finished (or failed) cell: its learning curve, diagnostics and compute.
public struct CellResult: Codable, Sendable {
    public static let schemaVersion = 1
    public var schema: Int = CellResult.schemaVersion
    /// The numerics version that computed it (`Numerics.version`; absent in older documents).
    public var numerics: Int? = Numerics.version
    public var config: CellConfig
    public var baseKey: String
    /// The base's ladder name and its non-embedding parameter count (the law's N).
    public var baseName: String
    public var baseParameters: Int
    /// "done" or "failed".
    public var status: String
    public var failure: String?
    public var steps: Int
    public var curve: [EvalPoint]
    public var windows: [StepWindow]
    public var compute: ComputeLedger
    public var wallSeconds: Double
    /// Where the wall time went (not charged, like all wall-clock fields).
    public var wallTime: WallTime? = nil
    /// The OpenBLAS core the cell ran on (`BLASCore.current`): results are bitwise
    /// reproducible for one core.
    public var blasCore: String? = nil
    /// The fixed training pool, when the cell trained on one (`pool_size`).
    public var pool: PoolUse? = nil
}

/// How a cell used its fixed training pool. Building the pool (base sampling) is base
/// profiling: its FLOPs are recorded here and never charged to the cell's budget.
public struct PoolUse: Codable, Sendable, Equatable {
    /// The pool's cache key (`PoolRequest.key`).
    public var key: String
    /// D, distinct problems.
    public var size: Int
    /// The base pass bucket of its problems (nil: any).
    public var bucket: PassBucket?
    /// Problems drawn over the run, and epochs = drawn / D.
    public var drawn: Int
    public var epochs: Double
    /// Candidates examined and the base-sampling FLOPs it took to build (not charged).
    public var candidates: Int
    public var buildFLOPs: Double
}

/// A cell's wall time by phase, in seconds; `other` is the rest (problem generation,
/// verification, advantages, bookkeeping).
public struct WallTime: Codable, Sendable, Equatable {
    public var sampling = 0.0
    public var training = 0.0
    public var evaluation = 0.0
    public var other = 0.0
    public init() {}
}

extension CellResult {
    /// The document of a cell that could not run to completion (for example its worker
    /// crashed on every attempt): no curve, the reason in `failure`.
    public static func failed(config: CellConfig, baseKey: String, baseName: String, baseParameters: Int, reason: String) -> CellResult {
        CellResult(
            config: config, baseKey: baseKey, baseName: baseName, baseParameters: baseParameters, status: "failed",
            failure: reason, steps: 0, curve: [], windows: [], compute: ComputeLedger(), wallSeconds: 0)
    }
}
