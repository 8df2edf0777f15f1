import Foundation
import Laws
import RLCommon
import ResultSchema
import Tasks
import Testing

/// The law reader on documents produced by the writer: `CellResult` values built in code,
/// encoded as the result store encodes them, read back by `CellStore`.
@Suite("Cell documents written by the schema, read by the fitter")
struct SchemaReadBackTests {
    /// One family's metrics for a group: `problems` sampled problems scoring `avg4` at avg@4
    /// (SE `se`), and `refProblems` reference problems with mean p_ref `pRef`.
    static func metrics(_ family: String, _ group: String, problems: Int, avg4: Double, se: Double,
                        refProblems: Int, pRef: Double) -> GroupMetrics {
        var g = GroupMetrics(family: family, group: group, problems: problems, greedy: avg4 / 2,
                             avg: ["1": avg4, "4": avg4], best: ["4": min(1, 2 * avg4)], worst: ["4": avg4 / 4])
        g.se = ["avg@4": se, "greedy": se / 2, "p_ref": se / 3]
        g.seSampling = ["avg@4": se / 2]
        g.pRef = pRef
        g.logpRef = Foundation.log(pRef)
        g.refProblems = refProblems
        return g
    }

    /// The ledger after `rollouts` rollouts: charged FLOPs spread over sampling, training
    /// and reference, plus an evaluation share that is never charged.
    static func ledger(rollouts: Int) -> ComputeLedger {
        var l = ComputeLedger()
        l.sampling = 2e6 * Double(rollouts)
        l.training = 5e6 * Double(rollouts)
        l.reference = 1e6 * Double(rollouts)
        l.evaluation = 3e9
        l.rollouts = rollouts
        l.generatedTokens = 12 * rollouts
        return l
    }

    /// avg@4 of a family at eval point `i` (mul improves faster than sort).
    static func score(_ family: String, _ i: Int) -> Double { family == "mul" ? 0.1 + 0.2 * Double(i) : 0.3 + 0.1 * Double(i) }

    /// A finished two-family cell with a three-point curve; `all` and `train_dist` groups
    /// for both families (train_dist holds fewer problems, so its weights differ).
    static func document(tasks: String = "sort:1,mul:0.5", bucket: PassBucket? = nil, pool: Int? = nil) throws -> CellResult {
        let config = CellConfig(
            method: "dapo", rolloutsPerProblem: 4, problemsPerBatch: 16, budgetFLOPs: 1e12,
            tasks: try TaskMixture.parse(tasks), trainBucket: bucket, poolSize: pool, seed: 7)
        let rollouts = [0, 640, 1280]
        var curve: [EvalPoint] = []
        for (i, r) in rollouts.enumerated() {
            var groups: [GroupMetrics] = []
            for f in ["mul", "sort"] {
                let mul = f == "mul"
                groups.append(metrics(f, "all", problems: mul ? 30 : 10, avg4: score(f, i), se: mul ? 0.03 : 0.06,
                                      refProblems: mul ? 60 : 20, pRef: mul ? 0.2 : 0.5))
                groups.append(metrics(f, "train_dist", problems: mul ? 12 : 4, avg4: score(f, i) + 0.05, se: 0.04,
                                      refProblems: mul ? 24 : 8, pRef: 0.4))
            }
            curve.append(EvalPoint(
                step: r / 64, compute: r == 0 ? ComputeLedger() : ledger(rollouts: r), wallSeconds: Double(i), groups: groups,
                supportExpansion: i, baseUnsolved: 5, klToBase: 0.01 * Double(i), entropy: 1))
        }
        let window = StepWindow(
            firstStep: 0, lastStep: 19, meanReward: 0.4, deadZoneFraction: 0.1, deadZoneFLOPsShare: 0.1,
            noGradientFraction: 0.1, noGradientSamplingShare: 0.1, noGradientTrainingShare: 0, discardedGroups: 3,
            entropy: 1, clipFraction: 0.02, responseLength: 12, loss: 0.5, gradNorm: 1)
        var wall = WallTime()
        wall.sampling = 1
        return CellResult(
            config: config, baseKey: "s-0123456789abcdef", baseName: "s", baseParameters: 25472, status: "done", steps: 20,
            curve: curve, windows: [window], compute: ledger(rollouts: 1280), wallSeconds: 3, wallTime: wall,
            blasCore: "SkylakeX",
            pool: pool.map { PoolUse(key: "p", size: $0, bucket: bucket, drawn: 1280, epochs: 1280 / Double($0), candidates: 900, buildFLOPs: 1e9) })
    }

    /// A fresh store folder holding `docs` (id → bytes) under cells/.
    static func store(_ docs: [String: Data]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("laws-schema-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/cells", withIntermediateDirectories: true)
        for (id, data) in docs { try data.write(to: URL(fileURLWithPath: root + "/cells/\(id).json")) }
        return root
    }

    @Test func readsWhatTheWriterWrites() throws {
        let fresh = try CellResult.encoder.encode(try Self.document())
        let pooled = try CellResult.encoder.encode(try Self.document(bucket: .easy, pool: 256))
        let anyBucket = try CellResult.encoder.encode(try Self.document(tasks: "sort:1", pool: 64))
        let root = try Self.store(["fresh": fresh, "pooled": pooled, "any": anyBucket])
        defer { try? FileManager.default.removeItem(atPath: root) }

        let store = try CellStore.load(results: root, score: try ScoreSelector(metric: "avg@4", group: "train_dist"))
        #expect(store.skipped.isEmpty, "\(store.skipped)")
        #expect(store.cells.map(\.id) == ["any", "fresh", "pooled"])
        let labels = Dictionary(uniqueKeysWithValues: store.cells.map { ($0.id, $0.taskMix) })
        #expect(labels == ["fresh": "mul:0.5,sort:1", "pooled": "mul:0.5,sort:1 [easy D=256]", "any": "sort:1 [D=64]"])

        let c = try #require(store.cells.first { $0.id == "fresh" })
        #expect(c.method == "dapo" && c.parameters == 25472 && c.rolloutsPerProblem == 4 && c.problemsPerBatch == 16)
        #expect(c.seed == 7 && c.numerics == Numerics.version)
        // Charged compute only (sampling + training + reference, never evaluation), and rollouts.
        #expect(c.curve.map(\.compute) == [0, 8e6 * 640, 8e6 * 1280])
        #expect(c.curve.map(\.rollouts) == [0, 640, 1280])
        #expect(c.flopsPerRollout == 8e6)
        // avg@4 of train_dist weighted by problems (12 mul, 4 sort), SE sqrt(Σ w² se²) / Σ w.
        for (i, p) in c.curve.enumerated() {
            let want = (12 * (Self.score("mul", i) + 0.05) + 4 * (Self.score("sort", i) + 0.05)) / 16
            #expect(abs(p.score - want) < 1e-12, "point \(i): \(p.score) vs \(want)")
            #expect(abs(p.se - (144 * 0.04 * 0.04 + 16 * 0.04 * 0.04).squareRoot() / 16) < 1e-15)
        }
        #expect(c.initialScore == c.curve.first?.score)

        // Other metrics and groups of the same documents.
        let all = try CellStore.load(results: root, score: try ScoreSelector(metric: "avg@4", group: "all"))
        let a = try #require(all.cells.first { $0.id == "fresh" })
        #expect(abs(a.curve[2].score - (30 * Self.score("mul", 2) + 10 * Self.score("sort", 2)) / 40) < 1e-12)
        #expect(abs(a.curve[0].se - (900 * 0.03 * 0.03 + 100 * 0.06 * 0.06).squareRoot() / 40) < 1e-15)
        let pRef = try CellStore.load(results: root, score: try ScoreSelector(metric: "p_ref", group: "all"))
        let p = try #require(pRef.cells.first { $0.id == "fresh" })
        // Weighted by refProblems (60, 20), not by problems.
        #expect(p.curve.allSatisfy { abs($0.score - (60 * 0.2 + 20 * 0.5) / 80) < 1e-12 })
        let logp = try CellStore.load(results: root, score: try ScoreSelector(metric: "logp_ref", group: "train_dist"))
        #expect(logp.cells.first { $0.id == "fresh" }?.curve.allSatisfy { abs($0.score - Foundation.log(0.4)) < 1e-12 } == true)
        let best = try CellStore.load(results: root, score: try ScoreSelector(metric: "best@4", group: "all"))
        let b = try #require(best.cells.first { $0.id == "fresh" })
        #expect(abs(b.curve[1].score - (30 * min(1, 2 * Self.score("mul", 1)) + 10 * min(1, 2 * Self.score("sort", 1))) / 40) < 1e-12)
    }

    /// Documents the fitter cannot use are skipped with the reasons `fit` prints.
    @Test func skipsFailedForeignAndBrokenDocuments() throws {
        let good = try Self.document()
        let failed = CellResult.failed(config: good.config, baseKey: "k", baseName: "s", baseParameters: 25472, reason: "worker crashed")
        var foreign = good
        foreign.schema = CellResult.schemaVersion + 1
        var object = try #require(try JSONSerialization.jsonObject(with: try CellResult.encoder.encode(good)) as? [String: Any])
        object["schema"] = nil
        let encoded = try CellResult.encoder.encode(good)
        let root = try Self.store([
            "good": encoded, "failed": try CellResult.encoder.encode(failed), "foreign": try CellResult.encoder.encode(foreign),
            "unversioned": try JSONSerialization.data(withJSONObject: object), "truncated": encoded.prefix(encoded.count / 2),
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try CellStore.load(results: root, score: try ScoreSelector())
        #expect(store.cells.map(\.id) == ["good"])
        let reasons = Dictionary(uniqueKeysWithValues: store.skipped.map { ($0.id, $0.reason) })
        #expect(reasons["failed"] == "status failed")
        #expect(reasons["foreign"] == "result schema \(CellResult.schemaVersion + 1), this version reads \(CellResult.schemaVersion)")
        #expect(reasons["unversioned"] == "result schema missing, this version reads \(CellResult.schemaVersion)")
        #expect(reasons["truncated"]?.hasPrefix("not a cell document: ") == true, "\(reasons)")
    }

    /// The labels the fitter groups by: components sorted by family, compact weights, the pool.
    @Test func canonicalLabels() throws {
        #expect(try TaskMixture.parse("sort").canonicalLabel == "sort:1")
        #expect(try TaskMixture.parse("sort:1,mul:1").canonicalLabel == "mul:1,sort:1")
        #expect(try TaskMixture.parse("sort:1,mul:0.5").canonicalLabel == "mul:0.5,sort:1")
        #expect(try TaskMixture.parse("mul:2,add:0.3333333333333333").canonicalLabel == "add:0.333333,mul:2")
        var config = CellConfig(method: "grpo", budgetFLOPs: 1, tasks: try TaskMixture.parse("sort:1,mul:1"))
        #expect(config.poolLabel == "" && config.lawGroupLabel == "mul:1,sort:1")
        config.poolSize = 256
        #expect(config.lawGroupLabel == "mul:1,sort:1 [D=256]")
        config.trainBucket = .easy
        #expect(config.poolLabel == " [easy D=256]" && config.lawGroupLabel == "mul:1,sort:1 [easy D=256]")
    }
}
