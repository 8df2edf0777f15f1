import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import Rewards
import RLCommon
import Tasks

/// Why a cell could not run or stopped.
public enum CellError: Error, CustomStringConvertible {
    case invalidConfig(String)
    case model(ModelError)
    case missingBaseEvaluation
    case pool(PoolError)

    public var description: String {
        switch self {
        case .invalidConfig(let s): "invalid cell config: \(s)"
        case .model(let e): e.description
        case .missingBaseEvaluation: "the base record has no held-out evaluation (pass buckets unknown)"
        case .pool(let e): e.description
        }
    }
}

/// Runs one grid cell: RL post-training of a copy of the base under one method and one
/// allocation until the compute budget is spent, evaluating at log-spaced compute points.
public struct CellRunner {
    public var config: CellConfig
    public var base: Transformer
    public var baseRecord: BaseRecord
    public var log: ((String) -> Void)?
    /// The cell's training pool when its config asks for one (`poolSize`), built and cached
    /// by the caller; nil builds it here (uncached).
    public var pool: ProblemPool?
    /// The learned reward model, required when the config trains on one (`reward = "rm"`),
    /// built and cached by the caller (`RewardModelCache`).
    public var rewardModel: RewardModel?

    public init(
        config: CellConfig, base: Transformer, baseRecord: BaseRecord, pool: ProblemPool? = nil, rewardModel: RewardModel? = nil,
        log: ((String) -> Void)? = nil
    ) {
        self.config = config
        self.base = base
        self.baseRecord = baseRecord
        self.pool = pool
        self.rewardModel = rewardModel
        self.log = log
    }

    /// Compute points at which the policy is evaluated: step 0, then `evalPoints − 1`
    /// points log-spaced by factors of 2 up to the budget.
    public static func evalThresholds(budget: Double, points: Int) -> [Double] {
        [0] + (0..<(points - 1)).map { budget / pow(2, Double(points - 2 - $0)) }
    }

    public func run() throws(CellError) -> CellResult {
        if let why = config.validationError() { throw .invalidConfig(why) }
        guard let method = config.makeMethod() else { throw .invalidConfig("method \(config.method)") }
        if let why = method.validationError { throw .invalidConfig(why) }
        if let why = config.episodeFitError(corpus: baseRecord.spec.corpus) { throw .invalidConfig(why) }
        guard let baseEval = baseRecord.evaluation else { throw .missingBaseEvaluation }
        var pool = self.pool
        if let request = config.poolRequest(base: baseRecord) {
            if let p = pool, p.request != request { throw .invalidConfig("the pool given was built for another request") }
            if pool == nil {
                do { pool = try ProblemPool.build(request, base: base) } catch { throw .pool(error) }
            }
        } else if pool != nil {
            throw .invalidConfig("a pool was given but the config has no pool_size")
        }
        guard (config.rewardSource == .learned) == (rewardModel != nil) else {
            throw .invalidConfig(rewardModel == nil ? "reward = rm needs its reward model" : "a reward model was given but the reward is \(config.rewardSource)")
        }
        do {
            var state = try TrainingState(
                config: config, method: method, base: base, baseRecord: baseRecord, baseEval: baseEval, pool: pool,
                rewardModel: rewardModel)
            return try state.run(log: log)
        } catch let e as CellError {
            throw e
        } catch let e as ModelError {
            throw .model(e)
        } catch {
            throw .invalidConfig("\(error)")
        }
    }
}

/// Per-step training statistics. `dead…` counts groups with zero reward variance (GRPO's
/// dead zone); `noGradient…` counts groups that carried no gradient for the cell's method.
struct TrainStepStats {
    var groups = 0, deadGroups = 0, discarded = 0, noGradientGroups = 0
    var samplingFLOPs = 0.0, deadFLOPs = 0.0, noGradientSamplingFLOPs = 0.0
    var trainingFLOPs = 0.0, noGradientTrainingFLOPs = 0.0
    var rewardSum = 0.0, rollouts = 0
    /// Gold reward of the same rollouts, and those the training reward accepted but gold rejected.
    var goldSum = 0.0, hacked = 0
    /// Trained tokens (entropy and clip fraction are over these) and sampled ones (response
    /// length; dynamic sampling trains fewer than it samples).
    var entropySum = 0.0, tokens = 0, sampledTokens = 0, clipped = 0, truncated = 0
    /// Trained tokens that received a distillation loss, and their summed divergence.
    var distilled = 0, divergenceSum = 0.0
    var loss = 0.0, gradNorm = 0.0
}

/// The mutable state of one cell's run.
struct TrainingState {
    let config: CellConfig
    let method: RLMethod
    let policy: Transformer
    let base: Transformer
    let baseRecord: BaseRecord
    let baseEval: BaseEvaluation
    /// Scratch models for lagged weights (allocated only when a lag is read): the sampler
    /// under policy lag, the teacher and the reference.
    let behavior: Transformer?
    let teacherScratch: Transformer?
    let referenceScratch: Transformer?
    /// The EMA of the policy, when the teacher or the reference reads one.
    let ema: Transformer?
    let emaRate: Double?
    let optimizer: AdamW
    /// The training reward (its own generator for the coins of `pattern` and `noisy`).
    var reward: TrainingReward
    var history: [[Float]] = []  // parameter snapshots, newest last
    var ledger = ComputeLedger()
    var wallTime = WallTime()
    var rng: SeededRNG
    var curriculum: CurriculumState
    let evalSet: EvalSet
    let evalIndices: [Int]
    /// Every problem of the base's held-out set in the cell's families: `p_ref` (one
    /// teacher-forced forward each) is measured on all of them.
    let referenceIndices: [Int]
    /// The difficulties the cell trains on, per family (the `train_dist` eval group).
    let trainRange: [String: ClosedRange<Int>]
    let baseBuckets: [Int: PassBucket]
    /// The fixed training pool (nil: fresh problems from the train stream), visited in
    /// epochs: a seeded shuffle of its problems, drawn in order, reshuffled when exhausted.
    let pool: ProblemPool?
    var poolOrder: [Int] = []
    /// What the teacher taught since the last evaluation point (the point records it).
    var sinceEval: (tokens: Int, distilled: Int, divergenceSum: Double) = (0, 0, 0)
    /// A frozen-base teacher's hint uplift, measured at the first evaluation point.
    var frozenTeacherUplift: HintUplift?
    var poolCursor = 0
    /// Problems drawn from the pool so far (epochs = drawn / D).
    var poolDrawn = 0
    /// Forward FLOPs of the support measurement so far (evaluation).
    var supportFLOPs = 0.0
    let started = monotonicSeconds()
    /// Parameter snapshots kept: one more than the oldest lag any model reads (policy
    /// lag, teacher lag); with no lag nothing reads them and none is copied.
    let snapshotsKept: Int

    init(
        config: CellConfig, method: RLMethod, base: Transformer, baseRecord: BaseRecord, baseEval: BaseEvaluation,
        pool: ProblemPool? = nil, rewardModel: RewardModel? = nil
    ) throws {
        self.config = config
        reward = TrainingReward(
            source: config.rewardSource, model: rewardModel, rng: SeededRNG(seed: config.seed).derived("reward"))
        self.method = method
        self.base = base
        self.baseRecord = baseRecord
        self.baseEval = baseEval
        policy = try Transformer(config: base.config, seed: 0)
        try policy.copyParameters(from: base)
        func scratch(_ needed: Bool) throws -> Transformer? { needed ? try Transformer(config: base.config, seed: 0) : nil }
        behavior = try scratch(config.policyLag > 0)
        teacherScratch = try scratch((method.teacher?.weights.lag ?? 0) > 0)
        referenceScratch = try scratch((method.reference?.lag ?? 0) > 0)
        let rates = [method.teacher?.weights, method.reference].compactMap { s -> Double? in
            if case .ema(let r)? = s { r } else { nil }
        }
        emaRate = rates.first
        if rates.isEmpty {
            ema = nil
        } else {
            let e = try Transformer(config: base.config, seed: 0)
            try e.copyParameters(from: base)
            ema = e
        }
        optimizer = AdamW(for: policy, config: AdamWConfig(weightDecay: 0, gradClip: 1))
        rng = SeededRNG(seed: config.seed).derived("cell")
        let range = config.trainRanges(corpus: baseRecord.spec.corpus)
        self.pool = pool
        curriculum = CurriculumState(curriculum: config.curriculum, mixture: config.tasks, range: range)
        trainRange = range
        // The base's own held-out set, restricted to the cell's families (and, with
        // `eval_levels = train`, to their training levels) and to the first
        // `evalProblemsPerLevel` problems of each level; indices stay those of the base's
        // set, so the base's pass buckets apply.
        let set = baseEval.set.build(baseRecord.spec.corpus.mixture.families)
        let fams = Set(config.tasks.components.map(\.family))
        let trainOnly = config.evaluationLevels == .train
        var perLevel: [String: Int] = [:]
        var indices: [Int] = [], all: [Int] = []
        for (i, p) in set.problems.enumerated() where fams.contains(p.family) {
            if trainOnly, range[p.family]?.contains(p.difficulty) != true { continue }
            all.append(i)
            let k = "\(p.family)/\(p.difficulty)"
            perLevel[k, default: 0] += 1
            if perLevel[k, default: 0] <= config.evalProblemsPerLevel { indices.append(i) }
        }
        evalSet = set
        evalIndices = indices
        referenceIndices = all
        baseBuckets = Metrics.buckets(from: baseEval.outcomes)
        snapshotsKept = max(config.policyLag, method.oldestLag) + 1
        if snapshotsKept > 1 { history = [Array(policy.parameters)] }
    }

    // MARK: the loop

    mutating func run(log: ((String) -> Void)?) throws -> CellResult {
        let thresholds = CellRunner.evalThresholds(budget: config.budgetFLOPs, points: config.evalPoints)
        var nextEval = 0
        var curve: [EvalPoint] = []
        var stepStats: [TrainStepStats] = []
        var step = 0
        let schedule = LRSchedule(kind: .constant, peak: config.learningRate, warmupSteps: config.warmupSteps)
        var failure: String?
        // The base's side of the support measurement (step 0): the base itself samples.
        let t0 = monotonicSeconds()
        let supportBase = try supportCounts(base, who: "base")
        wallTime.evaluation += monotonicSeconds() - t0
        while true {
            while nextEval < thresholds.count && ledger.total >= thresholds[nextEval] {
                let t0 = monotonicSeconds()
                curve.append(try evaluate(step: step))
                wallTime.evaluation += monotonicSeconds() - t0
                nextEval += 1
            }
            if ledger.total >= config.budgetFLOPs || nextEval >= thresholds.count { break }
            let stats: TrainStepStats
            do {
                stats = try trainStep(step: step, lr: schedule.rate(at: step))
            } catch let e as TrainingDiverged {
                failure = e.reason
                break
            }
            stepStats.append(stats)
            sinceEval.tokens += stats.tokens
            sinceEval.distilled += stats.distilled
            sinceEval.divergenceSum += stats.divergenceSum
            step += 1
            log?(String(format: "step %d  reward %.3f  dead %.2f  %.3g/%.3g FLOPs", step,
                        stats.rewardSum / Double(max(1, stats.rollouts)), Double(stats.deadGroups) / Double(max(1, stats.groups)),
                        ledger.total, config.budgetFLOPs))
        }
        let windows = Self.windows(stepStats, distills: method.reads.contains(.teacher))
        // A diverged policy's support is not measured (its weights may not be finite).
        let t1 = monotonicSeconds()
        let support = failure == nil ? try supportMeasurement(step: step, base: supportBase) : nil
        wallTime.evaluation += monotonicSeconds() - t1
        let total = monotonicSeconds() - started
        wallTime.other = max(0, total - wallTime.sampling - wallTime.training - wallTime.evaluation)
        return CellResult(
            config: config, baseKey: baseRecord.key, baseName: baseRecord.spec.name,
            baseParameters: baseRecord.nonEmbeddingParameters, status: failure == nil ? "done" : "failed", failure: failure,
            steps: step, curve: curve, windows: windows, compute: ledger, wallSeconds: total, wallTime: wallTime,
            blasCore: BLASCore.current, simd: policy.simd.rawValue,
            pool: pool.map { p in
                PoolUse(
                    key: p.request.key, size: p.problems.count, bucket: p.request.bucket, drawn: poolDrawn,
                    epochs: Double(poolDrawn) / Double(max(1, p.problems.count)), candidates: p.candidates, buildFLOPs: p.forwardFLOPs)
            },
            rewardModel: reward.model?.record, support: support)
    }

    /// A run that produced a non-finite or runaway loss or gradient.
    struct TrainingDiverged: Error { var reason: String }

    /// Steps per window at least, and windows per cell at most: a cell of more than
    /// 5 × 256 steps gets windows of ⌈steps / 256⌉ steps, so that its document stays small
    /// (a main-job cell's 13,000 windows of 5 steps were 5–8.5 MB).
    static let windowSteps = 5, maxWindows = 256

    /// The steps' diagnostics in consecutive windows of `max(windowSteps, ⌈steps /
    /// maxWindows⌉)` steps (the last may be shorter); every window field summarises its own
    /// steps, as `summarize` says.
    static func windows(_ steps: [TrainStepStats], distills: Bool) -> [StepWindow] {
        let size = max(windowSteps, (steps.count + maxWindows - 1) / maxWindows)
        return stride(from: 0, to: steps.count, by: size).map { first in
            let last = min(steps.count, first + size) - 1
            return summarize(Array(steps[first...last]), first: first, last: last, distills: distills)
        }
    }

    /// `distills`: the method reads a teacher (the window then records what it distilled).
    static func summarize(_ w: [TrainStepStats], first: Int, last: Int, distills: Bool = false) -> StepWindow {
        let distilled = w.reduce(0) { $0 + $1.distilled }
        let groups = w.reduce(0) { $0 + $1.groups }, dead = w.reduce(0) { $0 + $1.deadGroups }
        let sf = w.reduce(0.0) { $0 + $1.samplingFLOPs }, df = w.reduce(0.0) { $0 + $1.deadFLOPs }
        let tf = w.reduce(0.0) { $0 + $1.trainingFLOPs }
        let rollouts = w.reduce(0) { $0 + $1.rollouts }, tokens = w.reduce(0) { $0 + $1.tokens }
        let sampledTokens = w.reduce(0) { $0 + $1.sampledTokens }
        return StepWindow(
            firstStep: first, lastStep: last,
            meanReward: w.reduce(0.0) { $0 + $1.rewardSum } / Double(max(1, rollouts)),
            deadZoneFraction: Double(dead) / Double(max(1, groups)), deadZoneFLOPsShare: sf > 0 ? df / sf : 0,
            noGradientFraction: Double(w.reduce(0) { $0 + $1.noGradientGroups }) / Double(max(1, groups)),
            noGradientSamplingShare: sf > 0 ? w.reduce(0.0) { $0 + $1.noGradientSamplingFLOPs } / sf : 0,
            noGradientTrainingShare: tf > 0 ? w.reduce(0.0) { $0 + $1.noGradientTrainingFLOPs } / tf : 0,
            distilledFraction: distills ? Double(distilled) / Double(max(1, tokens)) : nil,
            teacherDivergence: distills && distilled > 0 ? w.reduce(0.0) { $0 + $1.divergenceSum } / Double(distilled) : nil,
            goldReward: w.reduce(0.0) { $0 + $1.goldSum } / Double(max(1, rollouts)),
            hackRate: Double(w.reduce(0) { $0 + $1.hacked }) / Double(max(1, rollouts)),
            discardedGroups: w.reduce(0) { $0 + $1.discarded },
            entropy: w.reduce(0.0) { $0 + $1.entropySum } / Double(max(1, tokens)),
            clipFraction: Double(w.reduce(0) { $0 + $1.clipped }) / Double(max(1, tokens)),
            responseLength: Double(sampledTokens) / Double(max(1, rollouts)),
            loss: w.reduce(0.0) { $0 + $1.loss } / Double(w.count),
            gradNorm: w.reduce(0.0) { $0 + $1.gradNorm } / Double(w.count))
    }
}
