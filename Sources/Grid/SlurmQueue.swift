import Foundation
import RLCommon

/// One `rlscale slurm` submission, kept in RESULTS/<grid>/slurm/jobs.json (newest last), so
/// that `status` can ask Slurm about the tasks and `--resubmit-failed` knows K.
public struct SlurmSubmission: Codable, Sendable, Equatable {
    public var baseJob: String
    public var arrayJob: String
    /// K: the grid's cells are split round-robin into K shards.
    public var shards: Int
    /// The shards this submission ran (all K, or those a resubmission named).
    public var tasks: [Int]
    /// Seconds since 1970.
    public var submitted: Double

    public init(baseJob: String, arrayJob: String, shards: Int, tasks: [Int], submitted: Double) {
        self.baseJob = baseJob; self.arrayJob = arrayJob; self.shards = shards; self.tasks = tasks; self.submitted = submitted
    }
}

extension ResultStore {
    var slurmDir: String { gridDir + "/slurm" }
    var submissionsPath: String { slurmDir + "/jobs.json" }

    /// Every recorded submission, oldest first (none for a store never run through Slurm).
    public func slurmSubmissions() -> [SlurmSubmission] {
        guard let d = FileManager.default.contents(atPath: submissionsPath) else { return [] }
        return (try? JSONDecoder().decode([SlurmSubmission].self, from: d)) ?? []
    }

    /// Appends a submission to jobs.json (atomically).
    public func recordSubmission(_ s: SlurmSubmission) throws {
        try FileManager.default.createDirectory(atPath: slurmDir, withIntermediateDirectories: true)
        try AtomicFile.write(try Self.encoder.encode(slurmSubmissions() + [s]), to: submissionsPath)
    }

    /// The shard each submitted task belongs to, mapped to its Slurm id ("JOB_TASK") in the
    /// newest submission that ran it.
    public func latestTaskIDs() -> [Int: String] {
        var out: [Int: String] = [:]
        for s in slurmSubmissions() { for t in s.tasks { out[t] = "\(s.arrayJob)_\(t)" } }
        return out
    }

    /// What Slurm says about the newest task of every submitted shard: the shard's task id
    /// ("JOB_TASK"), the states by task id, and where they came from (see
    /// `SlurmQueue.taskStates`; `maxAge` 0 asks Slurm afresh).
    public func slurmTasks(maxAge: Double = 30) -> (ids: [Int: String], states: [String: String], source: String) {
        let ids = latestTaskIDs()
        let jobs = Set(ids.values.compactMap { $0.split(separator: "_").first.map(String.init) }).sorted()
        let q = SlurmQueue.taskStates(jobs: jobs, cache: slurmDir + "/queue-cache.json", maxAge: maxAge)
        return (ids, q.states, q.source)
    }

    /// Shards (of K) holding a failed, unusable or missing cell document, leaving out
    /// `active` shards (still queued or running).
    public func shardsToResubmit(_ grid: Grid, shards K: Int, active: Set<Int>) -> [Int] {
        (0..<K).filter { i in !active.contains(i) && grid.shard(i, of: K).contains { state(of: $0.id) != .done } }
    }

    /// Moves the failed documents among `cells` to RESULTS/<grid>/failed/ (kept, never
    /// deleted) so that a rerun computes those cells again; returns how many moved.
    public func setAsideFailed(_ cells: [GridCell]) throws -> Int {
        let dir = gridDir + "/failed"
        var moved = 0
        for c in cells where state(of: c.id) == .failed {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let target = dir + "/\(c.id).json"
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.moveItem(atPath: cellsDir + "/\(c.id).json", toPath: target)
            moved += 1
        }
        return moved
    }
}

/// What Slurm says about array tasks, from one client call per `maxAge` seconds.
public enum SlurmQueue {
    /// States ("PENDING", "RUNNING", "COMPLETED", …) of array tasks keyed "JOB_TASK", from
    /// one `sacct --parsable2` call over `jobs`, or, where accounting is disabled (as on a
    /// single-node Slurm without slurmdbd), one `squeue` call (which knows only queued and
    /// running tasks). The answer is cached in `cache` and reused for `maxAge` seconds, so
    /// a `status` loop does not hammer the controller.
    public static func taskStates(jobs: [String], cache: String, maxAge: Double = 30) -> (states: [String: String], source: String) {
        struct Cached: Codable { var time: Double; var jobs: [String]; var source: String; var states: [String: String] }
        let now = Date().timeIntervalSince1970
        if let d = FileManager.default.contents(atPath: cache), let c = try? JSONDecoder().decode(Cached.self, from: d),
           c.jobs == jobs, now - c.time < maxAge {
            return (c.states, c.source + ", cached \(Int(now - c.time)) s ago")
        }
        guard !jobs.isEmpty else { return ([:], "no submissions") }
        var states: [String: String] = [:], source = "sacct"
        let acct = SlurmExecutor.command(
            "sacct", ["-j", jobs.joined(separator: ","), "--parsable2", "--noheader", "-X", "--format=JobID,State"])
        if acct.status == 0 {
            states = parse(acct.output)
        } else {
            source = "squeue (sacct: \(acct.output.split(separator: "\n").first.map(String.init) ?? "failed"))"
            let q = SlurmExecutor.command("squeue", ["-h", "-j", jobs.joined(separator: ","), "-o", "%i|%T"])
            if q.status == 0 { states = parse(q.output) } else { source = "unavailable (\(q.output.trimmingCharacters(in: .whitespacesAndNewlines)))" }
        }
        if let d = try? JSONEncoder().encode(Cached(time: now, jobs: jobs, source: source, states: states)) {
            try? AtomicFile.write(d, to: cache)
        }
        return (states, source)
    }

    /// Parses `JOBID|STATE` lines; a pending array's compressed ids ("12_[3-5,8%2]") are
    /// expanded into one entry per task; states lose Slurm's suffixes ("CANCELLED by 0").
    public static func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count >= 2 else { continue }
            let id = String(parts[0]).trimmingCharacters(in: .whitespaces)
            let state = String(parts[1].split(separator: " ").first ?? "")
            guard let us = id.firstIndex(of: "_") else { continue }
            let job = id[..<us], rest = id[id.index(after: us)...]
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                let inner = rest[rest.index(after: rest.startIndex)..<close].split(separator: "%").first ?? ""
                for piece in inner.split(separator: ",") {
                    let bounds = piece.split(separator: "-").compactMap { Int($0) }
                    guard let lo = bounds.first else { continue }
                    for t in lo...(bounds.count > 1 ? max(lo, bounds[1]) : lo) { out["\(job)_\(t)"] = state }
                }
            } else if Int(rest) != nil {
                out[id] = state
            }
        }
        return out
    }

    /// Whether a task in this state may still run cells (so its shard is not resubmitted).
    public static func isActive(_ state: String) -> Bool {
        ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED"]
            .contains(state)
    }
}
