import ArgumentParser
import BasePolicies
import Foundation
import Grid
import PolicyModel
import RLCommon
import RLTraining

/// Loads a grid file, turning its errors into a validation message that names file, line and key.
/// Loads a grid file; a bad one is reported on stderr as `file:line: key: message` (no
/// usage banner: the command line was fine, the file was not) and exits with status 2.
func loadGrid(_ path: String) throws -> Grid {
    do { return try GridFile.load(path) } catch {
        FileHandle.standardError.write(Data(("Error: " + error.description + "\n").utf8))
        throw ExitCode(2)
    }
}

func parseShard(_ s: String) throws -> (Int, Int) {
    let parts = s.split(separator: "/")
    guard parts.count == 2, let i = Int(parts[0]), let k = Int(parts[1]), k >= 1, i >= 0, i < k else {
        throw ValidationError("--shard: '\(s)' must be I/K with 0 <= I < K")
    }
    return (i, k)
}

/// Left-justifies `s` in `width` columns.
func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }

/// Options read from the command line before the subcommand is parsed (main.swift).
enum LaunchOptions {
    /// `--blas-core NAME`, if given.
    nonisolated(unsafe) static var blasCore: String?
    /// `--simd LEVEL`, if given.
    nonisolated(unsafe) static var simd: String?
}

/// Prints `value` as one pretty-printed JSON object with sorted keys (every `--json` flag).
func printJSON(_ value: some Encodable) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Makes this process run the OpenBLAS core the grid's manifest pins (re-executing if
/// needed), so every cell of a grid is computed by the same kernels; a grid with no
/// manifest yet is pinned to the current core when its manifest is written.
func pinBLASCore(_ store: ResultStore, grid: String) throws {
    guard let pinned = store.pinnedBLASCore() else { return }
    if let requested = LaunchOptions.blasCore, requested.lowercased() != pinned.lowercased() {
        throw ValidationError(
            "--blas-core \(requested): grid '\(grid)' is pinned to OpenBLAS core \(pinned) by \(store.manifestPath); "
                + "its cells would mix results from two kernels (use another --results folder to start afresh)")
    }
    do { try BLASCore.run(pinned) } catch {
        throw ValidationError("grid '\(grid)' is pinned to OpenBLAS core \(pinned) by \(store.manifestPath): \(error)")
    }
    try pinSIMD(store, grid: grid)
}

/// Makes this process compute with the SIMD level the grid's manifest pins (refusing a
/// different `--simd`, or a level this CPU cannot run); a grid with no manifest yet is
/// pinned to the current level when its manifest is written.
func pinSIMD(_ store: ResultStore, grid: String) throws {
    guard let pinned = store.pinnedSIMD() else { return }
    if let requested = LaunchOptions.simd, requested.lowercased() != pinned.lowercased() {
        throw ValidationError(
            "--simd \(requested): grid '\(grid)' is pinned to SIMD level \(pinned) by \(store.manifestPath) "
                + "(use another --results folder to start afresh)")
    }
    do { SIMDLevel.use(try SIMDLevel.checked(pinned)) } catch {
        throw ValidationError("grid '\(grid)' is pinned to SIMD level \(pinned) by \(store.manifestPath): \(error)")
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a grid on this node: bases first, then one worker process per cell, resumably.",
        discussion: """
            Each cell runs in its own worker process with single-threaded BLAS, --jobs at a \
            time. A cell's identity is a hash of its resolved configuration, its base and \
            the result schema, and its document is written atomically when it finishes, so \
            rerunning the same command skips finished cells: a killed or interrupted run \
            (Ctrl-C) resumes where it stopped. Crashed workers are retried; a cell that fails \
            for good is recorded with its reason and the grid goes on. --shard I/K runs every \
            K-th cell starting at I (how Slurm array tasks split a grid); a lock stops two \
            runners from working the same shard.

            A failed cell is reported when it fails (its reason: exit status, signal or the \
            error its document records, and where its log is) and again in the final summary, \
            with any failed cell an earlier run recorded. The exit status is 1 when some cell \
            of the shard has failed (so `rlscale run GRID && rlscale fit …` stops), 130 when \
            interrupted, 0 otherwise. `rlscale status` lists the failed cells with their \
            reasons; `rlscale slurm --resubmit-failed` reruns them on Slurm, and deleting a \
            failed document (results/<grid>/cells/<id>.json) reruns it locally.
            """)

    @Argument(help: "Grid file, e.g. grids/quick.toml.") var grid: String
    @Option(help: "Worker processes at a time (default: the core count).") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Run shard I of K (0-based), e.g. 0/4.") var shard: String = "0/1"
    @Option(help: "Results root (the grid's store is RESULTS/<grid name>).") var results: String = "results"
    @Flag(help: "Only pretrain the grid's bases.") var basesOnly = false

    func run() throws {
        let g = try loadGrid(grid)
        let (i, k) = try parseShard(shard)
        let store = ResultStore(root: results, grid: g.name)
        try pinBLASCore(store, grid: g.name)
        var runner = GridRunner(grid: g, gridFile: grid, store: store, executor: LocalExecutor(jobs: jobs), shard: (i, k), log: stderrLine)
        runner.basesOnly = basesOnly
        let s = try runner.run()
        let earlier = s.failures.filter(\.earlier).count
        stderrLine("grid \(g.name): \(s.done + s.skipped - earlier) of \(s.total) cells done (\(s.skipped - earlier) from earlier runs), "
                   + "\(s.failed + earlier) failed" + (earlier > 0 ? " (\(earlier) in earlier runs)" : ""))
        for f in s.failures {
            stderrLine("  failed " + f.line)
        }
        if s.interrupted {
            // Slurm's warning before the time limit (`--signal=B:USR1@…` in the array
            // script): put this task back in the queue; it resumes where it stopped.
            if s.interruptSignal == SIGUSR1, let job = ProcessInfo.processInfo.environment["SLURM_JOB_ID"] {
                switch SlurmExecutor.requeue(jobID: job) {
                case .success:
                    stderrLine("requeued Slurm job \(job) (SIGUSR1 before its time limit); it resumes where it stopped")
                    return
                case .failure(let e):
                    stderrLine("could not requeue Slurm job \(job): \(e); rerun or `rlscale slurm --resubmit-failed`")
                }
            }
            throw ExitCode(130)
        }
        if !s.failures.isEmpty { throw ExitCode(1) }
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a grid's expanded cells, bases, total FLOPs and an estimated wall time.",
        discussion: """
            The estimate comes from a short calibration of training and sampling throughput \
            for each base size on this machine (single-threaded, as workers run), applied to \
            each cell's budget (a quarter sampling, three quarters training) and each base's \
            pretraining, scheduled as `run` does on --jobs workers: bases first, then cells, \
            longest first, each on the first free worker. Evaluation, pool building and the \
            per-step overheads of small batches are not in it (the quick grid took 1.1× its \
            estimate on this project's machine).
            """)

    @Argument(help: "Grid file.") var grid: String
    @Option(help: "Workers the estimate assumes.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object.") var json = false

    struct Output: Codable {
        var grid: String
        var cells: Int
        var bases: [String]
        var totalFlops: Double
        var cellFlops: Double
        var baseFlops: Double
        var estimatedSeconds: Double
        var jobs: Int
        var cellList: [GridCell]
        enum CodingKeys: String, CodingKey {
            case grid, cells, bases, jobs
            case totalFlops = "total_flops", cellFlops = "cell_flops", baseFlops = "base_flops"
            case estimatedSeconds = "estimated_seconds", cellList = "cell_list"
        }
    }

    func run() throws {
        let g = try loadGrid(grid)
        setBLASThreads(1)
        var rate: [String: (train: Double, sample: Double)] = [:]
        for b in g.bases {
            let r = try EngineBenchmark.measure(EngineBenchmark.Case(name: b.name, config: b.model, batch: 32), peak: 1, minSeconds: 0.2)
            rate[b.name] = (r.trainGflops * 1e9, r.sampleGflops * 1e9)
        }
        var cellSeconds: [Double] = [], baseSeconds: [Double] = [], cellFlops = 0.0, baseFlops = 0.0
        for c in g.cells {
            cellFlops += c.config.budgetFLOPs
            if let r = rate[c.base] { cellSeconds.append(c.config.budgetFLOPs * (0.25 / r.sample + 0.75 / r.train)) }
        }
        for b in g.bases {
            // Pretraining: ~2.5 processed positions per completion token (prompts and padding).
            let f = 2.5 * Double(b.tokenBudget) * FLOPs.trainSequence(b.model, length: 48) / 48
            baseFlops += f
            if let r = rate[b.name] { baseSeconds.append(f / r.train) }
        }
        let est = Self.makespan(baseSeconds, workers: jobs) + Self.makespan(cellSeconds, workers: jobs)
        if json {
            let out = Output(
                grid: g.name, cells: g.cells.count, bases: g.bases.map(\.name), totalFlops: cellFlops + baseFlops,
                cellFlops: cellFlops, baseFlops: baseFlops, estimatedSeconds: est, jobs: jobs, cellList: g.cells)
            try printJSON(out)
            return
        }
        print("grid \(g.name): \(g.description)")
        print("bases: \(g.bases.map { "\($0.name) (\($0.model.nonEmbeddingParameterCount) params, \($0.tokenBudget) tokens)" }.joined(separator: ", "))")
        print("cell       base  method            n   Bp      budget       lr  lag  curriculum    tasks")
        for c in g.cells {
            let k = c.config
            print(String(c.id.prefix(8)) + "  " + pad(c.base, 4) + "  " + pad(k.method, 16)
                + String(format: " %3d %4d %11.3g %8.2g %4d  ", k.rolloutsPerProblem, k.problemsPerBatch, k.budgetFLOPs, Double(k.learningRate), k.policyLag)
                + pad(k.curriculum.description, 12) + "  " + k.tasks.description
                + (k.methodLabel == k.method ? "" : "  " + k.methodLabel))
        }
        print(String(format: "%d cells, %d bases, %.3g FLOPs in all (cells %.3g, bases %.3g); about %.0f s on %d worker(s)",
                     g.cells.count, g.bases.count, cellFlops + baseFlops, cellFlops, baseFlops, est, jobs))
    }
}

extension Plan {
    /// Wall time of `tasks` on `workers` workers, longest first, each on the first free worker.
    static func makespan(_ tasks: [Double], workers: Int) -> Double {
        var free = [Double](repeating: 0, count: max(1, workers))
        for t in tasks.sorted(by: >) {
            guard let i = free.indices.min(by: { free[$0] < free[$1] }) else { break }
            free[i] += t
        }
        return free.max() ?? 0
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show done, failed and pending cells per method of a grid's result store.")

    @Argument(help: "The grid's result folder, e.g. results/quick.") var results: String

    func run() throws {
        let dir = URL(fileURLWithPath: results)
        let store = ResultStore(root: dir.deletingLastPathComponent().path, grid: dir.lastPathComponent)
        let m = try store.readManifest()
        var rows: [String: (done: Int, failed: Int, pending: Int)] = [:]
        var failures: [GridRunner.Failure] = []
        for c in m.grid.cells {
            var r = rows[c.config.methodLabel] ?? (0, 0, 0)
            if store.hasCell(c.id), let problem = store.cellProblem(c.id) {
                FileHandle.standardError.write(Data("warning: cell \(c.id): \(problem) (counted pending; `run` moves it to quarantine/)\n".utf8))
                r.pending += 1
            } else if store.hasCell(c.id) {
                if let doc = try? store.readCell(c.id), let f = GridRunner.Failure.recorded(doc, id: c.id, store: store, earlier: false) {
                    r.failed += 1
                    failures.append(f)
                } else {
                    r.done += 1
                }
            } else {
                r.pending += 1
            }
            rows[c.config.methodLabel] = r
        }
        let width = max(18, (rows.keys.map(\.count).max() ?? 0) + 1)
        print(pad("method", width) + "  done  failed  pending")
        for (k, r) in rows.sorted(by: { $0.key < $1.key }) {
            print(pad(k, width) + String(format: " %5d %7d %8d", r.done, r.failed, r.pending))
        }
        let t = rows.values.reduce((0, 0, 0)) { ($0.0 + $1.done, $0.1 + $1.failed, $0.2 + $1.pending) }
        print(pad("all", width) + String(format: " %5d %7d %8d", t.0, t.1, t.2))
        for f in failures { print("failed " + f.line) }
        // Documents of cells this grid no longer has: another numerics version (their ids
        // changed) or an edited grid. `fit` refuses to mix numerics versions.
        let ids = Set(m.grid.cells.map(\.id))
        let stale = ((try? FileManager.default.contentsOfDirectory(atPath: store.cellsDir)) ?? [])
            .filter { $0.hasSuffix(".json") && !ids.contains(String($0.dropLast(5))) }
        if !stale.isEmpty {
            print("stale: \(stale.count) document(s) in \(store.cellsDir) belong to no cell of this grid (another numerics "
                  + "version, \(Numerics.version) now, or an edited grid); `rlscale fit` refuses mixed numerics unless --allow-mixed")
        }
        slurmStates(store, grid: m.grid)
    }

    /// Each shard's Slurm state and cells, when the grid was submitted with `rlscale slurm`.
    func slurmStates(_ store: ResultStore, grid: Grid) {
        guard let k = store.slurmSubmissions().last?.shards else { return }
        let q = store.slurmTasks()
        print("slurm (\(k) shards; states from \(q.source)):")
        print("shard  task            state         done  failed  pending")
        for i in 0..<k {
            let states = grid.shard(i, of: k).map { store.state(of: $0.id) }
            let done = states.filter { $0 == .done }.count, failed = states.filter { $0 == .failed }.count
            let pending = states.count - done - failed
            let task = q.ids[i] ?? "-"
            let state = q.ids[i].map { q.states[$0] ?? "not queued" } ?? "never submitted"
            print(String(format: "%5d  ", i) + pad(task, 15) + " " + pad(state, 12) + String(format: " %5d %7d %8d", done, failed, pending))
        }
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Internal: run one cell or build one base of a grid (used by run).",
        shouldDisplay: false)

    @Option var results: String
    @Option var grid: String
    @Option var cell: String?
    @Option var base: String?

    func run() throws {
        setBLASThreads(1)
        let store = ResultStore(root: results, grid: grid)
        if let base { try Worker.runBase(base, store: store) } else if let cell { try Worker.runCell(cell, store: store) } else {
            throw ValidationError("give --cell or --base")
        }
    }
}

struct Slurm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a grid as a Slurm job array: a base-pretraining job, then one array task per shard.",
        discussion: """
            Writes RESULTS/<grid>/slurm/bases.sbatch and cells.sbatch and submits them; the \
            array depends on the base job (--dependency=afterok). Array task i runs \
            `rlscale run GRID --shard i/K`, so tasks are resumable exactly like local runs. \
            Tasks are requeueable (--requeue): Slurm's SIGTERM (cancellation, preemption, \
            requeue) abandons the running cell, and a SIGUSR1 sent --signal-grace seconds \
            before the time limit makes the task requeue itself; a restarted task skips the \
            cells already written. Submissions are recorded in slurm/jobs.json; `rlscale \
            status` shows each shard's Slurm state. --resubmit-failed submits only the shards \
            with failed or missing cells that are not still queued or running (their failed \
            documents move to failed/, kept). --dry-run prints the scripts without submitting.
            """)

    @Argument(help: "Grid file.") var grid: String
    @Option(help: "Slurm partition (default: the cluster's default).") var partition: String?
    @Option(help: "Time limit per job, Slurm syntax.") var time: String = "04:00:00"
    @Option(help: "CPUs per task (workers per shard).") var cpusPerTask: Int = 1
    @Option(help: "At most this many array tasks at once.") var arrayParallelism: Int?
    @Option(help: "Array tasks K (default: one per cell).") var shards: Int?
    @Option(help: "Results root.") var results: String = "results"
    @Option(help: "Seconds before the time limit at which a task is told (SIGUSR1) to requeue itself.")
    var signalGrace: Int = 120
    @Flag(help: "Submit only the shards with failed or missing cells (not those still queued or running).")
    var resubmitFailed = false
    @Flag(help: "Print the scripts instead of submitting.") var dryRun = false
    @Flag(help: "Wait until the array has finished (sbatch --wait).") var wait = false

    func run() throws {
        let g = try loadGrid(grid)
        let store = ResultStore(root: results, grid: g.name)
        try pinBLASCore(store, grid: g.name)
        if !dryRun {
            do {
                try store.createDirectories()
                try store.writeManifest(g, gridFile: grid)  // pins the core before any task starts
            } catch {
                throw ValidationError("cannot write \(store.manifestPath): \(error.localizedDescription)")
            }
        }
        let previous = store.slurmSubmissions()
        let k = shards ?? previous.last?.shards ?? g.cells.count
        var tasks: [Int]? = nil
        if resubmitFailed {
            if let last = previous.last, last.shards != k {
                throw ValidationError("--shards \(k) differs from the \(last.shards) shards of the last submission (slurm/jobs.json)")
            }
            let queue = store.slurmTasks(maxAge: 0)
            let active = Set(queue.ids.filter { SlurmQueue.isActive(queue.states[$0.value] ?? "") }.keys)
            let todo = store.shardsToResubmit(g, shards: k, active: active)
            guard !todo.isEmpty else {
                print("nothing to resubmit: every shard's cells are done" + (active.isEmpty ? "" : " or still queued (\(active.count) shard(s))"))
                return
            }
            if !dryRun {
                let cells = todo.flatMap { g.shard($0, of: k) }
                let moved = try store.setAsideFailed(cells)
                if moved > 0 { print("moved \(moved) failed cell document(s) to \(store.gridDir)/failed/") }
            }
            tasks = todo
        }
        let ex = SlurmExecutor(
            partition: partition, time: time, cpusPerTask: cpusPerTask, arrayParallelism: arrayParallelism,
            shards: k, tasks: tasks, signalGrace: signalGrace)
        let s = ex.scripts(grid: g, gridFile: grid, results: results, binary: LocalExecutor.currentExecutable())
        if dryRun {
            print("# \(s.directory)/bases.sbatch\n\(s.base)\n# \(s.directory)/cells.sbatch\n\(s.array)")
            return
        }
        let ids = try ex.submit(s, wait: false)
        let submitted = tasks ?? Array(0..<k)
        try store.recordSubmission(SlurmSubmission(
            baseJob: ids.base, arrayJob: ids.array, shards: k, tasks: submitted, submitted: Date().timeIntervalSince1970))
        print("submitted base job \(ids.base) and array job \(ids.array) (\(submitted.count) of \(k) shards, after base job)")
        if wait { SlurmExecutor.waitFor(jobID: ids.array) }
    }
}
