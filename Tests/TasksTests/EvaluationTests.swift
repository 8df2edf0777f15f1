import BasePolicies
import Evaluation
import PolicyModel
import ResultSchema
import RLCommon
import Tasks
import Testing

@Suite struct EvaluationTests {
    /// Brute force over every k-subset of n outcomes.
    func bruteForce(n: Int, c: Int, k: Int) -> (best: Double, worst: Double) {
        let outcomes = (0..<n).map { $0 < c }
        var subsets = 0, any = 0, all = 0
        func rec(_ start: Int, _ left: Int, _ hit: Int) {
            if left == 0 {
                subsets += 1
                if hit > 0 { any += 1 }
                if hit == k { all += 1 }
                return
            }
            guard start < n else { return }
            for i in start..<n { rec(i + 1, left - 1, hit + (outcomes[i] ? 1 : 0)) }
        }
        rec(0, k, 0)
        return (Double(any) / Double(subsets), Double(all) / Double(subsets))
    }

    @Test func passAtKMatchesBruteForce() {
        for n in 1...9 {
            for c in 0...n {
                for k in 1...n {
                    let bf = bruteForce(n: n, c: c, k: k)
                    #expect(abs(PassAtK.best(n: n, c: c, k: k) - bf.best) < 1e-12, "best n=\(n) c=\(c) k=\(k)")
                    #expect(abs(PassAtK.worst(n: n, c: c, k: k) - bf.worst) < 1e-12, "worst n=\(n) c=\(c) k=\(k)")
                }
                #expect(PassAtK.average(n: n, c: c) == Double(c) / Double(n))
            }
        }
    }

    @Test func bucketBoundariesFollowTheIsoComputeDefinitions() {
        #expect(PassBucket.of(successes: 0, samples: 32) == .unsolved)
        #expect(PassBucket.of(successes: 1, samples: 32) == .hard)
        #expect(PassBucket.of(successes: 2, samples: 32) == .hard)  // 0.0625
        #expect(PassBucket.of(successes: 3, samples: 32) == .medium)
        #expect(PassBucket.of(successes: 10, samples: 32) == .easy)  // 0.3125
        #expect(PassBucket.of(successes: 19, samples: 32) == .easy)  // 0.59375
        #expect(PassBucket.of(successes: 20, samples: 32) == .solved)
    }

    @Test func evalSetIsHeldOutDistinctAndFixedPerSeed() {
        let a = EvalSet(families: TaskFamilies.all, problemsPerLevel: 6, seed: 7)
        let b = EvalSet(families: TaskFamilies.all, problemsPerLevel: 6, seed: 7)
        #expect(a.problems == b.problems)
        #expect(a.problems.allSatisfy { Split.of($0) == .heldOut })
        #expect(Set(a.problems.map(\.text)).count == a.problems.count)
        let levels = TaskFamilies.all.reduce(0) { $0 + $1.maxDifficulty }
        #expect(a.problems.count == 6 * levels)
    }

    @Test func aBriefPretrainBeatsAnUntrainedModel() throws {
        setBLASThreads(1)
        let mix = try TaskMixture.parse("sort")
        let spec = BaseSpec(
            name: "test", model: BaseSpec.shape(dModel: 32, layers: 2, heads: 2), corpus: CorpusConfig(mixture: mix),
            tokensPerParameter: 0, minTokens: 150_000, learningRate: 3e-3, warmupSteps: 20, seed: 1)
        let (trained, record) = try Pretraining.run(spec)
        #expect(record.tokens >= 150_000)
        #expect(record.trainFLOPs > 0)
        let first = try #require(record.lossCurve.first?[1]), last = try #require(record.lossCurve.last?[1])
        #expect(last < 0.6 * first, "loss \(first) → \(last)")
        let untrained = try Transformer(config: spec.model, seed: 1)
        let set = EvalSet(families: mix.families, problemsPerLevel: 16, seed: 3)
        let easy = set.problems.indices.filter { set.problems[$0].difficulty <= 2 }
        let opts = EvalOptions(samples: 8)
        let t = try Evaluator.run(trained, on: set, indices: easy, options: opts, seed: 1).outcomes
        let u = try Evaluator.run(untrained, on: set, indices: easy, options: opts, seed: 1).outcomes
        let tRate = Double(t.reduce(0) { $0 + $1.successes }) / Double(t.count * 8)
        let uRate = Double(u.reduce(0) { $0 + $1.successes }) / Double(u.count * 8)
        #expect(tRate > uRate + 0.03, "trained avg@1 \(tRate) vs untrained \(uRate)")
    }
}
