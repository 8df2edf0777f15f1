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
    /// Self-distillation: the teacher's weights (the frozen base: a fixed teacher cannot
    /// chase the student into a degenerate fixed point), the divergence, the weight α of
    /// the distillation term (λ for sdpg: 0.1 measured better than 1 beside GRPO's term;
    /// for the pure distillers Adam makes α nearly irrelevant) and the tokens it applies to.
    public static let teacher = PolicySource.frozenBase
    public static let divergence = DistillLoss.full(.reverseKL)
    public static let distill = 0.1
    public static let distillOn = DistillMask.all
    /// The training reward: the exact verifier. A learned reward model is initialised from
    /// the cell's own base, trained on 256 labelled base samples without label noise, alone.
    public static let reward = RewardSource.gold
    public static let rmSize = "base"
    public static let rmLabels = 256
    public static let rmLabelNoise = 0.0
    public static let rmEnsemble = RewardEnsemble.single
    /// Single-turn rollouts; with turns > 1, the verifier's reason as feedback and the
    /// episode's outcome as the only reward.
    public static let turns = 1
    public static let feedback = Feedback.reason
    public static let turnCredit = TurnCredit.final
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
    case teacher
    case divergence
    case distill
    case distillOn = "distill_on"
    case reward
    case rmSize = "rm_size"
    case rmLabels = "rm_labels"
    case rmLabelNoise = "rm_label_noise"
    case rmEnsemble = "rm_ensemble"
    case turns
    case feedback
    case turnCredit = "turn_credit"

    /// The knobs a built-in method reads: the one table the method declarations
    /// (`RLMethod.knobs`), grid validation and the law fitter's labels all use. Every method
    /// reads its reward; the `rm_*` knobs are read by the cells whose reward is `rm`
    /// (`CellConfig.knobsRead`).
    public static func read(by method: String) -> Set<MethodKnob> {
        switch method {
        case "grpo": [.kl, .entropy, .reward, .turns, .feedback, .turnCredit]
        case "dapo": [.reward, .turns, .feedback, .turnCredit]
        case "dr_grpo", "rloo", "expert_iteration": [.reward, .turns, .feedback]
        case "opsd", "sdpo", "sdpg": [.teacher, .divergence, .distill, .distillOn, .reward]
        default: [.reward]
        }
    }

    /// The knobs of a learned reward model.
    public static let rewardModelKnobs: Set<MethodKnob> = [.rmSize, .rmLabels, .rmLabelNoise, .rmEnsemble]
    /// The knobs of multi-turn episodes, read by the methods that read them only when
    /// episodes have more than one turn (`CellConfig.knobsRead`: `turn_credit` with
    /// `turns` > 1; `feedback` with `turns` > 1 or `eval_turns` > 1, since the multi-turn
    /// evaluation gives the same feedback).
    public static let episodeKnobs: Set<MethodKnob> = [.feedback, .turnCredit]
    /// Knobs whose reading depends on another knob's value (`reward`, `turns`): grids set
    /// them after the others.
    public static let conditionalKnobs = rewardModelKnobs.union(episodeKnobs)
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
    /// Self-distillation (opsd, sdpo, sdpg): whose weights teach, by which divergence, with
    /// what weight (α, or λ for sdpg), on which tokens.
    public var teacher: PolicySource
    public var divergence: DistillLoss
    public var distill: Double
    public var distillOn: DistillMask
    /// The training reward; nil is the exact verifier (`gold`), and is left out of the
    /// document, so that cells of grids written before reward sources keep their ids.
    public var reward: RewardSource?
    /// The learned reward model, present exactly when `reward` is `rm`.
    public var rewardModel: RewardModelSpec?
    /// Multi-turn training episodes; nil is single-turn (left out of the document, like
    /// every field below, so that earlier cells keep their ids).
    public var episode: EpisodeSpec?
    /// Turns of the multi-turn evaluation at each evaluation point (success within t turns
    /// for t = 1 … evalTurns on the training distribution's held-out problems); nil: the
    /// training episode's turns, and no multi-turn evaluation for a single-turn cell.
    public var evalTurns: Int?
    /// Samples K per problem of the support-expansion measurement at step 0 and at the last
    /// evaluation point (held-out `unsolved` and `hard` problems); nil: not measured.
    public var supportSamples: Int?
    /// Reward diagnostics (sequence KL to the base, proxy beside gold, hack rate) at every
    /// evaluation point of a gold-reward cell too (`eval_kl = true`); a cell that trains on
    /// a proxy or learned reward always measures them. nil: not asked.
    public var evalKL: Bool?
    /// Which held-out levels each evaluation point samples: nil (`all`) every level of the
    /// cell's families, the extrapolation levels above and below training included;
    /// `train` only the training levels (`train_dist`), for cells whose question is the
    /// training distribution's score and whose evaluation would otherwise dominate.
    public var evalLevels: EvalLevels?
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
        entropyCoef: Double = CellDefaults.entropyCoef, teacher: PolicySource = CellDefaults.teacher,
        divergence: DistillLoss = CellDefaults.divergence, distill: Double = CellDefaults.distill,
        distillOn: DistillMask = CellDefaults.distillOn, seed: UInt64 = CellDefaults.seed,
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
        self.teacher = teacher
        self.divergence = divergence
        self.distill = distill
        self.distillOn = distillOn
        self.seed = seed
        self.evalPoints = evalPoints
        self.evalSamples = evalSamples
        self.evalProblemsPerLevel = evalProblemsPerLevel
    }

    /// A method-specific knob's value as a grid file spells it ("0.1", "ema:0.05").
    public func value(of knob: MethodKnob) -> String {
        switch knob {
        case .kl: knobNumber(klCoef)
        case .entropy: knobNumber(entropyCoef)
        case .teacher: teacher.description
        case .divergence: divergence.description
        case .distill: knobNumber(distill)
        case .distillOn: distillOn.description
        case .reward: rewardSource.description
        case .rmSize: (rewardModel ?? RewardModelSpec()).size
        case .rmLabels: String((rewardModel ?? RewardModelSpec()).labels)
        case .rmLabelNoise: knobNumber((rewardModel ?? RewardModelSpec()).labelNoise)
        case .rmEnsemble: (rewardModel ?? RewardModelSpec()).ensemble.description
        case .turns: String(episodeSpec.turns)
        case .feedback: episodeSpec.feedback.description
        case .turnCredit: episodeSpec.credit.description
        }
    }

    /// The training reward (`reward`, gold when unset).
    public var rewardSource: RewardSource {
        get { reward ?? .gold }
        set {
            reward = newValue.isGold ? nil : newValue
            if newValue == .learned, rewardModel == nil { rewardModel = RewardModelSpec() }
            if newValue != .learned, rewardModel == RewardModelSpec() { rewardModel = nil }
        }
    }

    /// The training episodes (single-turn when unset).
    public var episodeSpec: EpisodeSpec {
        get { episode ?? EpisodeSpec() }
        set { episode = newValue == EpisodeSpec() ? nil : newValue }
    }

    /// Whether evaluation points measure the reward diagnostics: always on a proxy or
    /// learned reward, on the gold reward only when asked (`eval_kl`).
    public var measuresRewardDiagnostics: Bool { evalKL == true || !rewardSource.isGold }

    /// Turns of the multi-turn evaluation (`evalTurns`, else the training turns); 1 means
    /// none beyond the single-turn evaluation.
    public var evaluationTurns: Int { evalTurns ?? episodeSpec.turns }

    /// The held-out levels each evaluation point samples (`evalLevels`, else `all`).
    public var evaluationLevels: EvalLevels { evalLevels ?? .all }

    /// The knobs this cell reads: its method's (the episode knobs only with more than one
    /// turn), and the `rm_*` knobs when it trains on a learned reward model.
    public var knobsRead: Set<MethodKnob> {
        var closed: Set<MethodKnob> = episodeSpec.turns > 1 ? [] : [.turnCredit]
        if max(episodeSpec.turns, evaluationTurns) == 1 { closed.insert(.feedback) }
        return MethodKnob.read(by: method).subtracting(closed).union(rewardSource == .learned ? MethodKnob.rewardModelKnobs : [])
    }

    /// Sets a method knob from its spelling (a grid file's value, a command-line option);
    /// nil when it took, otherwise what the knob accepts.
    public mutating func set(_ knob: MethodKnob, to spelled: String) -> String? {
        /// Stores a spelled knob value at `path`, or says what the knob accepts.
        func assign<K: KnobSpelled>(_ path: WritableKeyPath<CellConfig, K>) -> String? {
            guard let v = K(spelled) else { return "'\(spelled)' is not \(K.spellings)" }
            self[keyPath: path] = v
            return nil
        }
        switch knob {
        case .kl, .entropy, .distill:
            guard let x = Double(spelled.trimmingCharacters(in: .whitespaces)), x >= 0, x.isFinite else {
                return "must be a number >= 0, got \(spelled)"
            }
            switch knob {
            case .kl: klCoef = x
            case .entropy: entropyCoef = x
            default: distill = x
            }
        case .teacher: return assign(\.teacher)
        case .divergence: return assign(\.divergence)
        case .distillOn: return assign(\.distillOn)
        case .reward: return assign(\.rewardSource)
        case .turns:
            guard let t = Int(spelled.trimmingCharacters(in: .whitespaces)), t >= 1, t <= EpisodeSpec.maxTurns else {
                return "must be a whole number of turns in 1...\(EpisodeSpec.maxTurns), got \(spelled)"
            }
            episodeSpec.turns = t
        case .feedback: return assign(\.episodeSpec.feedback)
        case .turnCredit: return assign(\.episodeSpec.credit)
        case .rmSize, .rmLabels, .rmLabelNoise, .rmEnsemble:
            var spec = rewardModel ?? RewardModelSpec()
            let t = spelled.trimmingCharacters(in: .whitespaces)
            switch knob {
            case .rmSize:
                guard !t.isEmpty, t.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    return "must be a base name of the grid's ladder or base, got '\(spelled)'"
                }
                spec.size = t
            case .rmLabels:
                guard let n = Int(t), n >= 8 else { return "must be a whole number of labelled samples >= 8, got \(spelled)" }
                spec.labels = n
            case .rmLabelNoise:
                guard let x = Double(t), x >= 0, x < 0.5 else { return "must be a flip probability in [0, 0.5), got \(spelled)" }
                spec.labelNoise = x
            default:
                guard let e = RewardEnsemble(t) else { return "'\(spelled)' is not \(RewardEnsemble.spellings)" }
                spec.ensemble = e
            }
            // Kept only when it says something: a spec equal to the defaults on a cell that
            // does not train on a reward model would change the id and nothing else.
            rewardModel = rewardSource != .learned && spec == RewardModelSpec() ? nil : spec
        }
        return nil
    }

    /// The method as the law fitter labels it: its name, then every knob it reads that is
    /// set away from its default, e.g. "sdpg[teacher=ema:0.05,distill=0.5]", so that
    /// variants of a method form different law groups (a knob it does not read is ignored).
    public var methodLabel: String {
        let reads = knobsRead
        let set = MethodKnob.allCases.filter { reads.contains($0) && value(of: $0) != CellDefaults.cell.value(of: $0) }
        guard !set.isEmpty else { return method }
        return method + "[" + set.map { "\($0.rawValue)=\(value(of: $0))" }.joined(separator: ",") + "]"
    }
}

extension CellDefaults {
    /// A config holding every default (its budget is a placeholder).
    public static let cell = CellConfig(method: method, budgetFLOPs: 1)
}

/// The held-out levels an evaluation point samples (`eval_levels`).
public enum EvalLevels: String, Codable, Sendable, CaseIterable {
    /// Every level of the cell's families: the training levels and the extrapolation
    /// levels beyond them.
    case all
    /// The training levels only (`train_dist`).
    case train
}
