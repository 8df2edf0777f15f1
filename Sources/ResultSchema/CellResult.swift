import Foundation
import RLCommon

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
    /// Self-distillation cells only: the teacher's diagnostics at this point.
    public var teacher: TeacherDiagnostics? = nil
    /// Proxy and gold reward, hack rate and d = √KL(π ‖ base) on the policy's eval samples
    /// (absent in older documents).
    public var reward: RewardDiagnostics? = nil
    /// Multi-turn episodes on the training distribution (`eval_turns` > 1).
    public var multiTurn: MultiTurnMetrics? = nil
    /// Correct samples out of `evalSamples` for each held-out problem of the training
    /// distribution (`train_dist`), in problem order: the per-problem pass rates behind the
    /// dead zone's theory, pⁿ + (1 − p)ⁿ (absent in older documents).
    public var trainSuccesses: [Int]? = nil

    public init(
        step: Int, compute: ComputeLedger, wallSeconds: Double, groups: [GroupMetrics], supportExpansion: Int,
        baseUnsolved: Int, klToBase: Double, entropy: Double, teacher: TeacherDiagnostics? = nil, reward: RewardDiagnostics? = nil,
        multiTurn: MultiTurnMetrics? = nil
    ) {
        self.step = step; self.compute = compute; self.wallSeconds = wallSeconds; self.groups = groups
        self.supportExpansion = supportExpansion; self.baseUnsolved = baseUnsolved; self.klToBase = klToBase
        self.entropy = entropy; self.teacher = teacher; self.reward = reward; self.multiTurn = multiTurn
    }
}

/// Diagnostics over a window of training steps.
public struct StepWindow: Codable, Sendable {
    public var firstStep: Int
    public var lastStep: Int
    /// Mean training reward of the window's rollouts (the proxy, for a proxy-reward cell).
    public var meanReward: Double
    /// Mean gold reward of the same rollouts, and the share the training reward accepted
    /// while gold rejected them (absent in older documents).
    public var goldReward: Double? = nil
    public var hackRate: Double? = nil
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
    /// Self-distillation cells: fraction of trained tokens that received a distillation
    /// loss, and their mean divergence to the teacher (absent for other methods).
    public var distilledFraction: Double? = nil
    public var teacherDivergence: Double? = nil
    /// Groups sampled but discarded (dynamic sampling).
    public var discardedGroups: Int
    public var entropy: Double
    public var clipFraction: Double
    public var responseLength: Double
    public var loss: Double
    public var gradNorm: Double

    public init(
        firstStep: Int, lastStep: Int, meanReward: Double, deadZoneFraction: Double, deadZoneFLOPsShare: Double,
        noGradientFraction: Double? = nil, noGradientSamplingShare: Double? = nil, noGradientTrainingShare: Double? = nil,
        distilledFraction: Double? = nil, teacherDivergence: Double? = nil, goldReward: Double? = nil, hackRate: Double? = nil,
        discardedGroups: Int, entropy: Double, clipFraction: Double, responseLength: Double, loss: Double, gradNorm: Double
    ) {
        self.firstStep = firstStep; self.lastStep = lastStep; self.meanReward = meanReward
        self.deadZoneFraction = deadZoneFraction; self.deadZoneFLOPsShare = deadZoneFLOPsShare
        self.noGradientFraction = noGradientFraction; self.noGradientSamplingShare = noGradientSamplingShare
        self.noGradientTrainingShare = noGradientTrainingShare; self.discardedGroups = discardedGroups
        self.distilledFraction = distilledFraction; self.teacherDivergence = teacherDivergence
        self.goldReward = goldReward; self.hackRate = hackRate
        self.entropy = entropy; self.clipFraction = clipFraction; self.responseLength = responseLength
        self.loss = loss; self.gradNorm = gradNorm
    }
}

/// A finished (or failed) cell: its learning curve, diagnostics and compute.
public struct CellResult: Codable, Sendable {
    /// 2: the self-distillation knobs (teacher, divergence, distill, distill_on replaced
    /// teacher_lag and distill_reward_weight), teacher diagnostics per evaluation point.
    public static let schemaVersion = 2
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
    /// The SIMD level of the engine's kernels (`SIMDLevel`; absent before numerics 4).
    public var simd: String? = nil
    /// The fixed training pool, when the cell trained on one (`pool_size`).
    public var pool: PoolUse? = nil
    /// The learned reward model, when the cell trained on one (`reward = "rm"`).
    public var rewardModel: RewardModelUse? = nil
    /// The support-expansion measurement, when the cell asked for one (`support_samples`).
    public var support: SupportMeasurement? = nil

    /// A cell document of the current schema and numerics version.
    public init(
        config: CellConfig, baseKey: String, baseName: String, baseParameters: Int, status: String,
        failure: String? = nil, steps: Int, curve: [EvalPoint], windows: [StepWindow], compute: ComputeLedger,
        wallSeconds: Double, wallTime: WallTime? = nil, blasCore: String? = nil, simd: String? = nil, pool: PoolUse? = nil,
        rewardModel: RewardModelUse? = nil, support: SupportMeasurement? = nil
    ) {
        self.support = support
        self.config = config; self.baseKey = baseKey; self.baseName = baseName; self.baseParameters = baseParameters
        self.status = status; self.failure = failure; self.steps = steps; self.curve = curve; self.windows = windows
        self.compute = compute; self.wallSeconds = wallSeconds; self.wallTime = wallTime; self.blasCore = blasCore
        self.simd = simd
        self.pool = pool; self.rewardModel = rewardModel
    }
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

    public init(key: String, size: Int, bucket: PassBucket?, drawn: Int, epochs: Double, candidates: Int, buildFLOPs: Double) {
        self.key = key; self.size = size; self.bucket = bucket; self.drawn = drawn; self.epochs = epochs
        self.candidates = candidates; self.buildFLOPs = buildFLOPs
    }
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

    /// The encoder cell documents are written with (pretty-printed, keys sorted), by the
    /// result store and by `rlscale train --out`.
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
