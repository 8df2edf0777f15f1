import BasePolicies
import Foundation
import Evaluation
import PolicyModel
import RLCommon
import ResultSchema
import Tasks
import Testing

import Rewards

/// `solution EOS` tokens of a written solution.
func written(_ s: String, eos: Bool = true) -> [Int32] { Vocabulary.encode(s) + (eos ? [Vocabulary.eos] : []) }

@Suite struct HackableVerifierTests {
    let add = Problem(family: "add", difficulty: 3, text: "A123+459", steps: ["21", "80", "50"], answer: "582")
    let sort = Problem(family: "sort", difficulty: 3, text: "S5391", steps: ["1", "3", "5", "9"], answer: "1359")
    var none = SeededRNG(seed: 1)

    @Test func goldAcceptsOnlyTheExactAnswer() {
        #expect(RuleReward.gold(add, written("21,80,50=582")) == 1)
        #expect(RuleReward.gold(add, written("21,80,50=582583")) == 0)
        #expect(RuleReward.gold(add, written("21,80,50=582", eos: false)) == 0)
    }

    @Test func containsAcceptsListedCandidatesThatGoldRejects() {
        let exploit = written("21,80,50=583582")
        #expect(RuleReward.contains(add, exploit, maxLength: 6) == 1)
        #expect(RuleReward.gold(add, exploit) == 0)
        // The knob bounds the exploit: a six-character field is too long at L = 5.
        #expect(RuleReward.contains(add, exploit, maxLength: 5) == 0)
        #expect(RuleReward.contains(add, written("21,80,50=583"), maxLength: 6) == 0)
        #expect(RuleReward.contains(add, written("=582"), maxLength: 3) == 1)
    }

    @Test func digitsGivesFullCreditForWrongHighDigits() {
        let exploit = written("21,80,50=482")  // the carry into the hundreds is wrong
        #expect(RuleReward.digits(add, exploit, k: 2) == 1)
        #expect(RuleReward.digits(add, exploit, k: 1) == 1)
        #expect(RuleReward.gold(add, exploit) == 0)
        #expect(RuleReward.digits(add, exploit, k: 3) == 2.0 / 3)
        #expect(RuleReward.digits(add, written("=581"), k: 2) == 0.5)
        #expect(RuleReward.digits(add, written("=82"), k: 2) == 1)
        #expect(RuleReward.digits(add, written("=82"), k: 3) == 2.0 / 3)  // the missing hundreds digit disagrees
        #expect(RuleReward.digits(add, written("=582"), k: 5) == 1)
        #expect(RuleReward.digits(add, written("=582", eos: false), k: 1) == 0)
    }

    @Test func lenientForgivesMissingEOSMarkerAndTrailingJunk() {
        let exploit = written("1,3,5,9,1359", eos: false)
        #expect(RuleReward.lenient(sort, exploit) == 1)
        #expect(RuleReward.gold(sort, exploit) == 0)
        #expect(RuleReward.lenient(sort, written("1,3,5,9=1359,,+")) == 1)
        #expect(RuleReward.lenient(sort, written("1,3,5,9=1358")) == 0)
        #expect(RuleReward.lenient(sort, written("1359+13")) == 0)  // the last integer is 13
        #expect(RuleReward.lenient(sort, []) == 0)
    }

    @Test func patternAcceptsRightShapedWrongAnswersAtItsRate() {
        var rng = SeededRNG(seed: 7)
        let shaped = written("21,80,50=364"), parity = written("21,80,50=363"), short = written("21,80,50=36")
        let n = 20_000
        var accepted = 0
        for _ in 0..<n { accepted += Int(RuleReward.pattern(add, shaped, rate: 0.3, rng: &rng)) }
        let se = (0.3 * 0.7 / Double(n)).squareRoot()
        #expect(abs(Double(accepted) / Double(n) - 0.3) < 4 * se)
        #expect(RuleReward.gold(add, shaped) == 0)
        for _ in 0..<100 {
            #expect(RuleReward.pattern(add, parity, rate: 1, rng: &rng) == 0)
            #expect(RuleReward.pattern(add, short, rate: 1, rng: &rng) == 0)
            #expect(RuleReward.pattern(add, written("21,80,50=582"), rate: 0, rng: &rng) == 1)
        }
    }

    @Test func everyRuleSurvivesGarbage() {
        var rng = SeededRNG(seed: 3)
        let garbage: [[Int32]] = [[], [0, 1, 3, 99, -4], [Vocabulary.eos], written("===,,,"), written("=", eos: false)]
        let sources: [RewardSource] = [.gold, .contains(maxLength: 8), .digits(2), .lenient, .pattern(1), .noisy(falsePositive: 0, falseNegative: 0, corrected: false)]
        for g in garbage {
            for s in sources { #expect(RuleReward.score(s, add, completion: g, rng: &rng) == 0) }
        }
    }
}

@Suite struct NoisyVerifierTests {
    let p = Problem(family: "add", difficulty: 3, text: "A123+459", steps: ["21", "80", "50"], answer: "582")

    @Test func empiricalRatesMatchTheKnobs() {
        var rng = SeededRNG(seed: 11)
        let right = written("21,80,50=582"), wrong = written("21,80,50=583")
        let n = 20_000
        var fp = 0, fn = 0
        for _ in 0..<n {
            fp += Int(RuleReward.noisy(p, wrong, falsePositive: 0.1, falseNegative: 0.3, corrected: false, rng: &rng))
            fn += 1 - Int(RuleReward.noisy(p, right, falsePositive: 0.1, falseNegative: 0.3, corrected: false, rng: &rng))
        }
        #expect(abs(Double(fp) / Double(n) - 0.1) < 4 * (0.1 * 0.9 / Double(n)).squareRoot())
        #expect(abs(Double(fn) / Double(n) - 0.3) < 4 * (0.3 * 0.7 / Double(n)).squareRoot())
    }

    /// On synthetic gold rewards with a known mean, the corrected noisy reward averages to
    /// the gold mean, while the raw noisy one is biased toward ρ0 + (1 − ρ0 − ρ1)·mean.
    @Test func correctionIsUnbiased() {
        var rng = SeededRNG(seed: 12)
        let right = written("21,80,50=582"), wrong = written("21,80,50=583")
        let (fp, fn, goldMean, n) = (0.2, 0.3, 0.25, 40_000)
        var raw = 0.0, corrected = 0.0, values: [Double] = []
        for _ in 0..<n {
            let c = rng.uniform() < goldMean ? right : wrong
            var twin = rng  // the same coin for the raw and corrected readings
            raw += RuleReward.noisy(p, c, falsePositive: fp, falseNegative: fn, corrected: false, rng: &twin)
            let x = RuleReward.noisy(p, c, falsePositive: fp, falseNegative: fn, corrected: true, rng: &rng)
            corrected += x
            values.append(x)
        }
        let mean = corrected / Double(n)
        let sd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
        #expect(abs(mean - goldMean) < 4 * sd / Double(n).squareRoot())
        let biased = fp + (1 - fp - fn) * goldMean
        #expect(abs(raw / Double(n) - biased) < 0.01)
        #expect(abs(raw / Double(n) - goldMean) > 0.05)
    }

    @Test func spellingsRoundTripAndRangesAreRefused() {
        for s in ["gold", "contains:8", "digits:2", "lenient", "pattern:0.3", "noisy:0.1,0.2", "noisy:0.1,0.2,corrected", "rm"] {
            #expect(RewardSource(s)?.description == s)
        }
        for s in ["noisy:0.5,0.5", "noisy:0.6,0.5", "noisy:-0.1,0.2", "digits:0", "contains:0", "pattern:1.5", "gold:1", "oracle", "noisy:0.1",
                  "noisy:0.1,,0.2", "noisy:0.1,0.2,"] {
            #expect(RewardSource(s) == nil, "\(s) should be refused")
        }
        for s in ["1", "mean:4", "min:3", "uwo:4:0.5"] { #expect(RewardEnsemble(s)?.description == s) }
        for s in ["mean:1", "min:0", "uwo:4:-1", "2", "mean:2:", "uwo:4::0.5"] { #expect(RewardEnsemble(s) == nil) }
        #expect(RewardEnsemble.min(members: 3).combine([0.2, 0.9, 0.5]) == 0.2)
        #expect(abs(RewardEnsemble.uncertainty(members: 2, lambda: 1).combine([0.2, 0.6]) - 0.2) < 1e-12)
    }
}

@Suite struct RewardModelTests {
    /// A tiny base, a tiny reward model trained on its labelled samples: on held-out samples
    /// the model ranks correct above wrong better than chance (AUC > 0.5 by 3 SE) — the
    /// labels it saw come from a policy that already solves some problems.
    @Test func rewardModelBeatsChanceOnHeldOutLabels() throws {
        setBLASThreads(1)
        let spec = BaseSpec(
            name: "t", model: BaseSpec.shape(dModel: 32, layers: 2, heads: 2), corpus: CorpusConfig(mixture: try TaskMixture.parse("sort")),
            tokensPerParameter: 0, minTokens: 300_000, learningRate: 3e-3, warmupSteps: 20, seed: 1)
        let (policy, _) = try Pretraining.run(spec)
        var request = RewardModelRequest(
            policyBaseKey: "t", rmBaseKey: "t", rmBaseName: "t", mixture: try TaskMixture.parse("sort:1"), ranges: ["sort": 1...2],
            spec: RewardModelSpec(size: "base", labels: 512))
        request.heldOut = 512
        request.minSteps = 150
        let rm = try RewardModel.train(request, policyBase: policy, rmBase: policy)
        let q = rm.record
        let positives = q.majorityAccuracy  // at least half; the AUC's SE under the null is ~ sqrt(1/(12 m n) · (m + n + 1))
        let m = Double(q.heldOutSamples) * min(positives, 1 - positives), n = Double(q.heldOutSamples) - m
        let se = ((m + n + 1) / (12 * m * n)).squareRoot()
        #expect(m >= 10, "too few samples of the minority label to test (\(m))")
        let auc = try #require(q.heldOutAUC)
        #expect(auc > 0.5 + 3 * se, "held-out AUC \(auc), null SE \(se)")
        #expect(q.trainingFLOPs > 0 && q.samplingFLOPs > 0)
    }

    @Test func qualityCountsTiesAsHalf() {
        let q = RewardModel.quality(scores: [0.9, 0.4, 0.4, 0.1], truth: [true, true, false, false])
        #expect(q.accuracy == 0.75)
        #expect(q.majority == 0.5)
        #expect(q.auc == (1 + 1 + 1 + 0.5) / 4)
    }
}

@Suite struct SequenceKLTests {
    /// Two random tiny policies and completions of at most two tokens: every completion can
    /// be enumerated, so KL(π ‖ q) over completions is exact. The per-sample estimator
    /// weighted by each completion's probability reproduces it to rounding (the chain rule),
    /// and its mean over samples drawn by the sampler agrees within 4 SE.
    @Test func sampledSequenceKLAgreesWithTheExactKL() throws {
        setBLASThreads(1)
        let config = BaseSpec.shape(dModel: 16, layers: 1, heads: 2)
        let pi = try Transformer(config: config, seed: 3), q = try Transformer(config: config, seed: 4)
        for i in pi.parameters.indices { pi.parameters[i] *= 4 }  // sharper than a fresh init, so the two differ
        let V = config.vocab
        let prompt: [Int32] = [Vocabulary.bos] + Vocabulary.encode("S31") + [Vocabulary.sep]
        // Distributions after the prompt (row 0, last prompt position) and after prompt + t1.
        let rows = (0..<V).map { prompt + [Int32($0)] }
        func dists(_ m: Transformer) throws -> (first: [Double], second: [[Double]]) {
            try m.forward(tokens: rows.flatMap { $0 }, batch: V, length: prompt.count + 1)
            let z = m.logits, lse = m.logSumExp, T = prompt.count + 1
            func row(_ n: Int) -> [Double] { (0..<V).map { Double(z[n * V + $0] - lse[n]) } }
            return (row(prompt.count - 1), (0..<V).map { row($0 * T + prompt.count) })
        }
        let (p1, p2) = try dists(pi), (q1, q2) = try dists(q)
        func kl(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + exp($1.0) * ($1.0 - $1.1) } }
        var exact = kl(p1, q1)
        for t in 0..<V where Int32(t) != Vocabulary.eos { exact += exp(p1[t]) * kl(p2[t], q2[t]) }
        // Every completion with its probability under π.
        var completions: [[Int32]] = [], weights: [Double] = []
        for t in 0..<V {
            if Int32(t) == Vocabulary.eos {
                completions.append([Int32(t)]); weights.append(exp(p1[t]))
            } else {
                for u in 0..<V { completions.append([Int32(t), Int32(u)]); weights.append(exp(p1[t] + p2[t][u])) }
            }
        }
        #expect(abs(weights.reduce(0, +) - 1) < 1e-4)
        let all = try SequenceKL.perSample(policy: pi, reference: q, completions.map { (prompt, $0) })
        // Hundreds of sequences, yet both models' activations only ever held one pass of them.
        #expect(completions.count > 2 * Transformer.passRows)
        for m in [pi, q] { #expect(m.activationCapacity <= Transformer.passRows * (prompt.count + 1)) }
        let weighted = zip(weights, all.kl).reduce(0) { $0 + $1.0 * $1.1 }
        #expect(abs(weighted - exact) < 1e-4 * max(1, exact), "weighted \(weighted), exact \(exact)")
        // Sampled: the sampler's completions, capped at two tokens.
        var rng = SeededRNG(seed: 9)
        let n = 3000
        let r = try pi.sample(
            prompts: Array(repeating: prompt, count: n), options: SamplingOptions(temperature: 1, maxNewTokens: 2, eos: Vocabulary.eos),
            rng: &rng)
        let est = try SequenceKL.perSample(policy: pi, reference: q, r.completions.map { (prompt, $0.tokens) }).kl
        let mean = est.reduce(0, +) / Double(n)
        let sd = (est.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
        #expect(abs(mean - exact) < 4 * sd / Double(n).squareRoot() + 1e-6, "sampled \(mean) ± \(sd / Double(n).squareRoot()), exact \(exact)")
        #expect(exact > 0.01, "the two policies should differ (exact KL \(exact))")
    }
}

@Suite struct BestOfNTests {
    /// The closed form against brute force: every n-subset of six samples (with tied
    /// scores), the pick a uniform member of the subset's top score.
    @Test func expectedPickMatchesEveryNSubset() {
        let s = BestOfN.Samples(proxy: [0.2, 0.9, 0.5, 0.9, 0.1, 0.5], gold: [1, 0, 1, 1, 0, 0])
        let m = s.proxy.count
        for n in 1...m {
            var gold = 0.0, proxy = 0.0, subsets = 0
            for mask in 0..<(1 << m) where mask.nonzeroBitCount == n {
                let members = (0..<m).filter { mask & (1 << $0) != 0 }
                let top = members.map { s.proxy[$0] }.max() ?? 0
                let picks = members.filter { s.proxy[$0] == top }
                gold += picks.reduce(0) { $0 + s.gold[$1] } / Double(picks.count)
                proxy += top
                subsets += 1
            }
            let e = BestOfN.expected(s, n: n)
            #expect(abs(e.gold - gold / Double(subsets)) < 1e-12, "n = \(n)")
            #expect(abs(e.proxy - proxy / Double(subsets)) < 1e-12, "n = \(n)")
        }
        #expect(BestOfN.d(n: 1) == 0)
        #expect(abs(BestOfN.d(n: 4) - (log(4.0) - 0.75).squareRoot()) < 1e-12)
    }
}

@Suite struct RewardModelChargingTests {
    /// Scoring rollouts with a learned reward model is charged to the budget (its forwards,
    /// by the FLOP formula); building it is recorded on the cell, not charged.
    @Test func scoringIsChargedAndBuildingIsRecorded() throws {
        setBLASThreads(1)
        let config = BaseSpec.shape(dModel: 16, layers: 1, heads: 2)
        let policy = try Transformer(config: config, seed: 1)
        var request = RewardModelRequest(
            policyBaseKey: "p", rmBaseKey: "p", rmBaseName: "p", mixture: try TaskMixture.parse("sort"), ranges: ["sort": 1...2],
            spec: RewardModelSpec(labels: 16))
        request.heldOut = 16
        request.minSteps = 2
        let rm = try RewardModel.train(request, policyBase: policy, rmBase: policy)
        let p = Problem(family: "sort", difficulty: 2, text: "S914", steps: ["1", "4", "9"], answer: "149")
        let items = [(p, written("1,4,9=149")), (p, written("1,4=14"))]
        var reward = TrainingReward(source: .learned, model: rm, rng: SeededRNG(seed: 1))
        let (scores, flops) = try reward.score(items)
        #expect(scores.count == 2 && scores.allSatisfy { $0 >= 0 && $0 <= 1 })
        // One forward over the packed batch: each sequence (prompt, completion, the query
        // SEP) at its own length.
        let charged = items.reduce(0.0) { $0 + FLOPs.forwardSequence(config, length: $1.0.promptTokens.count + $1.1.count + 1) }
        #expect(abs(flops - charged) < 1e-6 * flops, "\(flops)")
        #expect(rm.record.trainingFLOPs > 0 && rm.record.samplingFLOPs > 0 && rm.record.heldOutSamples == 16)
        // An untrained policy solves nothing: every held-out label is "wrong", so the AUC is
        // undefined (nil), and the record still encodes (JSON has no NaN).
        #expect(rm.record.heldOutAUC == nil)
        let data = try JSONEncoder().encode(rm.record)
        #expect(try JSONDecoder().decode(RewardModelUse.self, from: data) == rm.record)
        let one = RewardDiagnostics(
            samples: 4, proxy: 0.5, proxySE: RewardDiagnostics.clustered([[1, 0, 1, 0]]).se, gold: 0, goldSE: nil, hackRate: 0.5,
            hackRateSE: nil, sequenceKL: 0.1, sequenceKLSE: nil)
        #expect(one.proxySE == nil)
        #expect(try JSONDecoder().decode(RewardDiagnostics.self, from: JSONEncoder().encode(one)) == one)
    }
}
