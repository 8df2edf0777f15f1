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
///
/// Its JSON encoding is part of each cell's identity (the grid hashes it): adding,
/// renaming, reordering or changing the optionality of a stored property changes every id.
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

    /// The value of a method-specific knob.
    public func value(of knob: MethodKnob) -> Double {
        switch knob {
        case .kl: klCoef
        case .entropy: entropyCoef
        case .teacherLag: Double(teacherLag)
        case .distillRewardWeight: distillRewardWeight
        }
    }
}

extension CellDefaults {
    /// A config holding every default (its budget is a placeholder).
    public static let cell = CellConfig(method: method, budgetFLOPs: 1)
}
