import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import RLTraining
import Rewards

/// Runs a grid (or one shard of it) on this node: bases first, then one worker process
/// per cell; finished cells are skipped, so a killed run resumes where it stopped.
public struct GridRunner {
    public var grid: Grid
    public var gridFile: String
    public var store: ResultStore
    public var executor: LocalExecutor
    public var shard: (index: Int, count: Int)
    public var log: (String) -> Void
    /// Build every base of the grid and run no cell (the first job of a Slurm submission).
    public var basesOnly = false

    public init(grid: Grid, gridFile: String, store: ResultStore, executor: LocalExecutor, shard: (Int, Int) = (0, 1), log: @escaping (String) -> Void) {
        self.grid = grid
        self.gridFile = gridFile
        self.store = store
        self.executor = executor
        self.shard = shard
        self.log = log
    }

    /// A cell that failed: in this run, or recorded as failed by an earlier one.
    public struct Failure: Sendable, Hashable {
        public var id: String
        /// The exit status or signal, or the error the cell's document records.
        public var reason: String
        /// Where its worker's log is.
        public var log: String
        /// Whether an earlier run recorded it (this run skipped it).
        public var earlier: Bool

        public init(id: String, reason: String, log: String, earlier: Bool) {
            self.id = id; self.reason = reason; self.log = log; self.earlier = earlier
        }

        /// The failure a cell's document records (nil unless its status is failed).
        public static func recorded(_ doc: CellResult, id: String, store: ResultStore, earlier: Bool) -> Failure? {
            doc.status == "failed" ? Failure(id: id, reason: doc.failure ?? "failed", log: store.logPath(id), earlier: earlier) : nil
        }

        /// "REASON (log: PATH)", the log named once (a worker's reason already points at it).
        public var detail: String { reason + (reason.contains("logs/\(id).log") ? "" : " (log: \(log))") }
        /// "ID (earlier run): REASON (log: PATH)".
        public var line: String { id + (earlier ? " (earlier run)" : "") + ": " + detail }
    }

    public struct Summary: Sendable {
        public var done = 0, failed = 0, skipped = 0, total = 0
        /// Every failed cell of the shard, in the order met (earlier failures first).
        public var failures: [Failure] = []
        public var interrupted = false
        /// The signal that interrupted the run (SIGINT, SIGTERM, SIGUSR1), 0 if none.
        public var interruptSignal: Int32 = 0
    }

    public enum RunError: Error, CustomStringConvertible {
        case locked(String)
        case io(String)
        public var description: String {
            switch self {
            case .locked(let s): s
            case .io(let s): s
            }
        }
    }

    public func run() throws(RunError) -> Summary {
        do {
            try store.createDirectories()
            try store.writeManifest(grid, gridFile: gridFile)
        } catch {
            throw .io("cannot prepare \(store.gridDir): \(error)")
        }
        let lockPath = "\(store.gridDir)/.lock-shard-\(shard.index)-of-\(shard.count)"
        guard let lock = FileLock(path: lockPath, wait: false) else {
            throw .locked("another runner is working shard \(shard.index)/\(shard.count) of grid '\(grid.name)' (\(lockPath))")
        }
        defer { _ = lock }
        let cells = basesOnly ? [] : grid.shard(shard.index, of: shard.count)
        var summary = Summary(total: cells.count)
        let common = ["worker", "--results", store.root, "--grid", grid.name]

        // One queue: the bases this shard needs that are not cached yet (largest first,
        // as it takes longest), then the unfinished cells, each waiting only for its own
        // base, so cells of a small base run while a larger one still pretrains.
        let needed = basesOnly ? Set(grid.bases.map(\.name)) : Set(cells.map(\.base))
        let toBuild = grid.bases.filter { needed.contains($0.name) && !store.bases.contains($0) }
            .sorted { $0.model.nonEmbeddingParameterCount > $1.model.nonEmbeddingParameterCount }
        let baseJobs = toBuild.map { b in
            LocalExecutor.Job(
                id: "base-\(b.name)", arguments: common + ["--base", b.name], log: store.logPath("base-\(b.name)-\(b.key)"),
                flops: 0)
        }
        if !baseJobs.isEmpty { log("pretraining \(baseJobs.count) base(s): \(baseJobs.map(\.id).joined(separator: ", "))") }
        // A document that cannot be used (corrupt, truncated, another schema) is moved aside
        // and its cell run again.
        for c in cells {
            if let q = store.quarantineIfUnusable(c.id) { log("cell \(c.id): \(q.reason); moved to \(q.path), running it again") }
        }
        let todo = cells.filter { !store.hasCell($0.id) }
        summary.skipped = cells.count - todo.count
        for c in cells where store.hasCell(c.id) {
            if let doc = try? store.readCell(c.id), let f = Failure.recorded(doc, id: c.id, store: store, earlier: true) { summary.failures.append(f) }
        }
        if summary.skipped > 0 { log("\(summary.skipped) of \(cells.count) cells already finished; skipping them") }
        let building = Set(toBuild.map(\.name))
        let cellJobs = todo.map { c in
            LocalExecutor.Job(
                id: c.id, arguments: common + ["--cell", c.id], log: store.logPath(c.id), flops: c.config.budgetFLOPs,
                after: building.contains(c.base) ? "base-\(c.base)" : nil)
        }
        let totalFlops = todo.reduce(0.0) { $0 + $1.config.budgetFLOPs }
        var doneFlops = 0.0
        var failedBases: [String] = []
        let start = Date()
        let byID = Dictionary(uniqueKeysWithValues: todo.map { ($0.id, $0) })
        let isDone = { (j: LocalExecutor.Job) -> Bool in
            if let b = toBuild.first(where: { "base-\($0.name)" == j.id }) { return store.bases.contains(b) }
            return store.hasCell(j.id)
        }
        let (_, interrupted) = executor.run(baseJobs + cellJobs, isDone: isDone) { job, o in
            guard let cell = byID[job.id] else {  // a base
                if o.ok { log("\(job.id) ready") } else {
                    log("\(job.id) failed: \(o.reason)")
                    failedBases.append(job.id)
                }
                return
            }
            doneFlops += job.flops
            var failure: String?
            if o.ok {
                let doc = try? store.readCell(job.id)
                if doc?.status == "failed" { failure = doc?.failure ?? "failed" } else { summary.done += 1 }
            } else if o.attempts == 0 {
                failure = "its base failed; the cell stays pending for the next run"
            } else if let base = grid.base(named: cell.base) {
                failure = o.reason
                let doc = CellResult.failed(
                    config: cell.config, baseKey: base.key, baseName: base.name,
                    baseParameters: base.model.nonEmbeddingParameterCount, reason: o.reason)
                try? store.writeCell(doc, id: job.id)
            }
            if let failure {
                summary.failed += 1
                summary.failures.append(Failure(id: job.id, reason: failure, log: job.log, earlier: false))
                log("cell \(job.id) failed: " + (summary.failures.last?.detail ?? failure))
            }
            let elapsed = Date().timeIntervalSince(start)
            let eta = doneFlops > 0 ? elapsed * (totalFlops - doneFlops) / doneFlops : 0
            log(String(
                format: "cells %d/%d done, %d failed | %.3g of %.3g FLOPs | ", summary.done + summary.skipped, summary.total,
                summary.failed, doneFlops, totalFlops)
                + "\(cell.config.method) \(job.id) | ETA \(formatDuration(eta))")
        }
        if !failedBases.isEmpty && !interrupted {
            throw .io("base(s) \(failedBases.joined(separator: ", ")) could not be built; their cells stay pending (see \(store.logsDir))")
        }
        summary.interrupted = interrupted
        summary.interruptSignal = interrupted ? LocalExecutor.interruptSignal : 0
        if interrupted { log("interrupted: finished cells are saved; rerun the same command to resume") }
        return summary
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}

/// What a worker process does: build one base, or run one cell and write its document.
public enum Worker {
    /// Refuses to work under another OpenBLAS core than the one the grid pins, and computes
    /// with the SIMD level it pins (refusing, with the missing CPU features, on a node that
    /// cannot run it).
    static func checkCore(_ m: ResultStore.Manifest) throws {
        if let pinned = m.blasCore, pinned.lowercased() != BLASCore.current.lowercased() {
            throw GridRunner.RunError.io(
                "grid '\(m.grid.name)' is pinned to OpenBLAS core \(pinned) but this worker loaded \(BLASCore.current)")
        }
        if let pinned = m.simd {
            do { SIMDLevel.use(try SIMDLevel.checked(pinned)) } catch {
                throw GridRunner.RunError.io("grid '\(m.grid.name)' is pinned to SIMD level \(pinned): \(error)")
            }
        }
    }

    public static func runBase(_ name: String, store: ResultStore) throws {
        let m = try store.readManifest()
        try checkCore(m)
        guard let spec = m.grid.base(named: name) else { throw GridRunner.RunError.io("base '\(name)' is not in the manifest") }
        try obtainBase(spec, grid: m.grid, store: store)
    }

    /// The learned reward model a cell trains on (nil unless `reward = "rm"`), from the
    /// cache or trained now; its starting base (`rm_size`) is obtained like any base.
    public static func rewardModel(
        for config: CellConfig, policy: (Transformer, BaseRecord), grid: Grid, store: ResultStore
    ) throws -> RewardModel? {
        guard let size = config.rewardModel?.size else { return nil }
        guard let rmSpec = size == "base" ? policy.1.spec : grid.base(named: size) else {
            throw GridRunner.RunError.io("rm_size '\(size)' is not a base of the grid")
        }
        let (rmBase, rmRecord) = try obtainBase(rmSpec, grid: grid, store: store)
        guard let request = config.rewardModelRequest(policyBase: policy.1, rmBase: rmRecord) else { return nil }
        return try RewardModelCache(directory: store.bases.directory).obtain(request, policyBase: policy.0, rmBase: rmBase) { print($0) }
    }

    /// A grid's base: cached, or pretrained and evaluated as the grid asks.
    @discardableResult
    public static func obtainBase(_ spec: BaseSpec, grid: Grid, store: ResultStore) throws -> (Transformer, BaseRecord) {
        // One builder per base across processes and shards.
        let lock = FileLock(path: "\(store.bases.directory)/\(spec.name)-\(spec.key).lock", wait: true)
        defer { _ = lock }
        return try store.bases.obtain(
            spec, evalSet: EvalSetSpec(problemsPerLevel: grid.baseEvalProblems), evalOptions: EvalOptions(samples: grid.baseEvalSamples)
        ) { print($0) }
    }

    public static func runCell(_ id: String, store: ResultStore) throws {
        let m = try store.readManifest()
        try checkCore(m)
        guard let cell = m.grid.cells.first(where: { $0.id == id }), let spec = m.grid.base(named: cell.base) else {
            throw GridRunner.RunError.io("cell '\(id)' is not in the manifest")
        }
        let (base, record) = try obtainBase(spec, grid: m.grid, store: store)
        let pool = try cell.config.poolRequest(base: record).map { try store.bases.obtainPool(spec, $0, base: base) { print($0) } }
        let rewardModel = try Self.rewardModel(for: cell.config, policy: (base, record), grid: m.grid, store: store)
        let result = try CellRunner(config: cell.config, base: base, baseRecord: record, pool: pool, rewardModel: rewardModel) {
            print($0)
        }.run()
        try store.writeCell(result, id: id)
    }
}
