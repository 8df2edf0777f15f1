import Foundation
import Tasks

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
        method: String, rolloutsPerProblem: Int = 8, problemsPerBatch: Int = 8, budgetFLOPs: Double,
        learningRate: Float = 1e-3, warmupSteps: Int = 0, tasks: TaskMixture = .uniform, maxDifficulty: Int? = nil,
        minDifficulty: Int = 1, curriculum: Curriculum = .uniform, policyLag: Int = 0, klCoef: Double = 0,
        entropyCoef: Double = 0, teacherLag: Int = 0, distillRewardWeight: Double = 0, seed: UInt64 = 0,
        evalPoints: Int = 8, evalSamples: Int = 8, evalProblemsPerLevel: Int = 4
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
    public func makeMethod() -> (any RLMethod)? {
        Methods.make(
            method, klCoef: klCoef, entropyCoef: entropyCoef, distillRewardWeight: distillRewardWeight, teacherLag: teacherLag)
    }

    /// Why this config cannot run, or nil.
    public func validationError() -> String? {
        if makeMethod() == nil { return "method: unknown '\(method)' (known: \(Methods.names.joined(separator: ", ")))" }
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
        return nil
    }
}
