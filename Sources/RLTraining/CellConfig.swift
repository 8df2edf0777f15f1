import BasePolicies
import Evaluation
import Foundation
import Tasks

/// The default of every cell knob. `CellConfig.init`, grid files (`[cell]` and `[axes]`)
/// and `rlscale train` all read them here; the README lists them.
public enum CellDefaults {
    public static let method = "grpo"
    public static let rolloutsPerProblem = 8
    public static let problemsPerBatch = 8
    /// The main job's rate on base s (3e-4 and above collapse there; see grids/quick.toml).
    public static let learningRate: Float = 2e-4
    public static let warmupSteps = 0
    public static let minDifficulty = 1
    public static let policyLag = 0
    public static let klCoef = 0.0
    public static let entropyCoef = 0.0
    public static let teacherLag = 0
    public static let distillRewardWeight = 0.0
    public static let seed: UInt64 = 0
    public static let evalPoints = 8
    public static let evalSamples = 8
    public static let evalProblemsPerLevel = 4
}

/// A method-specific knob of a cell: each method declares the ones it reads
/// (`Methods.knobs(of:)`); setting another away from its default is an error.
public enum MethodKnob: String, CaseIterable, Sendable {
    case kl
    case entropy
    case teacherLag = "teacher_lag"
    case distillRewardWeight = "distill_reward_weight"
}

/// Everything that determines one grid cell's RL run (besides the base policy).
public struct CellConfig: Codable, Hashable, Sendable {
    public var method: String
    /// Rollouts per problem (n).
    public var rolloutsPerProblem: Int
    /// Problems per batch (Bp).
    public var problemsPerBatch: Int
    /// Compute budget C in FLOPs (sampling + training + teacher + reference).
    public var budgetFLOPs: Double
    public var learningRate: Float
    public var warmupSteps: Int
    /// Training task mixture.
    public var tasks: TaskMixture
    /// Training difficulties per family; nil = the base's pretraining range.
    public var maxDifficulty: Int?
    public var minDifficulty: Int
    public var curriculum: Curriculum
    /// Train on a fixed pool of D = `poolSize` distinct problems of the train stream (nil:
    /// a fresh problem for every draw). With `trainBucket`, only problems whose base pass
    /// rate (K base samples) falls in that bucket enter the pool, and the `train_dist`
    /// evaluation group holds the held-out problems of the same bucket.
    public var trainBucket: PassBucket?
    public var poolSize: Int?
    /// Rollouts come from weights this many updates old (0 = on-policy).
    public var policyLag: Int
    public var klCoef: Double
    public var entropyCoef: Double
    /// Self-distillation (opsd): teacher lag and the weight of verifier advantages.
    public var teacherLag: Int
    public var distillRewardWeight: Double
    public var seed: UInt64
    /// Evaluations at log-spaced compute points, step 0 included.
    public var evalPoints: Int
    public var evalSamples: Int
    public var evalProblemsPerLevel: Int

    public init(
        method: String, rolloutsPerProblem: Int = CellDefaults.rolloutsPerProblem,
        problemsPerBatch: Int = CellDefaults.problemsPerBatch, budgetFLOPs: Double,
        learningRate: Float = CellDefaults.learningRate, warmupSteps: Int = CellDefaults.warmupSteps,
        tasks: TaskMixture = .uniform, maxDifficulty: Int? = nil, minDifficulty: Int = CellDefaults.minDifficulty,
        curriculum: Curriculum = .uniform, trainBucket: PassBucket? = nil, poolSize: Int? = nil,
        policyLag: Int = CellDefaults.policyLag, klCoef: Double = CellDefaults.klCoef,
        entropyCoef: Double = CellDefaults.entropyCoef, teacherLag: Int = CellDefaults.teacherLag,
        distillRewardWeight: Double = CellDefaults.distillRewardWeight, seed: UInt64 = CellDefaults.seed,
        evalPoints: Int = CellDefaults.evalPoints, evalSamples: Int = CellDefaults.evalSamples,
        evalProblemsPerLevel: Int = CellDefaults.evalProblemsPerLevel
    ) {
        self.method = method
        self.rolloutsPerProblem = rolloutsPerProblem
        self.problemsPerBatch = problemsPerBatch
        self.budgetFLOPs = budgetFLOPs
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.tasks = tasks
        self.maxDifficulty = maxDifficulty
        self.minDifficulty = minDifficulty
        self.curriculum = curriculum
        self.trainBucket = trainBucket
        self.poolSize = poolSize
        self.policyLag = policyLag
        self.klCoef = klCoef
        self.entropyCoef = entropyCoef
        self.teacherLag = teacherLag
        self.distillRewardWeight = distillRewardWeight
        self.seed = seed
        self.evalPoints = evalPoints
        self.evalSamples = evalSamples
        self.evalProblemsPerLevel = evalProblemsPerLevel
    }

    /// The method object this config names, with its knobs applied.
    public func makeMethod() -> RLMethod? { Methods.make(method, self) }

    /// The value of a method-specific knob.
    public func value(of knob: MethodKnob) -> Double {
        switch knob {
        case .kl: klCoef
        case .entropy: entropyCoef
        case .teacherLag: Double(teacherLag)
        case .distillRewardWeight: distillRewardWeight
        }
    }

    /// Method-specific knobs set away from their defaults that this config's method does
    /// not read (they would change the cell's identity and nothing else).
    public func unusedKnobs() -> [MethodKnob] {
        let used = Methods.knobs(of: method)
        return MethodKnob.allCases.filter { !used.contains($0) && value(of: $0) != CellDefaults.cell.value(of: $0) }
    }

    /// "kl = 0.1 is not used by dapo (it is read by grpo)".
    public func unusedKnobMessage(_ knob: MethodKnob) -> String {
        let users = Methods.names.filter { Methods.knobs(of: $0).contains(knob) }
        let v = value(of: knob)
        let shown = v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : "\(v)"
        return "\(knob.rawValue) = \(shown) is not used by \(method)"
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
        if teacherLag < 0 { return "teacher_lag: must be >= 0 (got \(teacherLag))" }
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

extension CellDefaults {
    /// A config holding every default (its budget is a placeholder).
    static let cell = CellConfig(method: method, budgetFLOPs: 1)
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

    /// The pool this cell trains on from `base` (nil without `poolSize`); K is the base
    /// evaluation's sample count, so pool and held-out buckets share their boundaries.
    public func poolRequest(base: BaseRecord) -> PoolRequest? {
        guard let d = poolSize else { return nil }
        return PoolRequest(
            mixture: tasks, ranges: trainRanges(corpus: base.spec.corpus), bucket: trainBucket, size: d,
            samples: base.evaluation?.options.samples ?? EvalOptions().samples)
    }
}
