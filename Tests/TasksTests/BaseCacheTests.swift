import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import Tasks
import Testing

@Suite struct BaseCacheTests {
    /// A cached base asked for with another evaluation is re-evaluated (same weights), the new
    /// record lives beside the first, and the first record is left byte for byte as it was.
    @Test func aDifferentEvaluationGetsItsOwnRecordAndKeepsTheFirst() throws {
        setBLASThreads(1)
        let dir = NSTemporaryDirectory() + "rlscale-basecache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = BaseCache(directory: dir)
        let spec = BaseSpec(
            name: "tiny", model: BaseSpec.shape(dModel: 16, layers: 1, heads: 2), corpus: CorpusConfig(mixture: try TaskMixture.parse("sort")),
            tokensPerParameter: 0, minTokens: 2_000, seed: 3)
        let small = EvalSetSpec(problemsPerLevel: 1, seed: 5), large = EvalSetSpec(problemsPerLevel: 3, seed: 5)
        let opts = EvalOptions(samples: 4)
        let (m1, r1) = try cache.obtain(spec, evalSet: small, evalOptions: opts)
        let first = try Data(contentsOf: URL(fileURLWithPath: cache.recordPath(spec)))
        #expect(r1.evaluation?.set == small)

        let (m2, r2) = try cache.obtain(spec, evalSet: large, evalOptions: opts)
        #expect(r2.evaluation?.set == large)
        #expect(r2.evaluation?.outcomes.count == 3 * (r1.evaluation?.outcomes.count ?? -1))
        #expect(Array(m1.parameters) == Array(m2.parameters))
        #expect(try Data(contentsOf: URL(fileURLWithPath: cache.recordPath(spec))) == first)
        let second = cache.evaluationRecordPath(spec, set: large, options: opts)
        #expect(FileManager.default.fileExists(atPath: second))

        // Asked again, each evaluation comes back from its own record.
        #expect(try cache.obtain(spec, evalSet: small, evalOptions: opts).1.evaluation?.set == small)
        #expect(try cache.obtain(spec, evalSet: large, evalOptions: opts).1.evaluation?.outcomes.count == r2.evaluation?.outcomes.count)
        #expect(cache.evaluationRecordPath(spec, set: large, options: EvalOptions(samples: 8)) != second)
    }
}
