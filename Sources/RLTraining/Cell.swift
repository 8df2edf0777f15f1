import BasePolicies
import Evaluation
import Foundation
import PolicyModel
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

    public init(config: CellConfig, base: Transformer, baseRecord: BaseRecord, pool: ProblemPool? = nil, log: ((String) -> Void)? = nil) {
        self.config = config
        self.base = base
        self.baseRecord = baseRecord
        self.pool = pool
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
        do {
            var state = try TrainingState(
                config: config, method: method, base: base, baseRecord: baseRecord, baseEval: baseEval, pool: pool)
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

/// Per-step training statistics.
struct StepStats {
    var groups = 0, deadGroups = 0, discarded = 0
    var samplingFLOPs = 0.0, deadFLOPs = 0.0
    var rewardSum = 0.0, rollouts = 0
    var entropySum = 0.0, tokens = 0, clipped = 0
    var loss = 0.0, gradNorm = 0.0
}

/// The mutable state of one cell's run.
struct TrainingState {
    let config: CellConfig
    let method: any RLMethod
    let policy: Transformer
    let base: Transformer
    let baseRecord: BaseRecord
    let baseEval: BaseEvaluation
    let behavior: Transformer
    let teacher: Transformer
    let optimizer: AdamW
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
    var poolCursor = 0
    /// Problems drawn from the pool so far (epochs = drawn / D).
    var poolDrawn = 0
    let started = monotonicSeconds()
    /// Parameter snapshots kept: one more than the oldest lag any model reads (policy
    /// lag, teacher lag); with no lag nothing reads them and none is copied.
    let snapshotsKept: Int

    init(
        config: CellConfig, method: any RLMethod, base: Transformer, baseRecord: BaseRecord, baseEval: BaseEvaluation,
        pool: ProblemPool? = nil
    ) throws {
        self.config = config
        self.method = method
        self.base = base
        self.baseRecord = baseRecord
        self.baseEval = baseEval
        policy = try Transformer(config: base.config, seed: 0)
        try policy.copyParameters(from: base)
        behavior = try Transformer(config: base.config, seed: 0)
        teacher = try Transformer(config: base.config, seed: 0)
        optimizer = AdamW(for: policy, config: AdamWConfig(weightDecay: 0, gradClip: 1))
        rng = SeededRNG(seed: config.seed).derived("cell")
        let range = config.trainRanges(corpus: baseRecord.spec.corpus)
        self.pool = pool
        curriculum = CurriculumState(curriculum: config.curriculum, mixture: config.tasks, range: range)
        trainRange = range
        // The base's own held-out set, restricted to the cell's families and to the first
        // `evalProblemsPerLevel` problems of each level; indices stay those of the base's
        // set, so the base's pass buckets apply.
        let set = baseEval.set.build(baseRecord.spec.corpus.mixture.families)
        let fams = Set(config.tasks.components.map(\.family))
        var perLevel: [String: Int] = [:]
        var indices: [Int] = [], all: [Int] = []
        for (i, p) in set.problems.enumerated() where fams.contains(p.family) {
            all.append(i)
            let k = "\(p.family)/\(p.difficulty)"
            perLevel[k, default: 0] += 1
            if perLevel[k, default: 0] <= config.evalProblemsPerLevel { indices.append(i) }
        }
        evalSet = set
        evalIndices = indices
        referenceIndices = all
        baseBuckets = Metrics.buckets(from: baseEval.outcomes)
        snapshotsKept = max(config.policyLag, (method as? OPSD)?.teacherLag ?? 0) + 1
        if snapshotsKept > 1 { history = [Array(policy.parameters)] }
    }

    // MARK: the loop

    mutating func run(log: ((String) -> Void)?) throws -> CellResult {
        let thresholds = CellRunner.evalThresholds(budget: config.budgetFLOPs, points: config.evalPoints)
        var nextEval = 0
        var curve: [EvalPoint] = []
        var windows: [StepWindow] = []
        var window: [StepStats] = []
        var step = 0
        let schedule = LRSchedule(kind: .constant, peak: config.learningRate, warmupSteps: config.warmupSteps)
        let windowSize = 5
        func flush(_ last: Int) {
            guard !window.isEmpty else { return }
            windows.append(Self.summarize(window, first: last - window.count + 1, last: last))
            window = []
        }
        var failure: String?
        while true {
            while nextEval < thresholds.count && ledger.total >= thresholds[nextEval] {
                let t0 = monotonicSeconds()
                curve.append(try evaluate(step: step))
                wallTime.evaluation += monotonicSeconds() - t0
                nextEval += 1
            }
            if ledger.total >= config.budgetFLOPs || nextEval >= thresholds.count { break }
            let stats: StepStats
            do {
                stats = try trainStep(step: step, lr: schedule.rate(at: step))
            } catch let e as Divergence {
                failure = e.reason
                break
            }
            window.append(stats)
            step += 1
            if window.count == windowSize { flush(step - 1) }
            log?(String(format: "step %d  reward %.3f  dead %.2f  %.3g/%.3g FLOPs", step,
                        stats.rewardSum / Double(max(1, stats.rollouts)), Double(stats.deadGroups) / Double(max(1, stats.groups)),
                        ledger.total, config.budgetFLOPs))
        }
        flush(step - 1)
        let total = monotonicSeconds() - started
        wallTime.other = max(0, total - wallTime.sampling - wallTime.training - wallTime.evaluation)
        return CellResult(
            config: config, baseKey: baseRecord.key, baseName: baseRecord.spec.name,
            baseParameters: baseRecord.nonEmbeddingParameters, status: failure == nil ? "done" : "failed", failure: failure,
            steps: step, curve: curve, windows: windows, compute: ledger, wallSeconds: total, wallTime: wallTime,
            blasCore: BLASCore.current,
            pool: pool.map { p in
                PoolUse(
                    key: p.request.key, size: p.problems.count, bucket: p.request.bucket, drawn: poolDrawn,
                    epochs: Double(poolDrawn) / Double(max(1, p.problems.count)), candidates: p.candidates, buildFLOPs: p.forwardFLOPs)
            })
    }

    struct Divergence: Error { var reason: String }

    static func summarize(_ w: [StepStats], first: Int, last: Int) -> StepWindow {
        let groups = w.reduce(0) { $0 + $1.groups }, dead = w.reduce(0) { $0 + $1.deadGroups }
        let sf = w.reduce(0.0) { $0 + $1.samplingFLOPs }, df = w.reduce(0.0) { $0 + $1.deadFLOPs }
        let rollouts = w.reduce(0) { $0 + $1.rollouts }, tokens = w.reduce(0) { $0 + $1.tokens }
        return StepWindow(
            firstStep: first, lastStep: last,
            meanReward: w.reduce(0.0) { $0 + $1.rewardSum } / Double(max(1, rollouts)),
            deadZoneFraction: Double(dead) / Double(max(1, groups)), deadZoneFLOPsShare: sf > 0 ? df / sf : 0,
            discardedGroups: w.reduce(0) { $0 + $1.discarded },
            entropy: w.reduce(0.0) { $0 + $1.entropySum } / Double(max(1, tokens)),
            clipFraction: Double(w.reduce(0) { $0 + $1.clipped }) / Double(max(1, tokens)),
            responseLength: Double(tokens) / Double(max(1, rollouts)),
            loss: w.reduce(0.0) { $0 + $1.loss } / Double(w.count),
            gradNorm: w.reduce(0.0) { $0 + $1.gradNorm } / Double(w.count))
    }

    // MARK: rollouts

    /// Loads the weights `lag` updates old into `model` (the oldest kept when fewer exist).
    func load(_ model: Transformer, lag: Int) {
        let snap = history[max(0, history.count - 1 - lag)]
        let p = model.parameters
        snap.withUnsafeBufferPointer { src in
            if let s = src.baseAddress, let d = p.baseAddress { d.update(from: s, count: min(src.count, p.count)) }
        }
    }

    /// Samples n rollouts for each problem with the behavior policy; charges the FLOPs.
    mutating func sampleGroups(_ problems: [Problem]) throws -> (groups: [RolloutGroup], flops: [Double]) {
        let sampler: Transformer
        if config.policyLag == 0 {
            sampler = policy
        } else {
            load(behavior, lag: config.policyLag)
            sampler = behavior
        }
        let n = config.rolloutsPerProblem
        let prompts = problems.flatMap { p in Array(repeating: p.promptTokens, count: n) }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        let t0 = monotonicSeconds()
        let r = try sampler.sample(prompts: prompts, options: opts, rng: &rng)
        wallTime.sampling += monotonicSeconds() - t0
        ledger.sampling += r.forwardFLOPs
        ledger.rollouts += prompts.count
        var groups: [RolloutGroup] = []
        var flops: [Double] = []
        for (i, p) in problems.enumerated() {
            var rollouts: [Rollout] = []
            var f = 0.0
            for c in r.completions[(i * n)..<((i + 1) * n)] {
                ledger.generatedTokens += c.tokens.count
                f += FLOPs.forwardSequence(base.config, length: p.promptTokens.count + c.tokens.count - 1)
                rollouts.append(Rollout(
                    completion: c.tokens, behaviorLogProbs: c.logProbs,
                    reward: Verifier.verify(p, completion: c.tokens).reward,
                    steps: Verifier.stepScores(p, completion: c.tokens)))
            }
            groups.append(RolloutGroup(problem: p, rollouts: rollouts))
            flops.append(f)
        }
        return (groups, flops)
    }

    // MARK: one step

    /// The next problem of the pool's current epoch (a fresh seeded shuffle per epoch).
    mutating func nextPoolProblem(_ pool: ProblemPool) -> Problem {
        if poolCursor >= poolOrder.count {
            poolOrder = Array(pool.problems.indices)
            for i in stride(from: poolOrder.count - 1, to: 0, by: -1) { poolOrder.swapAt(i, rng.below(i + 1)) }
            poolCursor = 0
        }
        defer { poolCursor += 1; poolDrawn += 1 }
        return pool.problems[poolOrder[poolCursor]]
    }

    mutating func trainStep(step: Int, lr: Float) throws -> StepStats {
        var stats = StepStats()
        let progress = ledger.total / config.budgetFLOPs
        var kept: [RolloutGroup] = []
        let maxRounds = method.dynamicSampling ? 8 : 1
        for _ in 0..<maxRounds where kept.count < config.problemsPerBatch {
            let need = config.problemsPerBatch - kept.count
            let problems = (0..<need).map { _ -> Problem in
                if let pool { return nextPoolProblem(pool) }
                let (f, d) = curriculum.pick(progress: progress, rng: &rng)
                return TaskFamilies.sample(f, difficulty: d, split: .train, rng: &rng)
            }
            let (groups, flops) = try sampleGroups(problems)
            for (g, f) in zip(groups, flops) {
                curriculum.record(g)
                stats.groups += 1
                stats.samplingFLOPs += f
                stats.rollouts += g.rollouts.count
                stats.rewardSum += g.rewards.reduce(0, +)
                if g.hasZeroVariance {
                    stats.deadGroups += 1
                    stats.deadFLOPs += f
                    if method.dynamicSampling {
                        stats.discarded += 1
                        continue
                    }
                }
                kept.append(g)
            }
        }
        if !kept.isEmpty {
            let t0 = monotonicSeconds()
            try update(kept, lr: lr, stats: &stats)
            wallTime.training += monotonicSeconds() - t0
        }
        if snapshotsKept > 1 {
            history.append(Array(policy.parameters))
            if history.count > snapshotsKept { history.removeFirst(history.count - snapshotsKept) }
        }
        return stats
    }

    /// One policy-gradient update on the kept groups.
    mutating func update(_ groups: [RolloutGroup], lr: Float, stats: inout StepStats) throws {
        let loss = try lossAndGradient(groups, stats: &stats)
        let s = optimizer.step(policy, learningRate: lr)
        guard s.gradNorm.isFinite else { throw Divergence(reason: "non-finite gradient norm") }
        stats.loss = loss
        stats.gradNorm = s.gradNorm
    }

    /// The method's surrogate loss on the kept groups; leaves its gradient in the policy's
    /// parameter gradients. Charges the training, teacher and reference passes.
    mutating func lossAndGradient(_ groups: [RolloutGroup], stats: inout StepStats) throws -> Double {
        let obj = method.objective
        let V = policy.config.vocab
        let rollouts = groups.flatMap { g in g.rollouts.map { (g.problem, $0) } }
        let advantages = groups.flatMap { method.advantages($0) }
        let batch = SequenceBatch(rollouts.map { ($0.0.promptTokens, $0.1.completion) })
        let rows = batch.rows, T = batch.length
        let totalTokens = rollouts.reduce(0) { $0 + $1.1.completion.count }
        func agg(_ completionCount: Int) -> Double {
            switch obj.aggregation {
            case .tokenMean: 1 / Double(max(1, totalTokens))
            case .constant: 1 / Double(rows * maxSolutionTokens)
            case .sequenceSum: 1 / Double(rows)
            }
        }
        // Teacher distributions (self-distillation): forward on privileged prompt + completion.
        var teacherLogProbs: [[Float]] = []
        if method.needsTeacher && obj.distillCoef > 0 {
            let lag = (method as? OPSD)?.teacherLag ?? 0
            let tModel: Transformer
            if lag == 0 { tModel = policy } else { load(teacher, lag: lag); tModel = teacher }
            let tb = SequenceBatch(rollouts.map { ($0.0.privilegedPromptTokens, $0.1.completion) })
            try tModel.forward(tokens: tb.tokens, batch: tb.rows, length: tb.length)
            ledger.teacher += Double(tb.rows) * FLOPs.forwardSequence(policy.config, length: tb.length)
            let z = tModel.logits, lse = tModel.logSumExp
            for (i, r) in rollouts.enumerated() {
                let start = r.0.privilegedPromptTokens.count - 1
                var lp = [Float](repeating: 0, count: r.1.completion.count * V)
                for j in 0..<r.1.completion.count {
                    let n = i * tb.length + start + j
                    for v in 0..<V { lp[j * V + v] = z[n * V + v] - lse[n] }
                }
                teacherLogProbs.append(lp)
            }
        }
        // Reference (base) log-probs for the KL penalty.
        var refLogProbs: [Float] = []
        if obj.klCoef > 0 {
            try base.forward(tokens: batch.tokens, batch: rows, length: T)
            ledger.reference += Double(rows) * FLOPs.forwardSequence(base.config, length: T)
            refLogProbs = try base.logProbs(targets: batch.targets)
        }
        // Student forward.
        try policy.forward(tokens: batch.tokens, batch: rows, length: T)
        ledger.training += Double(rows) * FLOPs.trainSequence(policy.config, length: T)
        let newLogProbs = try policy.logProbs(targets: batch.targets)
        var weights = [Float](repeating: 0, count: rows * T)
        var loss = 0.0
        for (i, r) in rollouts.enumerated() {
            let start = r.0.promptTokens.count - 1
            let a = agg(r.1.completion.count)
            for j in 0..<r.1.completion.count {
                let n = i * T + start + j
                let A = advantages[i][j]
                let logRatio = Double(newLogProbs[n] - r.1.behaviorLogProbs[j])
                let rho = exp(logRatio)
                let pg = obj.policyGradient(ratio: rho, advantage: A)
                var w = a * pg.weight
                loss += a * pg.loss
                if pg.clipped { stats.clipped += 1 }
                if obj.klCoef > 0 {
                    let lr = Double(refLogProbs[n] - newLogProbs[n])
                    loss += obj.klCoef * a * (exp(lr) - 1 - lr)
                    w -= obj.klCoef * a * (1 - exp(lr))
                }
                weights[n] = Float(w)
            }
        }
        guard loss.isFinite else { throw Divergence(reason: "non-finite loss at update (\(loss))") }
        try policy.setWeightedNLLGradient(targets: batch.targets, weights: weights)
        // Per-token distributions: entropy for the diagnostics, and the dense logit terms
        // (entropy bonus, distillation toward the teacher) where configured.
        let z = policy.logits, lse = policy.logSumExp, g = policy.logitGradient, probs = policy.probabilities
        var p = [Double](repeating: 0, count: V), lp = [Double](repeating: 0, count: V)
        for (i, r) in rollouts.enumerated() {
            let start = r.0.promptTokens.count - 1
            let a = agg(r.1.completion.count)
            for j in 0..<r.1.completion.count {
                let n = i * T + start + j
                var h = 0.0
                for v in 0..<V {
                    lp[v] = Double(z[n * V + v] - lse[n])
                    p[v] = Double(probs[n * V + v])
                    h -= p[v] * lp[v]
                }
                stats.entropySum += h
                stats.tokens += 1
                if obj.entropyCoef > 0 {
                    // ℓ = −η·a·H; dℓ/dz_v = η·a·p_v (log p_v + H)
                    for v in 0..<V { g[n * V + v] += Float(obj.entropyCoef * a * p[v] * (lp[v] + h)) }
                    loss -= obj.entropyCoef * a * h
                }
                if !teacherLogProbs.isEmpty {
                    let q = teacherLogProbs[i]
                    var kl = 0.0
                    for v in 0..<V { kl += p[v] * (lp[v] - Double(q[j * V + v])) }
                    // ℓ = α·a·KL(p ‖ q); dℓ/dz_v = α·a·p_v (log p_v − log q_v − KL)
                    for v in 0..<V {
                        g[n * V + v] += Float(obj.distillCoef * a * p[v] * (lp[v] - Double(q[j * V + v]) - kl))
                    }
                    loss += obj.distillCoef * a * kl
                }
            }
        }
        guard loss.isFinite, abs(loss) < 1e6 else { throw Divergence(reason: "loss diverged (\(loss))") }
        policy.zeroGradients()
        policy.backward()
        return loss
    }

    // MARK: evaluation

    mutating func evaluate(step: Int) throws -> EvalPoint {
        let opts = EvalOptions(samples: config.evalSamples, greedy: true)
        let (outcomes, cost) = try Evaluator.run(policy, on: evalSet, indices: evalIndices, options: opts, seed: config.seed &+ 7)
        ledger.evaluation += cost.forwardFLOPs
        let ref = try Evaluator.referenceLogProbs(policy, problems: referenceIndices.map { evalSet.problems[$0] })
        ledger.evaluation += ref.forwardFLOPs
        let groups = Metrics.summarize(
            outcomes, set: evalSet, ks: [1, 4], buckets: baseBuckets,
            reference: Dictionary(uniqueKeysWithValues: zip(referenceIndices, ref.logProbs)), trainRange: trainRange,
            trainBucket: pool == nil ? nil : config.trainBucket)
        var unsolved = 0, expanded = 0
        for o in outcomes where baseBuckets[o.index] == .unsolved {
            unsolved += 1
            if o.successes > 0 { expanded += 1 }
        }
        let (kl, h) = try klAndEntropy()
        return EvalPoint(
            step: step, compute: ledger, wallSeconds: monotonicSeconds() - started, groups: groups,
            supportExpansion: expanded, baseUnsolved: unsolved, klToBase: kl, entropy: h)
    }

    /// Exact per-token KL(π ‖ base) and entropy over one sample of each eval problem.
    mutating func klAndEntropy() throws -> (Double, Double) {
        var erng = SeededRNG(seed: config.seed).derived("kl")
        let problems = evalIndices.prefix(64).map { evalSet.problems[$0] }
        guard !problems.isEmpty else { return (0, 0) }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        let r = try policy.sample(prompts: problems.map(\.promptTokens), options: opts, rng: &erng)
        let batch = SequenceBatch(zip(problems, r.completions).map { ($0.promptTokens, $1.tokens) })
        let V = policy.config.vocab
        try policy.forward(tokens: batch.tokens, batch: batch.rows, length: batch.length)
        let pz = Array(policy.logits), plse = Array(policy.logSumExp), pp = Array(policy.probabilities)
        try base.forward(tokens: batch.tokens, batch: batch.rows, length: batch.length)
        let bz = base.logits, blse = base.logSumExp
        ledger.evaluation += r.forwardFLOPs + 2 * Double(batch.rows) * FLOPs.forwardSequence(policy.config, length: batch.length)
        var kl = 0.0, h = 0.0, count = 0
        for n in 0..<(batch.rows * batch.length) where batch.targets[n] >= 0 {
            for v in 0..<V {
                let p = Double(pp[n * V + v])
                let lp = Double(pz[n * V + v] - plse[n]), lq = Double(bz[n * V + v] - blse[n])
                kl += p * (lp - lq)
                h -= p * lp
            }
            count += 1
        }
        return (kl / Double(max(1, count)), h / Double(max(1, count)))
    }
}
