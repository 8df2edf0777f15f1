import Foundation
import ResultSchema
import RLCommon
import Tasks
import Testing

import Evaluation
import Grid
import Laws
@testable import RLTraining

/// Cells on different training pools are different groups for the law fitter: the pool's
/// bucket and size D are part of the group's task_mix label.
@Suite struct PoolGroupTests {
    func document(bucket: PassBucket?, pool: Int?, score: Double) throws -> Data {
        let config = CellConfig(method: "grpo", budgetFLOPs: 1e9, tasks: try TaskMixture.parse("sort:1"), trainBucket: bucket, poolSize: pool)
        var ledger = ComputeLedger()
        ledger.sampling = 1e9
        ledger.rollouts = 100
        var g = GroupMetrics(family: "sort", group: "train_dist", problems: 10, greedy: score, avg: ["4": score], best: [:], worst: [:])
        g.se = ["avg@4": 0.01]
        let points = [0.0, 1e9].map { c -> EvalPoint in
            var l = ledger
            if c == 0 { l = ComputeLedger() }
            return EvalPoint(step: c == 0 ? 0 : 10, compute: l, wallSeconds: 0, groups: [g], supportExpansion: 0, baseUnsolved: 0,
                             klToBase: 0, entropy: 0)
        }
        let r = CellResult(config: config, baseKey: "k", baseName: "s", baseParameters: 25472, status: "done", failure: nil, steps: 10,
                           curve: points, windows: [], compute: ledger, wallSeconds: 1)
        return try JSONEncoder().encode(r)
    }

    @Test func poolsSplitGroups() throws {
        let dir = NSTemporaryDirectory() + "rlscale-poolgroups-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/cells", withIntermediateDirectories: true)
        try document(bucket: nil, pool: nil, score: 0.3).write(to: URL(fileURLWithPath: dir + "/cells/a.json"))
        try document(bucket: .easy, pool: 64, score: 0.4).write(to: URL(fileURLWithPath: dir + "/cells/b.json"))
        try document(bucket: nil, pool: 64, score: 0.5).write(to: URL(fileURLWithPath: dir + "/cells/c.json"))
        let store = try CellStore.load(results: dir, score: try ScoreSelector(metric: "avg@4", group: "train_dist"))
        #expect(store.skipped.isEmpty, "\(store.skipped)")
        let labels = Dictionary(uniqueKeysWithValues: store.cells.map { ($0.id, $0.taskMix) })
        #expect(labels == ["a": "sort:1", "b": "sort:1 [easy D=64]", "c": "sort:1 [D=64]"])
        let report = GridAnalysis.run(store, score: try ScoreSelector(metric: "avg@4", group: "train_dist"),
                                      options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0)))
        #expect(report.groups.map(\.taskMix).sorted() == ["sort:1", "sort:1 [D=64]", "sort:1 [easy D=64]"])
    }
}

/// A folder that is not a result store is named as such, without Foundation's internals.
@Suite struct NotAResultStoreTests {
    @Test func statusAndFitSayWhatIsMissing() throws {
        let dir = NSTemporaryDirectory() + "rlscale-notastore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ResultStore(root: NSTemporaryDirectory(), grid: (dir as NSString).lastPathComponent)
        do {
            _ = try store.readManifest()
            Issue.record("read a manifest that does not exist")
        } catch {
            #expect(error.description.hasPrefix("\(store.gridDir) is not a result store: it has no manifest.json"), "\(error)")
            #expect(!error.description.contains("NSCocoaErrorDomain"))
        }
        do {
            _ = try CellStore.load(results: dir, score: try ScoreSelector(metric: "avg@4", group: "train_dist"))
            Issue.record("loaded cells from a folder without cells/")
        } catch {
            #expect(error.description.contains("\(dir) is not a result store: it has no cells/ folder"), "\(error)")
        }
    }
}

/// Documents a store cannot use are never a crash: `run` moves them to quarantine/ and runs
/// the cell again, `fit` skips them with the reason, and the law reader speaks the writer's schema.
@Suite struct IntegrityTests {
    /// A fresh store with an empty cells/ folder under the temporary directory.
    static func emptyStore(_ label: String) throws -> ResultStore {
        let store = ResultStore(root: NSTemporaryDirectory() + "rlscale-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", grid: "g")
        try FileManager.default.createDirectory(atPath: store.cellsDir, withIntermediateDirectories: true)
        return store
    }

    @Test func unusableDocumentsAreQuarantinedAndSkipped() throws {
        let store = try Self.emptyStore("integrity")
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let good = try PoolGroupTests().document(bucket: nil, pool: nil, score: 0.3)
        try good.write(to: URL(fileURLWithPath: store.cellPath("good")))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: store.cellPath("truncated")))
        var foreign = try #require(try JSONSerialization.jsonObject(with: good) as? [String: Any])
        foreign["schema"] = 99
        try JSONSerialization.data(withJSONObject: foreign).write(to: URL(fileURLWithPath: store.cellPath("foreign")))

        // fit skips both with their reasons and reads the good one.
        let cells = try CellStore.load(results: store.gridDir, score: try ScoreSelector(metric: "avg@4", group: "train_dist"))
        #expect(cells.cells.map(\.id) == ["good"])
        let reasons = Dictionary(uniqueKeysWithValues: cells.skipped.map { ($0.id, $0.reason) })
        #expect(reasons["foreign"]?.contains("result schema 99") == true, "\(reasons)")
        #expect(reasons["truncated"]?.hasPrefix("not a cell document") == true, "\(reasons)")

        // run's check: each unusable document moves to quarantine/, the good one stays.
        #expect(store.cellProblem("good") == nil && store.quarantineIfUnusable("good") == nil)
        let t = try #require(store.quarantineIfUnusable("truncated"))
        #expect(t.reason.hasPrefix("not JSON") && t.path == store.quarantineDir + "/truncated.json")
        let f = try #require(store.quarantineIfUnusable("foreign"))
        #expect(f.reason.hasPrefix("result schema 99"))
        #expect(!store.hasCell("truncated") && !store.hasCell("foreign") && store.hasCell("good"))
        #expect(FileManager.default.fileExists(atPath: t.path) && FileManager.default.fileExists(atPath: f.path))
    }

    /// Cells of different numerics versions are not mixed by fit unless asked.
    @Test func mixedNumericsAreRefused() throws {
        let store = try Self.emptyStore("numerics")
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let doc = try PoolGroupTests().document(bucket: nil, pool: nil, score: 0.3)
        try doc.write(to: URL(fileURLWithPath: store.cellPath("now")))
        var old = try #require(try JSONSerialization.jsonObject(with: doc) as? [String: Any])
        #expect(old["numerics"] as? Int == Numerics.version)
        old["numerics"] = Numerics.version + 1
        try JSONSerialization.data(withJSONObject: old).write(to: URL(fileURLWithPath: store.cellPath("other")))
        let score = try ScoreSelector(metric: "avg@4", group: "train_dist")
        do {
            _ = try CellStore.load(results: store.gridDir, score: score)
            Issue.record("a store with two numerics versions was fitted")
        } catch {
            #expect(error.description.contains("mixes results of different numerics: numerics \(Numerics.version): 1 cell(s) (now); "
                                               + "numerics \(Numerics.version + 1): 1 cell(s) (other)"), "\(error)")
        }
        let both = try CellStore.load(results: store.gridDir, score: score, allowMixedNumerics: true)
        #expect(both.cells.map(\.id).sorted() == ["now", "other"])
    }
}
