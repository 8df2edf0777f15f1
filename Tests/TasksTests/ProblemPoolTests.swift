import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Tasks
import Testing

/// Fixed training pools: problems of the train stream only (disjoint from every held-out
/// problem), in the requested base pass bucket, distinct, and the same on every build.
@Suite struct ProblemPoolTests {
    static let mix = (try? TaskMixture.parse("sort")) ?? .uniform

    /// A base that solves some short sorts and not others, so that several buckets are populated.
    nonisolated(unsafe) static let base: Transformer? = {
        setBLASThreads(1)
        let spec = BaseSpec(
            name: "pool", model: BaseSpec.shape(dModel: 32, layers: 2, heads: 2), corpus: CorpusConfig(mixture: mix),
            tokensPerParameter: 0, minTokens: 150_000, learningRate: 3e-3, warmupSteps: 20, seed: 1)
        return try? Pretraining.run(spec).0
    }()

    @Test func aPoolHoldsDistinctTrainProblemsOfItsBucketOnly() throws {
        let model = try #require(Self.base)
        let heldOut = Set(EvalSet(families: Self.mix.families, problemsPerLevel: 64, seed: 1234).problems.map(\.text))
        var built: [PassBucket: ProblemPool] = [:]
        for bucket in PassBucket.allCases {
            let request = PoolRequest(mixture: Self.mix, ranges: ["sort": 1...3], bucket: bucket, size: 6, samples: 16)
            guard let pool = try? ProblemPool.build(request, base: model) else { continue }
            built[bucket] = pool
            #expect(pool.problems.count == 6 && Set(pool.problems.map(\.text)).count == 6)
            #expect(pool.problems.allSatisfy { Split.of($0) == .train && (1...3).contains($0.difficulty) && !heldOut.contains($0.text) })
            // Every kept problem's base successes put it in the bucket asked for.
            #expect(pool.baseSuccesses.count == 6)
            #expect(pool.baseSuccesses.allSatisfy { PassBucket.of(successes: $0, samples: 16) == bucket }, "\(bucket)")
            #expect(pool.candidates >= 6 && pool.forwardFLOPs > 0)
        }
        // The filter is exercised: at least two buckets are populated, and their pools are disjoint.
        #expect(built.count >= 2, "buckets found: \(built.keys.map(\.rawValue))")
        let texts = built.values.map { Set($0.problems.map(\.text)) }
        for i in texts.indices { for j in texts.indices where j > i { #expect(texts[i].isDisjoint(with: texts[j])) } }
        // Deterministic: the same request gives the same pool.
        if let (bucket, pool) = built.first {
            let again = try ProblemPool.build(pool.request, base: model)
            #expect(again.problems == pool.problems, "\(bucket)")
        }
    }

    @Test func anUnfillablePoolSaysWhy() throws {
        // An untrained model solves nothing: no problem is "easy" for it.
        let untrained = try Transformer(config: BaseSpec.shape(dModel: 16, layers: 1, heads: 2), seed: 2)
        let request = PoolRequest(mixture: Self.mix, ranges: ["sort": 1...3], bucket: .easy, size: 3, samples: 4)
        do {
            _ = try ProblemPool.build(request, base: untrained)
            Issue.record("built an impossible pool")
        } catch let e {
            guard case .tooFew(let found, let wanted, let candidates, let bucket) = e else { Issue.record("\(e)"); return }
            #expect(found == 0 && wanted == 3 && bucket == .easy && candidates == request.maxCandidates)
            #expect(e.description.hasPrefix("pool: only 0 of 3 problems found in base pass bucket 'easy' among \(candidates) distinct"))
        }
    }

    @Test func withoutABucketThePoolIsTheFirstDistinctDraws() throws {
        let model = try #require(Self.base)
        let request = PoolRequest(mixture: Self.mix, ranges: ["sort": 2...4], bucket: nil, size: 10, samples: 16)
        let pool = try ProblemPool.build(request, base: model)
        #expect(pool.candidates == 10 && pool.forwardFLOPs == 0 && pool.baseSuccesses.isEmpty)
        #expect(pool.problems.allSatisfy { Split.of($0) == .train && (2...4).contains($0.difficulty) })
    }
}
