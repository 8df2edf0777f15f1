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

    public init(partition: String?, time: String, cpusPerTask: Int, arrayParallelism: Int?, shards: Int) {
        self.partition = partition
        self.time = time
        self.cpusPerTask = cpusPerTask
        self.arrayParallelism = arrayParallelism
        self.shards = max(1, shards)
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
        let range = "0-\(shards - 1)" + (arrayParallelism.map { "%\($0)" } ?? "")
        let array = header + """
            #SBATCH --job-name=rlscale-\(grid.name)
            #SBATCH --array=\(range)
            #SBATCH --output=\(dir)/logs/cells_%A_%a.txt
            # Task i of K runs shard i/K of grid '\(grid.name)' (\(grid.cells.count) cells): every K-th cell from i.
            set -euo pipefail
            export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=\(core)
            exec \(run) --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT:-\(shards)}" --jobs "${SLURM_CPUS_PER_TASK:-1}"

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
}
