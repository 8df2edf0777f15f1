import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Tasks

extension TrainingState {
    // MARK: evaluation (measured, recorded in the ledger's `evaluation`, never charged)

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
