import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import Rewards
import RLCommon
import Tasks

extension TrainingState {
    // MARK: evaluation (measured, recorded in the ledger's `evaluation`, never charged)

    mutating func evaluate(step: Int) throws -> EvalPoint {
        let opts = EvalOptions(samples: config.evalSamples, greedy: true)
        var samples: [(index: Int, completion: [Int32])] = []
        let (outcomes, cost) = try Evaluator.run(
            policy, on: evalSet, indices: evalIndices, options: opts, seed: config.seed &+ 7, sampled: { samples.append(($0, $1)) })
        ledger.evaluation += cost.forwardFLOPs
        let rewardDiagnostics = config.measuresRewardDiagnostics ? try self.rewardDiagnostics(samples, step: step) : nil
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
        let (kl, h, divergence) = try klAndEntropy()
        var teacherDiagnostics: TeacherDiagnostics?
        if let teacher = method.teacher, let divergence {
            teacherDiagnostics = TeacherDiagnostics(
                divergence: divergence, uplift: try teacherUplift(teacher),
                distilledFraction: Double(sinceEval.distilled) / Double(max(1, sinceEval.tokens)),
                trainingDivergence: sinceEval.distilled > 0 ? sinceEval.divergenceSum / Double(sinceEval.distilled) : nil)
        }
        sinceEval = (0, 0, 0)
        let multiTurn = try multiTurnEvaluation()
        var point = EvalPoint(
            step: step, compute: ledger, wallSeconds: monotonicSeconds() - started, groups: groups,
            supportExpansion: expanded, baseUnsolved: unsolved, klToBase: kl, entropy: h, teacher: teacherDiagnostics,
            reward: rewardDiagnostics, multiTurn: multiTurn)
        let successes = Dictionary(outcomes.map { ($0.index, $0.successes) }, uniquingKeysWith: { a, _ in a })
        point.trainSuccesses = trainDistributionIndices.compactMap { successes[$0] }
        return point
    }

    /// The held-out problems of the cell's training distribution (`train_dist`): its
    /// families at its training difficulties, and for a bucketed pool that bucket's only.
    var trainDistributionIndices: [Int] {
        let bucket = pool == nil ? nil : config.trainBucket
        return evalIndices.filter { i in
            let p = evalSet.problems[i]
            return (trainRange[p.family]?.contains(p.difficulty) ?? false) && (bucket == nil || baseBuckets[i] == bucket)
        }
    }

    /// Multi-turn episodes of `eval_turns` attempts (the cell's feedback), `eval_samples` per
    /// held-out problem of the training distribution, at temperature 1; the same seed at
    /// every point (common random numbers across points). Nil for `eval_turns` 1.
    mutating func multiTurnEvaluation() throws -> MultiTurnMetrics? {
        let T = config.evaluationTurns
        let indices = trainDistributionIndices
        guard T > 1, !indices.isEmpty else { return nil }
        let layout = EpisodeLayout(turns: T, feedback: config.episodeSpec.feedback)
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        var erng = SeededRNG(seed: config.seed).derived("multi-turn-eval")
        let rows = indices.flatMap { Array(repeating: $0, count: config.evalSamples) }
        var solved = [[[Double]]](repeating: [], count: T)  // [t][problem slot][episode]
        for t in 0..<T { solved[t] = Array(repeating: [], count: indices.count) }
        var used = [[Double]](repeating: [], count: indices.count), repeats = used
        var tokens = 0, flops = 0.0
        let slot = Dictionary(uniqueKeysWithValues: indices.enumerated().map { ($1, $0) })
        for start in stride(from: 0, to: rows.count, by: 256) {
            let chunk = Array(rows[start..<min(rows.count, start + 256)])
            let (episodes, r) = try EpisodeSampler.sample(
                policy, problems: chunk.map { evalSet.problems[$0] }, layout: layout, options: opts, rng: &erng)
            flops += r.forwardFLOPs
            for (i, e) in zip(chunk, episodes) {
                let k = slot[i] ?? 0
                for t in 0..<T { solved[t][k].append((e.solvedAt ?? T + 1) <= t + 1 ? 1 : 0) }
                used[k].append(Double(e.turns.count))
                if let rep = e.repeatsFirstAttempt { repeats[k].append(rep ? 1 : 0) }
                tokens += e.completion.tokens.count
            }
        }
        ledger.evaluation += flops
        let within = solved.map { RewardDiagnostics.clustered($0) }
        let turns = RewardDiagnostics.clustered(used)
        let second = repeats.reduce(0) { $0 + $1.count }
        let rep = Self.ratio(repeats)
        return MultiTurnMetrics(
            turns: T, problems: indices.count, episodes: rows.count, solvedWithin: within.map(\.mean), solvedWithinSE: within.map(\.se),
            meanTurns: turns.mean, meanTurnsSE: turns.se, secondAttempts: second, repeatShare: rep?.mean,
            repeatShareSE: rep?.se, tokensPerEpisode: Double(tokens) / Double(rows.count),
            flopsPerEpisode: flops / Double(rows.count))
    }

    /// The share of all values that are 1 (Σ y / Σ n over problems, every value weighted
    /// alike, not every problem), with the cluster-robust SE of a ratio estimator,
    /// SE² = m/(m − 1) · Σ_i (y_i − R n_i)² / (Σ n)², over the m problems with values; nil
    /// without any value (the SE is nil with fewer than two such problems).
    static func ratio(_ values: [[Double]]) -> (mean: Double, se: Double?)? {
        let used = values.filter { !$0.isEmpty }
        let n = Double(used.reduce(0) { $0 + $1.count })
        guard n > 0 else { return nil }
        let r = used.reduce(0) { $0 + $1.reduce(0, +) } / n
        guard used.count > 1 else { return (r, nil) }
        let m = Double(used.count)
        let ss = used.reduce(0) { acc, v in let d = v.reduce(0, +) - r * Double(v.count); return acc + d * d }
        return (r, (m / (m - 1) * ss).squareRoot() / n)
    }

    // MARK: support expansion

    /// The held-out problems of the support measurement: the cell's evaluation problems in
    /// the base's `unsolved` and `hard` buckets.
    var supportIndices: [Int] { evalIndices.filter { baseBuckets[$0] == .unsolved || baseBuckets[$0] == .hard } }

    /// Successes out of `support_samples` of `model` on each support problem, from a seed of
    /// the measurement's own (`who` tells the base's apart from the policy's), independent of
    /// the base evaluation that defined the buckets; its FLOPs are evaluation.
    mutating func supportCounts(_ model: Transformer, who: String) throws -> [Int: Int] {
        guard let K = config.supportSamples else { return [:] }
        var h = StableHash()
        h.combine("support/\(who)")
        h.combine(config.seed)
        let (outcomes, cost) = try Evaluator.run(
            model, on: evalSet, indices: supportIndices, options: EvalOptions(samples: K, greedy: false), seed: h.value)
        ledger.evaluation += cost.forwardFLOPs
        supportFLOPs += cost.forwardFLOPs
        return Dictionary(uniqueKeysWithValues: outcomes.map { ($0.index, $0.successes) })
    }

    /// The support measurement from the base's counts (step 0) and the policy's now.
    mutating func supportMeasurement(step: Int, base: [Int: Int]) throws -> SupportMeasurement? {
        guard let K = config.supportSamples else { return nil }
        let policyCounts = try supportCounts(policy, who: "policy")
        let bucketRuns = Dictionary(uniqueKeysWithValues: baseEval.outcomes.map { ($0.index, $0) })
        var priorCounts: [String: [(c: Int, n: Int)]] = [:]
        for i in referenceIndices {
            guard let o = bucketRuns[i] else { continue }
            let p = evalSet.problems[i]
            priorCounts[SupportStatistics.groupKey(p.family, p.difficulty), default: []].append((o.successes, o.samples))
        }
        let trained = Set(trainDistributionIndices)
        let problems = supportIndices.compactMap { i -> SupportProblem? in
            guard let o = bucketRuns[i], let bucket = baseBuckets[i] else { return nil }
            let p = evalSet.problems[i]
            return SupportProblem(
                index: i, family: p.family, difficulty: p.difficulty, bucket: bucket, trainDistribution: trained.contains(i), bucketSuccesses: o.successes,
                bucketSamples: o.samples, base: base[i] ?? 0, policy: policyCounts[i] ?? 0)
        }
        return SupportStatistics.summarize(problems, samples: K, step: step, priorCounts: priorCounts, flops: supportFLOPs)
    }

    /// Proxy and gold reward, hack rate and sequence KL to the base on the eval samples of
    /// the cell's training distribution (its families at its training difficulties: the
    /// `train_dist` problems), clustered by problem. The proxy's coins come from a generator of the evaluation's own
    /// (the training reward's stream is untouched); reward-model and KL forwards are
    /// evaluation FLOPs.
    mutating func rewardDiagnostics(_ all: [(index: Int, completion: [Int32])], step: Int) throws -> RewardDiagnostics? {
        // The cell's own training distribution (`train_dist`): its families at its training
        // difficulties, and for a bucketed pool only that bucket's problems.
        let trainDistribution = Set(trainDistributionIndices)  // the samples are of the eval problems
        let samples = all.filter { trainDistribution.contains($0.index) }
        guard !samples.isEmpty else { return nil }
        let problems = samples.map { evalSet.problems[$0.index] }
        var scorer = TrainingReward(
            source: reward.source, model: reward.model, rng: SeededRNG(seed: config.seed).derived("eval-reward-\(step)"))
        let (proxy, rmFLOPs) = try scorer.score(Array(zip(problems, samples.map(\.completion))))
        let (kl, klFLOPs) = try SequenceKL.perSample(
            policy: policy, reference: base, Array(zip(problems.map(\.promptTokens), samples.map(\.completion))))
        ledger.evaluation += rmFLOPs + klFLOPs
        var slot: [Int: Int] = [:]  // problem index → its place in the columns
        var columns: [[[Double]]] = [[], [], [], []]  // proxy, gold, hacked, KL; per problem
        for (i, s) in samples.enumerated() {
            if slot[s.index] == nil {
                slot[s.index] = columns[0].count
                for c in columns.indices { columns[c].append([]) }
            }
            let k = slot[s.index] ?? 0
            let gold = RuleReward.gold(problems[i], s.completion)
            columns[0][k].append(proxy[i])
            columns[1][k].append(gold)
            columns[2][k].append(RuleReward.isHack(reward: proxy[i], gold: gold) ? 1 : 0)
            columns[3][k].append(kl[i])
        }
        let m = columns.map { RewardDiagnostics.clustered($0) }
        return RewardDiagnostics(
            samples: samples.count, proxy: m[0].mean, proxySE: m[0].se, gold: m[1].mean, goldSE: m[1].se, hackRate: m[2].mean,
            hackRateSE: m[2].se, sequenceKL: m[3].mean, sequenceKLSE: m[3].se)
    }

    /// The teacher's hint uplift on the cell's eval problems: its pass@1 (eval samples, no
    /// greedy decode) with the privileged prompt minus with the plain prompt.
    mutating func teacherUplift(_ teacher: Teacher) throws -> HintUplift {
        // The frozen base's uplift never changes (same weights, same seed): measured once.
        if teacher.weights == .frozenBase, let u = frozenTeacherUplift { return u }
        let tModel = model(teacher.weights, scratch: teacherScratch)
        let opts = EvalOptions(samples: config.evalSamples, greedy: false)
        let (plain, c1) = try Evaluator.run(tModel, on: evalSet, indices: evalIndices, options: opts, seed: config.seed &+ 11)
        let (hinted, c2) = try Evaluator.run(
            tModel, on: evalSet, indices: evalIndices, options: opts, seed: config.seed &+ 11, rendering: .privileged)
        ledger.evaluation += c1.forwardFLOPs + c2.forwardFLOPs
        let rows = Metrics.hintUplift(plain: plain, hinted: hinted, set: evalSet)
        let u = rows.first { $0.family == "all" && $0.bucket == "all" }
            ?? HintUplift(family: "all", bucket: "all", problems: 0, plain: 0, hinted: 0, se: nil)
        if teacher.weights == .frozenBase { frozenTeacherUplift = u }
        return u
    }

    /// Exact per-token KL(π ‖ base) and entropy over one sample of each eval problem; for a
    /// method with a teacher, also the mean per-token divergence of the policy from the
    /// teacher (its own divergence; the reverse KL for the sampled form) on the same samples,
    /// the teacher reading the privileged prompt.
    mutating func klAndEntropy() throws -> (kl: Double, entropy: Double, teacherDivergence: Double?) {
        var erng = SeededRNG(seed: config.seed).derived("kl")
        let problems = evalIndices.prefix(64).map { evalSet.problems[$0] }
        guard !problems.isEmpty else { return (0, 0, nil) }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        let r = try policy.sample(
            prompts: problems.map(\.promptTokens), options: opts, limits: problems.map(\.completionLimit), rng: &erng)
        let batch = SequenceBatch(zip(problems, r.completions).map { ($0.promptTokens, $1.tokens) })
        let V = policy.config.vocab
        try batch.forward(policy)
        let pz = Array(policy.logits), plse = Array(policy.logSumExp), pp = Array(policy.probabilities)
        try batch.forward(base)
        let bz = base.logits, blse = base.logSumExp
        ledger.evaluation += r.forwardFLOPs + batch.forwardFLOPs(policy.config) + batch.forwardFLOPs(base.config)
        var kl = 0.0, h = 0.0, count = 0
        for n in batch.targets.indices where batch.targets[n] >= 0 {
            for v in 0..<V {
                let p = Double(pp[n * V + v])
                let lp = Double(pz[n * V + v] - plse[n]), lq = Double(bz[n * V + v] - blse[n])
                kl += p * (lp - lq)
                h -= p * lp
            }
            count += 1
        }
        let mean = (kl / Double(max(1, count)), h / Double(max(1, count)))
        guard let teacher = method.teacher else { return (mean.0, mean.1, nil) }
        // The teacher on the privileged prompt followed by the same completions.
        let tModel = model(teacher.weights, scratch: teacherScratch)
        let tb = SequenceBatch(zip(problems, r.completions).map { ($0.privilegedPromptTokens, $1.tokens) })
        try tb.forward(tModel)
        ledger.evaluation += tb.forwardFLOPs(tModel.config)
        let tz = tModel.logits, tlse = tModel.logSumExp, tp = tModel.probabilities
        let term = TeacherDivergence(coef: 1, divergence: { if case .full(let d) = config.divergence { d } else { .reverseKL } }())
        var divergence = 0.0, tokens = 0
        let p = UnsafeMutableBufferPointer<Double>.allocate(capacity: V), lp = UnsafeMutableBufferPointer<Double>.allocate(capacity: V)
        let q = UnsafeMutableBufferPointer<Float>.allocate(capacity: V), lq = UnsafeMutableBufferPointer<Float>.allocate(capacity: V)
        let g = UnsafeMutableBufferPointer<Float>.allocate(capacity: V)
        g.initialize(repeating: 0)
        defer { p.deallocate(); lp.deallocate(); q.deallocate(); lq.deallocate(); g.deallocate() }
        for (row, problem) in problems.enumerated() {
            let start = problem.promptTokens.count - 1, tStart = problem.privilegedPromptTokens.count - 1
            for j in 0..<r.completions[row].tokens.count {
                let n = batch.position(row, start + j), m = tb.position(row, tStart + j)
                for v in 0..<V {
                    p[v] = Double(pp[n * V + v]); lp[v] = Double(pz[n * V + v] - plse[n])
                    q[v] = tp[m * V + v]; lq[v] = tz[m * V + v] - tlse[m]
                }
                var acc = TermAccumulator(row: g)
                term.apply(
                    TokenView(
                        vocab: V, target: Int(r.completions[row].tokens[j]), logProb: Float(lp[Int(r.completions[row].tokens[j])]),
                        behaviorLogProb: 0, advantage: 0, logProbs: UnsafeBufferPointer(lp), probs: UnsafeBufferPointer(p),
                        teacherLogProbs: UnsafeBufferPointer(lq), teacherProbs: UnsafeBufferPointer(q)),
                    scale: 1, &acc)
                divergence += acc.loss
                tokens += 1
            }
        }
        return (mean.0, mean.1, divergence / Double(max(1, tokens)))
    }
}
