import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import RLCommon
import ResultSchema
import Rewards
import Tasks

extension TrainingState {
    // MARK: rollouts

    /// Loads the weights `lag` updates old into `model` (the oldest kept when fewer exist).
    func load(_ model: Transformer, lag: Int) {
        let snap = history[max(0, history.count - 1 - lag)]
        let p = model.parameters
        snap.withUnsafeBufferPointer { src in
            if let s = src.baseAddress, let d = p.baseAddress { d.update(from: s, count: min(src.count, p.count)) }
        }
    }

    /// The model holding `source`'s weights now; lagged weights are loaded into `scratch`.
    func model(_ source: PolicySource, scratch: Transformer?) -> Transformer {
        switch source {
        case .policy: return policy
        case .frozenBase: return base
        case .ema:
            guard let ema else { preconditionFailure("EMA weights read but none kept (TrainingState.init allocates them)") }
            return ema
        case .lagged(let k):
            guard let scratch else { preconditionFailure("lagged weights read without a scratch model") }
            load(scratch, lag: k)
            return scratch
        }
    }

    /// Samples n rollouts for each problem with the behavior policy; charges the FLOPs.
    mutating func sampleGroups(_ problems: [Problem]) throws -> (groups: [RolloutGroup], flops: [Double]) {
        let sampler: Transformer
        if config.policyLag > 0, let behavior {
            load(behavior, lag: config.policyLag)
            sampler = behavior
        } else {
            sampler = policy
        }
        let n = config.rolloutsPerProblem
        if config.episodeSpec.turns > 1 { return try sampleEpisodes(problems, with: sampler) }
        let prompts = problems.flatMap { p in Array(repeating: p.promptTokens, count: n) }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        let t0 = monotonicSeconds()
        let limits = problems.flatMap { p in Array(repeating: p.completionLimit, count: n) }
        let r = try sampler.sample(prompts: prompts, options: opts, limits: limits, rng: &rng)
        wallTime.sampling += monotonicSeconds() - t0
        ledger.sampling += r.forwardFLOPs
        ledger.rollouts += prompts.count
        // The training reward of every rollout; a reward model's forwards are charged.
        let scored = try reward.score(problems.enumerated().flatMap { i, p in
            r.completions[(i * n)..<((i + 1) * n)].map { (p, $0.tokens) }
        })
        ledger.rewardModel += scored.flops
        var groups: [RolloutGroup] = []
        var flops: [Double] = []
        for (i, p) in problems.enumerated() {
            var rollouts: [Rollout] = []
            var f = 0.0
            for (k, c) in r.completions[(i * n)..<((i + 1) * n)].enumerated() {
                ledger.generatedTokens += c.tokens.count
                f += FLOPs.forwardSequence(base.config, length: p.promptTokens.count + c.tokens.count - 1)
                rollouts.append(Rollout(
                    completion: c.tokens, behaviorLogProbs: c.logProbs, reward: scored.rewards[i * n + k],
                    gold: RuleReward.gold(p, c.tokens), steps: Verifier.stepScores(p, completion: c.tokens)))
            }
            groups.append(RolloutGroup(problem: p, rollouts: rollouts))
            flops.append(f)
        }
        return (groups, flops)
    }

    /// Samples n multi-turn episodes for each problem (`EpisodeSampler`): the exact verifier
    /// accepts or rejects each attempt and the feedback follows a rejected one, in one
    /// context. Every token of every turn, feedback included, is charged as sampling; an
    /// episode's reward is 1 when some attempt was accepted (proxy rewards are refused for
    /// episodes).
    mutating func sampleEpisodes(_ problems: [Problem], with sampler: Transformer) throws -> (groups: [RolloutGroup], flops: [Double]) {
        let n = config.rolloutsPerProblem
        let rows = problems.flatMap { p in Array(repeating: p, count: n) }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        let t0 = monotonicSeconds()
        let (episodes, r) = try EpisodeSampler.sample(sampler, problems: rows, layout: config.episodeSpec.layout, options: opts, rng: &rng)
        wallTime.sampling += monotonicSeconds() - t0
        ledger.sampling += r.forwardFLOPs
        ledger.rollouts += rows.count
        var groups: [RolloutGroup] = []
        var flops: [Double] = []
        for (i, p) in problems.enumerated() {
            var rollouts: [Rollout] = []
            var f = 0.0
            for e in episodes[(i * n)..<((i + 1) * n)] {
                let tokens = e.completion.tokens
                ledger.generatedTokens += e.turns.reduce(0) { $0 + $1.end - $1.start }
                f += FLOPs.forwardSequence(base.config, length: p.promptTokens.count + tokens.count - 1)
                let last = e.turns[e.turns.count - 1]
                let steps = Verifier.stepScores(p, completion: Array(e.attempt(e.turns.count - 1))).map { s in
                    StepScore(index: s.index, start: s.start + last.start, end: s.end + last.start, score: s.score, isAnswer: s.isAnswer)
                }
                let reward: Double = e.solvedAt == nil ? 0 : 1
                rollouts.append(Rollout(
                    completion: tokens, behaviorLogProbs: e.completion.logProbs, reward: reward, gold: reward, steps: steps, turns: e.turns))
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

    mutating func trainStep(step: Int, lr: Float) throws -> TrainStepStats {
        var stats = TrainStepStats()
        let progress = ledger.total / config.budgetFLOPs
        var kept: [RolloutGroup] = []
        let rounds = if case .dynamic(let r) = method.sampling { r } else { 1 }
        for _ in 0..<rounds where kept.count < config.problemsPerBatch {
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
                stats.sampledTokens += g.rollouts.reduce(0) { $0 + $1.completion.count }
                stats.rewardSum += g.rewards.reduce(0, +)
                for r in g.rollouts {
                    stats.goldSum += r.gold
                    if RuleReward.isHack(reward: r.reward, gold: r.gold) { stats.hacked += 1 }
                }
                if g.hasZeroVariance {
                    stats.deadGroups += 1
                    stats.deadFLOPs += f
                }
                if !method.carriesGradient(g, method.advantages(g), context: policy.config.context) {
                    stats.noGradientGroups += 1
                    stats.noGradientSamplingFLOPs += f
                    if case .dynamic = method.sampling {
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

    /// One update on the kept groups; then the EMA weights follow (θ̄ ← θ̄ + r·(θ − θ̄)), when
    /// a forward reads them.
    mutating func update(_ groups: [RolloutGroup], lr: Float, stats: inout TrainStepStats) throws {
        let loss = try lossAndGradient(groups, stats: &stats)
        let s = optimizer.step(policy, learningRate: lr)
        guard s.gradNorm.isFinite else { throw TrainingDiverged(reason: "non-finite gradient norm") }
        stats.loss = loss
        stats.gradNorm = s.gradNorm
        if let ema, let rate = emaRate {
            let e = ema.parameters, p = policy.parameters, r = Float(rate)
            for i in 0..<min(e.count, p.count) { e[i] += r * (p[i] - e[i]) }
        }
    }

    // MARK: the teacher

    /// Runs the teacher's forward on the rollouts it distils (`Teacher.prompt(for:of:context:)`:
    /// its prompt, then the student's completion), charges it, and appends the teacher's
    /// log-probabilities and probabilities of every distilled token (a confidence mask
    /// drops tokens whose largest teacher probability is below τ) to the arrays, setting
    /// `at[token]` to the token's row there. Rollouts it does not distil get no teacher forward.
    mutating func teacherForward(
        _ teacher: Teacher, groups: [RolloutGroup], into logProbs: inout [Float], _ probs: inout [Float], at: inout [Int]
    ) throws {
        let V = policy.config.vocab, context = policy.config.context
        var prompts: [[Int32]] = [], completions: [[Int32]] = [], firstTokens: [Int] = []
        var token = 0
        for g in groups {
            for (k, r) in g.rollouts.enumerated() {
                if let p = teacher.prompt(for: k, of: g, context: context) {
                    prompts.append(p)
                    completions.append(r.completion)
                    firstTokens.append(token)
                }
                token += r.completion.count
            }
        }
        guard !prompts.isEmpty else { return }
        let tModel = model(teacher.weights, scratch: teacherScratch)
        let tb = SequenceBatch(Array(zip(prompts, completions)))
        try tb.forward(tModel)
        ledger.teacher += tb.forwardFLOPs(tModel.config)
        let z = tModel.logits, lse = tModel.logSumExp, pr = tModel.probabilities
        for row in prompts.indices {
            let start = prompts[row].count - 1
            for j in 0..<completions[row].count {
                let position = tb.position(row, start + j), n = position * V
                if case .confident(let tau) = teacher.tokens {
                    var top: Float = 0
                    for v in 0..<V where pr[n + v] > top { top = pr[n + v] }
                    if Double(top) < tau { continue }
                }
                at[firstTokens[row] + j] = logProbs.count / V
                for v in 0..<V {
                    logProbs.append(z[n + v] - lse[position])
                    probs.append(pr[n + v])
                }
            }
        }
    }

    // MARK: the loss

    /// The method's loss on the kept groups; leaves its gradient in the policy's parameter
    /// gradients. Runs the forwards the terms read (teacher, reference, then the student),
    /// charging each; applies the sampled-token terms (their NLL weights set the logit
    /// gradient), then the distribution terms (added row by row); then the backward.
    mutating func lossAndGradient(_ groups: [RolloutGroup], stats: inout TrainStepStats) throws -> Double {
        let u = UpdateBatch(groups, method: method)
        var teacher = TeacherRows(tokens: u.totalTokens)
        if method.reads.contains(.teacher), let t = method.teacher {
            try teacherForward(t, groups: groups, into: &teacher.logProbs, &teacher.probs, at: &teacher.at)
        }
        let reference = try referenceLogProbs(u)
        let logProbs = try studentForward(u, groups: groups, stats: &stats)
        var acc = TermAccumulator()
        try applySampledTokenTerms(u, logProbs: logProbs, reference: reference, teacher: teacher, &acc)
        applyDistributionTerms(u, logProbs: logProbs, teacher: teacher, &acc, stats: &stats)
        stats.clipped += acc.clipped
        stats.truncated += acc.truncated
        stats.distilled += acc.distilled
        stats.divergenceSum += acc.divergenceSum
        let loss = acc.loss
        guard loss.isFinite, abs(loss) < 1e6 else { throw TrainingDiverged(reason: "loss diverged (\(loss))") }
        policy.zeroGradients()
        policy.backward()
        return loss
    }

    /// Reference log-probabilities of the sampled tokens (empty when no term reads them);
    /// the reference forward is charged.
    mutating func referenceLogProbs(_ u: UpdateBatch) throws -> [Float] {
        guard method.reads.contains(.reference), let reference = method.reference else { return [] }
        let rModel = model(reference, scratch: referenceScratch)
        try u.batch.forward(rModel)
        ledger.reference += u.batch.forwardFLOPs(rModel.config)
        return try rModel.logProbs(targets: u.batch.targets)
    }

    /// The student's forward and its log-probabilities of the sampled tokens. Every row is
    /// trained, so every row is charged (its real tokens: the batch is packed); rows of
    /// groups that carry no gradient are recorded as such.
    mutating func studentForward(_ u: UpdateBatch, groups: [RolloutGroup], stats: inout TrainStepStats) throws -> [Float] {
        try u.batch.forward(policy)
        let trainFLOPs = u.batch.trainFLOPs(policy.config)
        ledger.training += trainFLOPs
        stats.trainingFLOPs += trainFLOPs
        var firstRow = 0
        for (g, a) in zip(groups, u.perGroup) {
            let rowsOfGroup = firstRow..<(firstRow + g.rollouts.count)
            firstRow += g.rollouts.count
            guard !method.carriesGradient(g, a, context: policy.config.context) else { continue }
            stats.noGradientTrainingFLOPs += rowsOfGroup.reduce(0) { $0 + FLOPs.trainSequence(policy.config, length: u.batch.lengths[$1]) }
        }
        return try policy.logProbs(targets: u.batch.targets)
    }

    /// The sampled-token terms: one NLL weight per trained token, which sets the logit
    /// gradient.
    func applySampledTokenTerms(
        _ u: UpdateBatch, logProbs: [Float], reference: [Float], teacher: TeacherRows, _ acc: inout TermAccumulator
    ) throws {
        let V = policy.config.vocab, terms = method.terms.filter { $0.kind == .sampledToken }
        var weights = [Float](repeating: 0, count: u.batch.tokens.count)
        teacher.logProbs.withUnsafeBufferPointer { tlp in
            for (token, (i, j, n)) in u.tokens.enumerated() where u.trains(i, j) {
                acc.nllWeight = 0
                let view = TokenView(
                    vocab: V, target: Int(u.batch.targets[n]), logProb: logProbs[n], behaviorLogProb: u.rollouts[i].1.behaviorLogProbs[j],
                    referenceLogProb: reference.isEmpty ? .nan : reference[n], advantage: u.advantages[i][j],
                    teacherLogProbs: UnsafeBufferPointer(rebasing: tlp[teacher.row(token, vocab: V)]))
                for term in terms { term.apply(view, scale: u.scale, &acc) }
                weights[n] = Float(acc.nllWeight)
            }
        }
        guard acc.loss.isFinite else { throw TrainingDiverged(reason: "non-finite loss at update (\(acc.loss))") }
        try policy.setWeightedNLLGradient(targets: u.batch.targets, weights: weights)
    }

    /// Per-token distributions: the entropy for the diagnostics, and the distribution terms
    /// (each adds its gradient to its token's logit-gradient row).
    func applyDistributionTerms(
        _ u: UpdateBatch, logProbs: [Float], teacher: TeacherRows, _ acc: inout TermAccumulator, stats: inout TrainStepStats
    ) {
        let V = policy.config.vocab, terms = method.terms.filter { $0.kind == .distribution }
        let z = policy.logits, lse = policy.logSumExp, g = policy.logitGradient, probs = policy.probabilities
        let p = UnsafeMutableBufferPointer<Double>.allocate(capacity: V)
        let lp = UnsafeMutableBufferPointer<Double>.allocate(capacity: V)
        defer { p.deallocate(); lp.deallocate() }
        teacher.logProbs.withUnsafeBufferPointer { tlp in
            teacher.probs.withUnsafeBufferPointer { tp in
                for (token, (i, j, n)) in u.tokens.enumerated() where u.trains(i, j) {
                    var h = 0.0
                    for v in 0..<V {
                        lp[v] = Double(z[n * V + v] - lse[n])
                        p[v] = Double(probs[n * V + v])
                        h -= p[v] * lp[v]
                    }
                    stats.entropySum += h
                    stats.tokens += 1
                    guard !terms.isEmpty else { continue }
                    let row = teacher.row(token, vocab: V)
                    let view = TokenView(
                        vocab: V, target: Int(u.batch.targets[n]), logProb: logProbs[n],
                        behaviorLogProb: u.rollouts[i].1.behaviorLogProbs[j], advantage: u.advantages[i][j],
                        logProbs: UnsafeBufferPointer(lp), probs: UnsafeBufferPointer(p), entropy: h,
                        teacherLogProbs: UnsafeBufferPointer(rebasing: tlp[row]),
                        teacherProbs: UnsafeBufferPointer(rebasing: tp[row]))
                    acc.row = UnsafeMutableBufferPointer(rebasing: g[(n * V)..<((n + 1) * V)])
                    for term in terms { term.apply(view, scale: u.scale, &acc) }
                }
            }
        }
    }
}

/// The kept groups of one update laid out for the loss: the rollouts in batch order, their
/// advantages, the packed batch, every completion token's place, and the aggregation scale.
struct UpdateBatch {
    let rollouts: [(Problem, Rollout)]
    let perGroup: [[[Double]]]
    let advantages: [[Double]]
    let batch: SequenceBatch
    /// Every completion token once, in batch order (its flat index is the teacher arrays'
    /// token index): its rollout, its place in the completion and its position in the batch.
    let tokens: [(i: Int, j: Int, n: Int)]
    /// Tokens the policy wrote: every completion token, except an episode's feedback (which
    /// the policy reads but gets no weight, no term and no statistics).
    let written: [[Bool]?]
    /// The method's aggregation: 1 / trained tokens, 1 / (rows · max tokens) or 1 / rows.
    let scale: Double

    var totalTokens: Int { tokens.count }

    func trains(_ i: Int, _ j: Int) -> Bool { written[i]?[j] ?? true }

    init(_ groups: [RolloutGroup], method: RLMethod) {
        rollouts = groups.flatMap { g in g.rollouts.map { (g.problem, $0) } }
        perGroup = groups.map { method.advantages($0) }
        advantages = perGroup.flatMap { $0 }
        let batch = SequenceBatch(rollouts.map { ($0.0.promptTokens, $0.1.completion) })
        self.batch = batch
        tokens = rollouts.enumerated().flatMap { i, r in
            (0..<r.1.completion.count).map { j in (i, j, batch.position(i, r.0.promptTokens.count - 1 + j)) }
        }
        written = rollouts.map(\.1.policyTokens)
        let trained = zip(rollouts, written).reduce(0) { acc, x in
            acc + (x.1.map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? x.0.1.completion.count)
        }
        scale = switch method.aggregation {
        case .tokenMean: 1 / Double(max(1, trained))
        case .constant: 1 / Double(batch.rows * maxSolutionTokens)
        case .sequenceSum: 1 / Double(batch.rows)
        }
    }
}

/// Teacher distributions at every distilled completion token: `at[token]` (flat over the
/// batch, rollout after rollout) is the token's row in `logProbs`/`probs`, or −1 when it is
/// not distilled.
struct TeacherRows {
    var logProbs: [Float] = [], probs: [Float] = []
    var at: [Int]

    init(tokens: Int) { at = Array(repeating: -1, count: tokens) }

    /// The token's slice of the teacher arrays (empty when it is not distilled).
    func row(_ token: Int, vocab V: Int) -> Range<Int> { at[token] < 0 ? 0..<0 : (at[token] * V)..<((at[token] + 1) * V) }
}
