import Foundation
import PolicyModel

/// Runs a grid as a Slurm job array: a first job pretrains the bases, then an array whose
/// task i runs shard i of K with `rlscale run --shard i/K` and starts only after the base
/// job succeeded (`--dependency=afterok`). Slurm is the distributed engine; each task is
/// the same resumable local runner, so a requeued or resubmitted task skips finished cells.
public struct SlurmExecutor: Sendable {
    public var partition: String?
    public var time: String
    public var cpusPerTask: Int
    /// At most this many array tasks at once (`--array=0-(K-1)%P`), or unlimited.
    public var arrayParallelism: Int?
    /// Array tasks K (shards).
    public var shards: Int
    /// The shards to submit (nil: all K); a resubmission names only some.
    public var tasks: [Int]?
    /// Seconds before the time limit at which Slurm sends SIGUSR1 to the task, which then
    /// abandons its running cell and requeues itself.
    public var signalGrace: Int

    public init(
        partition: String?, time: String, cpusPerTask: Int, arrayParallelism: Int?, shards: Int, tasks: [Int]? = nil,
        signalGrace: Int = 120
    ) {
        self.partition = partition
        self.time = time
        self.cpusPerTask = cpusPerTask
        self.arrayParallelism = arrayParallelism
        self.shards = max(1, shards)
        self.tasks = tasks
        self.signalGrace = signalGrace
    }

    public struct Scripts: Sendable {
        public var base: String
        public var array: String
        public var directory: String
    }

    public enum SlurmError: Error, CustomStringConvertible {
        case submit(String)
        case io(String)
        public var description: String {
            switch self {
            case .submit(let s): "sbatch failed: \(s)"
            case .io(let s): s
            }
        }
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The two batch scripts, with absolute paths so that jobs may start in any directory.
    /// Every job runs OpenBLAS core `core` (the grid's pinned one), and refuses to start on
    /// a node whose CPU cannot run it.
    public func scripts(grid: Grid, gridFile: String, results: String, binary: String, core: String = BLASCore.current) -> Scripts {
        let abs = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.path }
        let store = ResultStore(root: abs(results), grid: grid.name)
        let dir = store.gridDir + "/slurm"
        var header = "#!/usr/bin/env bash\n"
        if let partition { header += "#SBATCH --partition=\(partition)\n" }
        header += "#SBATCH --time=\(time)\n#SBATCH --cpus-per-task=\(cpusPerTask)\n#SBATCH --ntasks=1\n"
        let run = "\(Self.quote(abs(binary))) run \(Self.quote(abs(gridFile))) --results \(Self.quote(store.root))"
        let base = header + """
            #SBATCH --job-name=rlscale-\(grid.name)-bases
            #SBATCH --output=\(dir)/logs/bases_%j.txt
            # Pretrain (or find in the cache) every base of grid '\(grid.name)'.
            set -euo pipefail
            export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=\(core)
            exec \(run) --bases-only --jobs "${SLURM_CPUS_PER_TASK:-1}"

            """
        let range = arrayRange + (arrayParallelism.map { "%\($0)" } ?? "")
        // --requeue: a preempted, failed-node or requeued task goes back to the queue;
        // B:USR1@grace: the runner (exec'd, so it is the batch step's process) gets SIGUSR1
        // before the time limit, abandons its running cell and requeues itself. A restarted
        // task appends to its log and skips the cells already written.
        let array = header + """
            #SBATCH --job-name=rlscale-\(grid.name)
            #SBATCH --array=\(range)
            #SBATCH --requeue
            #SBATCH --signal=B:USR1@\(signalGrace)
            #SBATCH --open-mode=append
            #SBATCH --output=\(dir)/logs/cells_%A_%a.txt
            # Task i runs shard i/\(shards) of grid '\(grid.name)' (\(grid.cells.count) cells): every \(shards)-th cell from i.
            set -euo pipefail
            export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=\(core)
            exec \(run) --shard "${SLURM_ARRAY_TASK_ID}/\(shards)" --jobs "${SLURM_CPUS_PER_TASK:-1}"

            """
        return Scripts(base: base, array: array, directory: dir)
    }

    /// Writes the scripts and submits them; returns the base and array job ids. With
    /// `wait`, returns only when the array has finished.
    public func submit(_ s: Scripts, wait: Bool) throws(SlurmError) -> (base: String, array: String) {
        do {
            try FileManager.default.createDirectory(atPath: s.directory + "/logs", withIntermediateDirectories: true)
            try s.base.write(toFile: s.directory + "/bases.sbatch", atomically: true, encoding: .utf8)
            try s.array.write(toFile: s.directory + "/cells.sbatch", atomically: true, encoding: .utf8)
        } catch {
            throw .io("cannot write scripts to \(s.directory): \(error.localizedDescription)")
        }
        let baseID = try sbatch(["--parsable", s.directory + "/bases.sbatch"])
        var args = ["--parsable", "--dependency=afterok:\(baseID)"]
        if wait { args.append("--wait") }
        let arrayID = try sbatch(args + [s.directory + "/cells.sbatch"])
        return (baseID, arrayID)
    }

    /// The `--array` indices: "0-(K−1)", or the listed shards ("1,4,7").
    var arrayRange: String {
        guard let tasks, !tasks.isEmpty else { return "0-\(shards - 1)" }
        return tasks.sorted().map(String.init).joined(separator: ",")
    }

    func sbatch(_ args: [String]) throws(SlurmError) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch"] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw .submit("cannot run sbatch: \(error.localizedDescription)") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0 else {
            throw .submit("sbatch \(args.joined(separator: " ")): " + String(decoding: e, as: UTF8.self) + text)
        }
        // --parsable prints "jobid" or "jobid;cluster"; with --wait Slurm may print more lines.
        return String(text.split(separator: "\n").first?.split(separator: ";").first ?? "")
    }

    /// Returns when no task of job `jobID` is queued or running any more (polling `squeue`
    /// every `interval` seconds; a requeued task counts as queued).
    public static func waitFor(jobID: String, interval: Double = 2) {
        while true {
            let r = command("squeue", ["-h", "-j", jobID, "-o", "%i"])
            if r.status != 0 || r.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// Requeues a running job (`scontrol requeue ID`).
    public static func requeue(jobID: String) -> Result<Void, SlurmError> {
        let r = command("scontrol", ["requeue", jobID])
        return r.status == 0 ? .success(()) : .failure(.submit("scontrol requeue \(jobID): \(r.output)"))
    }

    /// Runs a Slurm client; returns its exit status and its output (stdout then stderr).
    static func command(_ name: String, _ args: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [name] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "cannot run \(name): \(error.localizedDescription)") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self) + String(decoding: e, as: UTF8.self))
    }
}
