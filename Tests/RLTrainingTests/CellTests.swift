import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Rewards
import Tasks
import Testing

@testable import RLTraining

/// A small untrained base with a record whose (tiny) held-out evaluation marks every
/// problem unsolved.
func toyBase(seed: UInt64 = 1) throws -> (Transformer, BaseRecord) {
    let mix = try TaskMixture.parse("sort")
    let spec = BaseSpec(name: "toy", model: BaseSpec.shape(dModel: 32, layers: 2, heads: 2), corpus: CorpusConfig(mixture: mix), seed: seed)
    let model = try Transformer(config: spec.model, seed: seed)
    let setSpec = EvalSetSpec(problemsPerLevel: 1, seed: 5)
    let set = setSpec.build(mix.families)
    let outcomes = set.problems.indices.map { ProblemOutcome(index: $0, greedyCorrect: false, successes: 0, samples: 4) }
    let eval = BaseEvaluation(set: setSpec, options: EvalOptions(samples: 4), outcomes: outcomes, summary: [], cost: EvalCost(), wallSeconds: 0)
    return (model, BaseRecord(spec: spec, evaluation: eval))
}

/// Success rate of `problem` over `n` samples.
func passRate(_ m: Transformer, _ p: Problem, n: Int = 256, seed: UInt64 = 99) throws -> Double {
    var rng = SeededRNG(seed: seed)
    let r = try m.sample(
        prompts: Array(repeating: p.promptTokens, count: n),
        options: SamplingOptions(maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos), rng: &rng)
    return Double(r.completions.filter { Verifier.verify(p, completion: $0.tokens).correct }.count) / Double(n)
}

@Suite struct CellTests {
    let problem = Problem(family: "sort", difficulty: 2, text: "S914", steps: ["1", "4", "9"], answer: "149")

    /// Supervised steps on the problem's reference solution until it is solved sometimes.
    func warmStart(_ m: Transformer) throws {
        let opt = AdamW(for: m, config: AdamWConfig(weightDecay: 0))
        let b = SequenceBatch([(problem.promptTokens, Problem.completionTokens(problem.solution))])
        let w = b.targets.map { $0 >= 0 ? 1 / Float(b.targetCount) : 0 }
        for _ in 0..<200 {
            if try passRate(m, problem, n: 64) >= 0.1 { return }
            for _ in 0..<5 {
                try b.forward(m)
                m.zeroGradients()
                try m.setWeightedNLLGradient(targets: b.targets, weights: w)
                m.backward()
                opt.step(m, learningRate: 1e-3)
            }
        }
    }

    @Test func aGRPOStepOnAOneProblemToyRaisesItsReward() throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        try warmStart(model)
        let before = try passRate(model, problem)
        #expect(before > 0.02 && before < 0.9, "warm start pass rate \(before)")
        let cfg = CellConfig(method: "grpo", rolloutsPerProblem: 8, problemsPerBatch: 4, budgetFLOPs: 1e15, learningRate: 1e-3)
        var state = try TrainingState(config: cfg, method: .grpo(), base: model, baseRecord: record, baseEval: record.evaluation!)
        // Adam's first steps jolt a freshly warm-started policy; 40 updates show the trend.
        for _ in 0..<40 {
            let (groups, _) = try state.sampleGroups(Array(repeating: problem, count: 4))
            var stats = TrainStepStats()
            try state.update(groups, lr: 1e-3, stats: &stats)
        }
        let after = try passRate(state.policy, problem)
        #expect(after > before + 0.1, "pass rate \(before) → \(after)")
    }

    /// The dead-zone fraction the trainer measures (its step statistics) on a one-problem pool,
    /// with the policy held fixed (lr 0), matches pⁿ + (1 − p)ⁿ for the problem's pass rate p
    /// measured independently from 20,000 samples. (A dead-zone test that ignores one rollout
    /// of each group fails this at the 5σ tolerance: 600 steps × 8 groups keep σ near 0.01.)
    /// On a one-problem pool with known pass rate p (measured on 20,000 samples), lr 0 so p
    /// stays put: the trainer's zero-variance fraction is pⁿ + (1 − p)ⁿ for every method,
    /// and its no-gradient fraction is what the method's terms predict: the same for GRPO,
    /// (1 − p)ⁿ for expert iteration (an all-correct group still trains), 0 for
    /// self-distillation (a dense term).
    @Test(arguments: ["grpo", "expert_iteration", "opsd"])
    func theMeasuredDeadZoneMatchesTheBinomialPrediction(method: String) throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        try warmStart(model)
        let samples = 20_000
        let p = try passRate(model, problem, n: samples, seed: 5)
        #expect(p > 0.05 && p < 0.95, "pass rate \(p)")
        let n = 4, bp = 8, steps = method == "grpo" ? 600 : 300
        let cfg = CellConfig(method: method, rolloutsPerProblem: n, problemsPerBatch: bp, budgetFLOPs: 1e15, poolSize: 1)
        let request = PoolRequest(mixture: cfg.tasks, ranges: ["sort": 2...2], bucket: nil, size: 1, samples: 4)
        var state = try TrainingState(
            config: cfg, method: try #require(cfg.makeMethod()), base: model, baseRecord: record,
            baseEval: try #require(record.evaluation), pool: ProblemPool(request: request, problems: [problem]))
        var all: [TrainStepStats] = []
        for s in 0..<steps { all.append(try state.trainStep(step: s, lr: 0)) }
        let groups = all.reduce(0) { $0 + $1.groups }
        #expect(groups == bp * steps)
        let window = TrainingState.summarize(all, first: 0, last: steps - 1)
        let q = 1 - p, N = Double(n)
        let zeroVariance = pow(p, N) + pow(q, N)
        let noGradient = switch method {
        case "grpo": zeroVariance
        case "expert_iteration": pow(q, N)
        default: 0.0
        }
        // Binomial noise of the count plus the propagated noise of the measured p.
        func check(_ observed: Double, _ expected: Double, slope: Double, _ what: String) {
            let sigma = (expected * (1 - expected) / Double(groups) + slope * slope * p * q / Double(samples)).squareRoot()
            #expect(abs(observed - expected) <= 5 * sigma, "\(method) \(what) \(observed) vs \(expected) (p \(p), σ \(sigma))")
        }
        check(window.deadZoneFraction, zeroVariance, slope: N * (pow(p, N - 1) - pow(q, N - 1)), "zero-variance fraction")
        let ng = try #require(window.noGradientFraction)
        check(ng, noGradient, slope: method == "grpo" ? N * (pow(p, N - 1) - pow(q, N - 1)) : N * pow(q, N - 1), "no-gradient fraction")
        if method == "opsd" {
            #expect(ng == 0 && window.noGradientTrainingShare == 0)
        } else {
            // Groups without gradient are still trained (no dynamic sampling): their share
            // of the training FLOPs is about their share of the groups.
            #expect(abs((window.noGradientTrainingShare ?? -1) - ng) < 0.05)
        }
    }

    @Test(arguments: ["grpo", "opsd"])
    func recordedFLOPsEqualTheSumOverPasses(method: String) throws {
        let (model, record) = try toyBase()
        let cfg = CellConfig(method: method, rolloutsPerProblem: 3, problemsPerBatch: 2, budgetFLOPs: 1e15, klCoef: method == "grpo" ? 0.1 : 0)
        var state = try TrainingState(config: cfg, method: try #require(cfg.makeMethod()), base: model, baseRecord: record, baseEval: record.evaluation!)
        let problems = [problem, Problem(family: "sort", difficulty: 1, text: "S72", steps: ["2", "7"], answer: "27")]
        let (groups, _) = try state.sampleGroups(problems)
        let c = model.config
        // The batch is packed: every pass is charged each sequence at its own length.
        var sampling = 0.0, training = 0.0, reference = 0.0, teacher = 0.0
        for g in groups {
            for r in g.rollouts {
                let T = g.problem.promptTokens.count + r.completion.count - 1
                sampling += FLOPs.forwardSequence(c, length: T)
                training += FLOPs.trainSequence(c, length: T)
                if method == "grpo" { reference += FLOPs.forwardSequence(c, length: T) }
                if method == "opsd" { teacher += FLOPs.forwardSequence(c, length: g.problem.privilegedPromptTokens.count + r.completion.count - 1) }
            }
        }
        #expect(abs(state.ledger.sampling - sampling) <= 1e-9 * sampling)
        #expect(state.ledger.rollouts == 6)
        var stats = TrainStepStats()
        try state.update(groups, lr: 1e-4, stats: &stats)
        #expect(state.ledger.training == training)
        #expect(state.ledger.reference == reference)
        #expect(state.ledger.teacher == teacher)
        #expect(abs(state.ledger.total - (sampling + training + reference + teacher)) <= 1e-9 * state.ledger.total)
    }

    @Test func dynamicSamplingChargesDiscardedRollouts() throws {
        let (model, record) = try toyBase()
        // An untrained policy never solves anything: every group is dead, all are discarded,
        // and all 8 rounds of sampling are charged.
        let cfg = CellConfig(method: "dapo", rolloutsPerProblem: 2, problemsPerBatch: 2, budgetFLOPs: 1e15)
        var state = try TrainingState(config: cfg, method: .dapo, base: model, baseRecord: record, baseEval: record.evaluation!)
        let stats = try state.trainStep(step: 0, lr: 1e-4)
        #expect(stats.groups == 16 && stats.discarded == 16 && stats.deadGroups == 16)
        #expect(state.ledger.rollouts == 32)
        #expect(state.ledger.training == 0)
        #expect(abs(stats.samplingFLOPs - state.ledger.sampling) <= 1e-9 * state.ledger.sampling)
    }

    @Test func aDivergingRunEndsAsAFailedCellWithItsReason() throws {
        let (model, record) = try toyBase()
        model.parameters[7] = .nan
        let cfg = CellConfig(method: "grpo", rolloutsPerProblem: 2, problemsPerBatch: 2, budgetFLOPs: 1e10, evalPoints: 2, evalSamples: 4)
        let result = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        #expect(result.status == "failed")
        #expect(result.failure?.contains("non-finite") == true, "\(result.failure ?? "nil")")
    }

    @Test func aCellStopsWhenItsBudgetIsSpentAndEvaluatesAtEveryPoint() throws {
        let (model, record) = try toyBase()
        let cfg = CellConfig(method: "rloo", rolloutsPerProblem: 2, problemsPerBatch: 2, budgetFLOPs: 2e9, evalPoints: 8, evalSamples: 4)
        let r = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        #expect(r.status == "done")
        #expect(r.curve.count == 8)
        #expect(r.curve.first?.step == 0 && r.curve.first?.compute.total == 0)
        #expect(r.compute.total >= 2e9)
        // Overshoot is at most one step's worth.
        let perStep = r.compute.total / Double(r.steps)
        #expect(r.compute.total < 2e9 + 2 * perStep)
        #expect(zip(r.curve, r.curve.dropFirst()).allSatisfy { $0.compute.total <= $1.compute.total })
        // Same config and seed ⇒ identical curve (single-threaded BLAS).
        setBLASThreads(1)
        let (m2, rec2) = try toyBase()
        let r2 = try CellRunner(config: cfg, base: m2, baseRecord: rec2).run()
        #expect(r2.curve.map(\.compute) == r.curve.map(\.compute))
        #expect(r2.curve.map(\.groups) == r.curve.map(\.groups))
    }
}

@Suite struct PoolCellTests {
    /// A cell on a fixed pool draws only its D problems, in epochs, and reports how many it drew;
    /// its `train_dist` group holds the held-out problems of its bucket in its training levels.
    @Test func aPoolCellTrainsInEpochsOverItsPool() throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        let cfg = CellConfig(
            method: "rloo", rolloutsPerProblem: 2, problemsPerBatch: 2, budgetFLOPs: 2e9, maxDifficulty: 2,
            trainBucket: .unsolved, poolSize: 3, evalPoints: 2, evalSamples: 4)
        let r = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        #expect(r.status == "done")
        let pool = try #require(r.pool)
        #expect(pool.size == 3 && pool.bucket == .unsolved)
        // Every step draws Bp problems from the pool.
        #expect(pool.drawn == 2 * r.steps && pool.drawn > 3)
        #expect(abs(pool.epochs - Double(pool.drawn) / 3) < 1e-12)
        #expect(pool.buildFLOPs > 0 && r.compute.total < 2e9 + r.compute.total / Double(r.steps) * 2)
        // The toy base marks every held-out problem unsolved: train_dist = every sort problem of levels 1–2.
        let eval = try #require(record.evaluation)
        let set = eval.set.build(record.spec.corpus.mixture.families)
        let expected = set.problems.filter { $0.family == "sort" && $0.difficulty <= 2 }.count
        let train = r.curve.last?.groups.first { $0.group == "train_dist" }
        #expect(train?.problems == expected && expected > 0)
        // Every point records each train_dist problem's successes (the dead zone's theory):
        // one count per problem, and their mean over the samples is avg@1 of train_dist.
        for point in r.curve {
            let successes = try #require(point.trainSuccesses)
            let group = try #require(point.groups.first { $0.group == "train_dist" })
            #expect(successes.count == group.problems && successes.allSatisfy { (0...4).contains($0) })
            let avg1 = try #require(group.avg["1"])
            #expect(abs(Double(successes.reduce(0, +)) / Double(4 * successes.count) - avg1) < 1e-12)
        }
        // A bucket the (untrained) base never lands in cannot fill its pool: the cell refuses to run.
        var easy = cfg
        easy.trainBucket = .easy
        #expect(throws: CellError.self) { try CellRunner(config: easy, base: model, baseRecord: record).run() }
    }
}

@Suite struct SurrogateGradientTests {
    /// A method built from existing terms by declaration alone: GRPO's clipped policy
    /// gradient plus k3 KL to the policy one update old, an entropy bonus, and JSD(0.5) to
    /// an EMA of the policy reading the privileged prompt.
    static let composite = RLMethod(
        name: "composite", advantages: GroupNormalized(),
        terms: [ClippedPolicyGradient(), ReferenceKL(coef: 0.3), EntropyBonus(coef: 0.2), TeacherDivergence(coef: 0.7, divergence: .jsd(beta: 0.5))],
        reference: .lagged(1), teacher: Teacher(weights: .ema(rate: 0.1), prompt: .privileged))

    /// Every method, and variants covering each teacher kind (base by default; the policy,
    /// lag 1, EMA), each divergence and each token mask.
    static let variants = [
        "grpo_kl_entropy", "opsd_policy", "opsd_lag1", "opsd_forward_kl", "opsd_jsd", "opsd_confident", "sdpo_ema",
        "sdpg_failed", "composite",
    ]
    static let cases = Methods.names + variants
    /// The sampled-token form's surrogate is a policy gradient (its loss is the KL estimate,
    /// not a function whose gradient it takes), so finite differences do not apply to it;
    /// LossTermTests checks it in expectation.
    static let sampledCases = ["opsd_sampled"]

    /// The config and method of a test case. `frozenTeacher` reads a teacher that is the
    /// current policy as a snapshot of it (history[0], set equal to the policy by
    /// `prepared`): the gradient treats the teacher as a stop-gradient copy, so finite
    /// differences must hold it fixed.
    static func method(_ label: String, frozenTeacher: Bool = true) throws -> (CellConfig, RLMethod) {
        var cfg = CellConfig(method: label, rolloutsPerProblem: 4, problemsPerBatch: 2, budgetFLOPs: 1e15)
        switch label {
        case "grpo_kl_entropy": cfg.method = "grpo"; cfg.klCoef = 0.5; cfg.entropyCoef = 0.3
        case "opsd_policy": cfg.method = "opsd"; cfg.teacher = .policy
        case "opsd_lag1": cfg.method = "opsd"; cfg.teacher = .lagged(1); cfg.distill = 0.7
        case "opsd_forward_kl": cfg.method = "opsd"; cfg.divergence = .full(.forwardKL)
        case "opsd_jsd": cfg.method = "opsd"; cfg.divergence = .full(.jsd(beta: 0.3))
        case "opsd_sampled": cfg.method = "opsd"; cfg.divergence = .sampledToken
        case "opsd_confident": cfg.method = "opsd"; cfg.distillOn = .confident(0.5)
        case "sdpo_ema": cfg.method = "sdpo"; cfg.teacher = .ema(rate: 0.1)
        case "sdpg_failed": cfg.method = "sdpg"; cfg.distillOn = .failed; cfg.distill = 0.5
        case "composite": cfg.method = "grpo"; return (cfg, composite)
        default: break
        }
        var m = try #require(cfg.makeMethod())
        if frozenTeacher && m.teacher?.weights == .policy { m.teacher?.weights = .lagged(1) }
        return (cfg, m)
    }

    /// A training state for `label` on a randomised base whose next-token distributions are
    /// sharp (mean logit std checked to be 2–4), with two groups of mixed rewards; lagged
    /// and EMA weights differ from the policy; the policy has moved away from the behavior
    /// weights, and half the rollouts were sampled by weights e^1.5 less likely to produce
    /// them, so ratios fall on both sides of 1 ± ε and beyond the IS cap.
    static func prepared(_ label: String, frozenTeacher: Bool = true) throws -> (TrainingState, [RolloutGroup]) {
        setBLASThreads(1)
        let (model, record) = try toyBase(seed: 3)
        var prng = SeededRNG(seed: 4)
        for i in 0..<model.parameters.count { model.parameters[i] += Float(0.3 * prng.gaussian()) }
        let (cfg, method) = try Self.method(label, frozenTeacher: frozenTeacher)
        var state = try TrainingState(config: cfg, method: method, base: model, baseRecord: record, baseEval: try #require(record.evaluation))
        let problems = [
            Problem(family: "sort", difficulty: 2, text: "S914", steps: ["1", "4", "9"], answer: "149"),
            Problem(family: "sort", difficulty: 1, text: "S72", steps: ["2", "7"], answer: "27"),
        ]
        var (groups, _) = try state.sampleGroups(problems)
        for gi in groups.indices {
            for ri in groups[gi].rollouts.indices {
                groups[gi].rollouts[ri].reward = Double((ri + gi) % 2)
                for si in groups[gi].rollouts[ri].steps.indices { groups[gi].rollouts[ri].steps[si].score = Double((ri + si) % 2) }
                if ri % 2 == 1 { groups[gi].rollouts[ri].behaviorLogProbs = groups[gi].rollouts[ri].behaviorLogProbs.map { $0 - 1.5 } }
            }
        }
        let b = SequenceBatch(groups.flatMap { g in g.rollouts.map { (g.problem.promptTokens, $0.completion) } })
        try b.forward(state.policy)
        let V = state.policy.config.vocab, z = state.policy.logits
        var sd = 0.0
        for n in b.tokens.indices {
            let row = (0..<V).map { Double(z[n * V + $0]) }, m = row.reduce(0, +) / Double(V)
            sd += (row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(V)).squareRoot()
        }
        sd /= Double(b.tokens.count)
        #expect(sd >= 2 && sd <= 4, "mean logit std \(sd)")
        state.history = [state.policy.parameters.map { $0 + Float(0.3 * prng.gaussian()) }, Array(state.policy.parameters)]
        if let e = state.ema { for i in 0..<e.parameters.count { e.parameters[i] += Float(0.3 * prng.gaussian()) } }
        for i in 0..<state.policy.parameters.count { state.policy.parameters[i] += Float(0.05 * (prng.uniform() - 0.5)) }
        if frozenTeacher && label == "opsd_policy" { state.history[0] = Array(state.policy.parameters) }
        return (state, groups)
    }

    /// The whole surrogate of every method (and of three variants and one composite
    /// declaration) against central finite differences along random directions.
    @Test(arguments: cases)
    func surrogateGradientMatchesFiniteDifferences(label: String) throws {
        var (state, groups) = try Self.prepared(label)
        let method = state.method
        var stats = TrainStepStats()
        _ = try state.lossAndGradient(groups, stats: &stats)
        // The PPO clip fires on some tokens and the IS cap truncates others.
        if method.terms.contains(where: { $0 is ClippedPolicyGradient }) {
            #expect(stats.clipped > 0 && stats.truncated > 0, "clipped \(stats.clipped), truncated \(stats.truncated)")
        }
        let grad = Array(state.policy.gradients)
        let p = state.policy.parameters
        let eps: Float = 2e-3
        for trial in 0..<3 {
            var drng = SeededRNG(seed: 100 + UInt64(trial))
            let dir = (0..<p.count).map { _ in Float(drng.gaussian()) }
            let norm = dir.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let unit = dir.map { $0 / norm }
            for i in 0..<p.count { p[i] += eps * unit[i] }
            let up = try state.lossAndGradient(groups, stats: &stats)
            for i in 0..<p.count { p[i] -= 2 * eps * unit[i] }
            let down = try state.lossAndGradient(groups, stats: &stats)
            for i in 0..<p.count { p[i] += eps * unit[i] }
            let fd = (up - down) / (2 * Double(eps))
            var an = 0.0
            for i in 0..<p.count { an += Double(grad[i]) * Double(unit[i]) }
            #expect(abs(fd - an) <= 2e-2 * max(abs(fd), abs(an)) + 2e-4, "\(label) direction \(trial): fd \(fd) vs analytic \(an)")
        }
    }

    /// The batched loss equals the sum of every term over every token, scored one rollout
    /// at a time with unbatched forwards of the student, teacher (its own prompt) and
    /// reference, and the terms' row functions: catches misaligned rows, offsets and
    /// advantages, which move loss and gradient together and escape finite differences.
    @Test(arguments: cases + sampledCases)
    func theBatchedLossIsItsTokensScoredOneRolloutAtATime(label: String) throws {
        var (state, groups) = try Self.prepared(label)
        let method = state.method
        var stats = TrainStepStats()
        let batched = try state.lossAndGradient(groups, stats: &stats)
        let rollouts = groups.flatMap { g in g.rollouts.map { (g.problem, $0) } }
        let advantages = groups.flatMap { method.advantages($0) }
        let tokens = rollouts.reduce(0) { $0 + $1.1.completion.count }
        let scale: Double = switch method.aggregation {
        case .tokenMean: 1 / Double(tokens)
        case .constant: 1 / Double(rollouts.count * maxSolutionTokens)
        case .sequenceSum: 1 / Double(rollouts.count)
        }
        let snapshot = try Transformer(config: state.policy.config, seed: 0)
        func weights(_ s: PolicySource) throws -> Transformer {
            switch s {
            case .policy: return state.policy
            case .frozenBase: return state.base
            case .ema: return try #require(state.ema)
            case .lagged(let k):
                for i in 0..<snapshot.parameters.count { snapshot.parameters[i] = state.history[state.history.count - 1 - k][i] }
                return snapshot
            }
        }
        /// Double log-softmax rows at the completion's positions of one unbatched forward.
        func rows(_ m: Transformer, _ prompt: [Int32], _ completion: [Int32]) throws -> [[Double]] {
            let b = SequenceBatch([(prompt, completion)])
            try b.forward(m)
            let V = m.config.vocab, z = m.logits
            return (0..<completion.count).map { j in
                let n = prompt.count - 1 + j
                return LossTermTests.softmax((0..<V).map { Double(z[n * V + $0]) }).lp
            }
        }
        var total = 0.0, distilled = 0
        let members = groups.flatMap { g in g.rollouts.indices.map { (g, $0) } }
        for (i, (problem, r)) in rollouts.enumerated() {
            let student = try rows(state.policy, problem.promptTokens, r.completion)
            // The teacher's rows on its own prompt (none when the rollout is not distilled).
            let teacher = try method.teacher.flatMap { t -> [[Double]]? in
                guard let prompt = t.prompt(for: members[i].1, of: members[i].0, context: state.policy.config.context) else { return nil }
                return try rows(try weights(t.weights), prompt, r.completion)
            }
            let reference = try method.reference.map { try rows(try weights($0), problem.promptTokens, r.completion) }
            for j in 0..<r.completion.count {
                let target = Int(r.completion[j])
                let lp = student[j], p = lp.map { exp($0) }, h = -zip(p, lp).reduce(0) { $0 + $1.0 * $1.1 }
                var teacherRow = teacher?[j] ?? []
                // A confidence mask drops tokens whose largest teacher probability is below τ.
                if case .confident(let tau)? = method.teacher?.tokens, let top = teacherRow.max(), exp(top) < tau { teacherRow = [] }
                if !teacherRow.isEmpty { distilled += 1 }
                let tlp = teacherRow.map { Float($0) }, tp = teacherRow.map { Float(exp($0)) }
                lp.withUnsafeBufferPointer { lpb in
                    p.withUnsafeBufferPointer { pb in
                        tlp.withUnsafeBufferPointer { tlpb in
                            tp.withUnsafeBufferPointer { tpb in
                                let view = TokenView(
                                    vocab: lp.count, target: target, logProb: Float(lp[target]), behaviorLogProb: r.behaviorLogProbs[j],
                                    referenceLogProb: reference.map { Float($0[j][target]) } ?? .nan, advantage: advantages[i][j],
                                    logProbs: lpb, probs: pb, entropy: h, teacherLogProbs: tlpb, teacherProbs: tpb)
                                for term in method.terms { total += term.rowLossAndGradient(view, scale: scale).loss }
                            }
                        }
                    }
                }
            }
        }
        #expect(abs(total - batched) <= 1e-4 * max(abs(batched), 1e-2), "\(label): batched \(batched) vs one rollout at a time \(total)")
        #expect(stats.distilled == distilled, "\(label): distilled tokens \(stats.distilled) vs \(distilled)")
        if method.teacher != nil {
            // Every variant distils some tokens and (masks, siblings) leaves some out, or none.
            #expect(distilled > 0, "\(label) distils nothing")
        }
    }

    /// A teacher that is the current policy reading its own forward gives bitwise the loss
    /// and gradient of a frozen snapshot of the same weights (the trainer's stop-gradient).
    @Test func theCurrentPolicyAsTeacherIsItsStopGradientSnapshot() throws {
        var (live, groups) = try Self.prepared("opsd_policy", frozenTeacher: false)
        var (frozen, _) = try Self.prepared("opsd_policy", frozenTeacher: true)
        #expect(live.method.teacher?.weights == .policy && frozen.method.teacher?.weights == .lagged(1))
        var s1 = TrainStepStats(), s2 = TrainStepStats()
        let a = try live.lossAndGradient(groups, stats: &s1), b = try frozen.lossAndGradient(groups, stats: &s2)
        #expect(a == b)
        #expect(Array(live.policy.gradients) == Array(frozen.policy.gradients))
    }

    /// After an update, the EMA teacher holds θ̄ + r·(θ − θ̄) of the updated policy.
    @Test func theEMATeacherFollowsThePolicyAfterEachUpdate() throws {
        var (state, groups) = try Self.prepared("composite")
        let ema = try #require(state.ema)
        let before = Array(ema.parameters)
        var stats = TrainStepStats()
        try state.update(groups, lr: 1e-3, stats: &stats)
        let p = state.policy.parameters, r: Float = 0.1
        #expect(p.indices.allSatisfy { ema.parameters[$0] == before[$0] + r * (p[$0] - before[$0]) })
        #expect(zip(before, ema.parameters).contains { $0 != $1 })
    }
}

@Suite struct ProxyRewardCellTests {
    /// An untrained policy never solves anything, so gold is 0 everywhere and GRPO on gold
    /// has no gradient: the policy never moves (d stays 0). A verifier that accepts every
    /// wrong answer half the time (`noisy:0.5,0`) gives reward variance: the cell trains on
    /// it, moves away from its base, and records the proxy (≈ 0.5) beside gold (0), every
    /// acceptance a hack. The gold cell measures the diagnostics because it asks
    /// (`eval_kl`); without asking it spends nothing on them and records none.
    @Test func aCellTrainsOnItsProxyAndRecordsGoldBesideIt() throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        var cfg = CellConfig(method: "grpo", rolloutsPerProblem: 4, problemsPerBatch: 2, budgetFLOPs: 2e9, evalPoints: 3, evalSamples: 4)
        let unasked = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        #expect(unasked.status == "done" && unasked.curve.allSatisfy { $0.reward == nil })
        cfg.evalKL = true
        let gold = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        #expect(gold.compute.evaluation > unasked.compute.evaluation, "the diagnostics' forwards are evaluation FLOPs")
        cfg.evalKL = nil
        cfg.rewardSource = .noisy(falsePositive: 0.5, falseNegative: 0, corrected: false)
        let proxy = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        for r in [gold, proxy] {
            #expect(r.status == "done" && r.curve.allSatisfy { $0.reward != nil })
            #expect(r.curve.first?.reward?.d == 0)
            #expect(r.windows.allSatisfy { $0.goldReward == 0 })
        }
        #expect(gold.curve.allSatisfy { $0.reward?.d == 0 && $0.reward?.proxy == 0 }, "gold has no variance: the policy never moves")
        #expect(gold.windows.allSatisfy { $0.meanReward == 0 && $0.hackRate == 0 })
        let w = proxy.windows.reduce(0.0) { $0 + $1.meanReward } / Double(proxy.windows.count)
        #expect(abs(w - 0.5) < 0.1, "mean proxy reward \(w)")
        #expect(proxy.windows.allSatisfy { $0.hackRate == $0.meanReward })
        let last = try #require(proxy.curve.last?.reward)
        // 32 samples: the proxy's own standard error (≈ 0.09) sets the tolerance.
        let se = try #require(last.proxySE)
        #expect(last.d > 0 && last.gold == 0 && abs(last.proxy - 0.5) < 3 * se && last.hackRate == last.proxy, "\(last)")
    }

    /// The reward diagnostics are measured on the cell's `train_dist` problems: its levels
    /// and, for a bucketed pool, only the bucket's problems. With half the held-out problems
    /// marked solved by the base, an unsolved-bucket pool's diagnostics cover exactly the
    /// other half of the training levels (× eval samples).
    @Test func rewardDiagnosticsCoverTheTrainDistribution() throws {
        setBLASThreads(1)
        let (model, plain) = try toyBase()
        var record = plain
        var eval = try #require(record.evaluation)
        for i in eval.outcomes.indices where i % 2 == 0 { eval.outcomes[i].successes = eval.outcomes[i].samples }
        record.evaluation = eval
        var cfg = CellConfig(
            method: "rloo", rolloutsPerProblem: 2, problemsPerBatch: 2, budgetFLOPs: 1e9, maxDifficulty: 2,
            trainBucket: .unsolved, poolSize: 2, evalPoints: 2, evalSamples: 4)
        cfg.evalKL = true  // a gold-reward cell measures the diagnostics only when asked
        let r = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        let set = eval.set.build(record.spec.corpus.mixture.families)
        let expected = set.problems.indices.filter { set.problems[$0].difficulty <= 2 && $0 % 2 == 1 }.count
        let train = r.curve.last?.groups.first { $0.group == "train_dist" }
        #expect(expected > 0 && train?.problems == expected)
        #expect(r.curve.allSatisfy { $0.reward?.samples == expected * cfg.evalSamples }, "\(r.curve.map { $0.reward?.samples ?? -1 })")
    }

    /// A cell on a learned reward model charges the model's forwards over every rollout it
    /// scores (`compute.rewardModel`, part of the budget's total) and records how the model
    /// was built (not charged); without its model the cell refuses to run.
    @Test func aRewardModelCellChargesItsScoring() throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        var cfg = CellConfig(method: "grpo", rolloutsPerProblem: 4, problemsPerBatch: 2, budgetFLOPs: 1e9, evalPoints: 2, evalSamples: 4)
        cfg.rewardSource = .learned
        var request = try #require(cfg.rewardModelRequest(policyBase: record, rmBase: record))
        request.heldOut = 16
        request.minSteps = 2
        request.spec.labels = 16
        let rm = try RewardModel.train(request, policyBase: model, rmBase: model)
        let r = try CellRunner(config: cfg, base: model, baseRecord: record, rewardModel: rm).run()
        #expect(r.status == "done")
        let l = r.compute
        #expect(l.rewardModel > 0)
        #expect(abs(l.total - (l.sampling + l.training + l.rewardModel)) <= 1e-9 * l.total && l.teacher == 0 && l.reference == 0)
        // One scoring forward per rollout: at least the prompt plus SEP per row, at most the context.
        let perRollout = l.rewardModel / Double(l.rollouts)
        #expect(perRollout >= FLOPs.forwardSequence(model.config, length: 4) && perRollout <= FLOPs.forwardSequence(model.config, length: 96))
        #expect(r.rewardModel == rm.record && r.curve.allSatisfy { $0.reward != nil })
        #expect(throws: CellError.self) { try CellRunner(config: cfg, base: model, baseRecord: record).run() }
    }
}

@Suite struct StepWindowTests {
    /// Steps with rewards 0, 1, 2, … (one rollout each) and losses equal to their index.
    static func steps(_ n: Int) -> [TrainStepStats] {
        (0..<n).map { i in
            var s = TrainStepStats()
            s.rewardSum = Double(i)
            s.rollouts = 1
            s.groups = 1
            s.deadGroups = i % 2
            s.loss = Double(i)
            return s
        }
    }

    /// Up to 1,280 steps the windows are 5 steps each (the last shorter); past it a cell
    /// keeps at most 256 windows of ⌈steps / 256⌉ steps, tiling the steps in order, and
    /// every field of a merged window summarises exactly its own steps.
    @Test func windowsAreFiveStepsUntilTheCapThenMerge() {
        let short = TrainingState.windows(Self.steps(12), distills: false)
        #expect(short.map { [$0.firstStep, $0.lastStep] } == [[0, 4], [5, 9], [10, 11]])
        #expect(short.map(\.meanReward) == [2, 7, 10.5])
        #expect(TrainingState.windows(Self.steps(1280), distills: false).count == 256)
        let long = TrainingState.windows(Self.steps(13_159), distills: false)
        let size = (13_159 + 255) / 256
        #expect(long.count <= 256 && long.count == (13_159 + size - 1) / size)
        #expect(long.first?.firstStep == 0 && long.last?.lastStep == 13_158)
        for (a, b) in zip(long, long.dropFirst()) { #expect(b.firstStep == a.lastStep + 1) }
        for w in long {
            let mean = Double(w.firstStep + w.lastStep) / 2
            #expect(abs(w.meanReward - mean) < 1e-9 && abs(w.loss - mean) < 1e-9)
            let dead = (w.firstStep...w.lastStep).filter { $0 % 2 == 1 }.count
            #expect(abs(w.deadZoneFraction - Double(dead) / Double(w.lastStep - w.firstStep + 1)) < 1e-12)
        }
    }
}

@Suite struct EvalLevelsTests {
    /// `eval_levels = train` samples only the training levels (here 2–3, so that levels
    /// below and above are left out) at every evaluation point: the family's `all` group is
    /// then the `train_dist` group, no other level is reported, evaluation costs less, and
    /// training (which never reads the evaluation) is bitwise the same.
    @Test func trainLevelsEvaluateOnlyTheTrainingDistribution() throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        var cfg = CellConfig(
            method: "grpo", rolloutsPerProblem: 4, problemsPerBatch: 2, budgetFLOPs: 1e9, maxDifficulty: 3, minDifficulty: 2,
            evalPoints: 3, evalSamples: 4)
        let all = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        cfg.evalLevels = .train
        let train = try CellRunner(config: cfg, base: model, baseRecord: record).run()
        func problems(_ r: CellResult, _ group: String) -> Int? { r.curve.last?.groups.first { $0.group == group }?.problems }
        let set = try #require(record.evaluation).set.build(record.spec.corpus.mixture.families)
        let trainLevels = set.problems.filter { (2...3).contains($0.difficulty) }.count
        #expect(trainLevels > 0 && trainLevels < set.problems.filter { $0.difficulty <= 3 }.count, "levels below and above training exist")
        #expect(problems(all, "all") == set.problems.count && problems(all, "train_dist") == trainLevels)
        #expect(problems(train, "all") == trainLevels && problems(train, "train_dist") == trainLevels)
        #expect(train.curve.allSatisfy { $0.groups.allSatisfy { g in !g.group.hasPrefix("d") || Int(g.group.dropFirst()).map { (2...3).contains($0) } == true } })
        #expect(train.compute.evaluation < all.compute.evaluation)
        #expect(train.steps == all.steps && train.compute.training == all.compute.training)
        #expect(zip(train.windows, all.windows).allSatisfy { $0.meanReward == $1.meanReward && $0.loss == $1.loss })
    }
}
