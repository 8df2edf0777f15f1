import Foundation
import Grid
import Testing

/// Helpers that drive the real `rlscale` binary, as users and Slurm do.
enum CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binary: String { packageRoot.appendingPathComponent(".build/release/rlscale").path }

    /// Starts `rlscale args…`.
    static func start(_ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = h
        p.standardError = h
        try p.run()
        return p
    }

    static func run(_ args: [String], log: String) throws -> Int32 {
        let p = try start(args, log: log)
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// A cell document without its wall-clock fields, as canonical JSON.
    static func canonicalCell(_ path: String) throws -> String {
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        func strip(_ x: Any) -> Any {
            if let d = x as? [String: Any] {
                var out: [String: Any] = [:]
                for (k, v) in d where k != "wallSeconds" && k != "wallTime" { out[k] = strip(v) }
                return out
            }
            if let a = x as? [Any] { return a.map(strip) }
            return x
        }
        let data = try JSONSerialization.data(withJSONObject: strip(obj), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func cellDocuments(_ dir: String) throws -> [String: String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }
        var out: [String: String] = [:]
        for f in files { out[f] = try canonicalCell(dir + "/" + f) }
        return out
    }

    static func tempDir(_ label: String) -> String {
        let d = NSTemporaryDirectory() + "rlscale-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// A grid small enough for the test suite: a tiny base and six short cells.
let tinyGrid = """
    name = "tiny"
    [base]
    sizes = ["xs"]
    min_tokens = 30000
    tokens_per_param = 0
    eval_problems = 2
    eval_samples = 8
    [cell]
    eval_points = 4
    eval_samples = 4
    eval_problems = 1
    [axes]
    method = ["grpo", "rloo", "dapo"]
    n = [2, 4]
    bp = [2]
    budget = [5e9]
    tasks = ["sort:1"]
    lr = [1e-4]

    """

/// One uninterrupted local run of `tinyGrid`, shared by the resume and Slurm suites as
/// the reference their cell documents must match (computed once per test process).
enum TinyGridReference {
    struct Run: Sendable {
        var gridFile: String
        var documents: [String: String]
    }
    struct Failed: Error { var log: String }

    static let shared: Result<Run, any Error> = Result {
        let dir = CLI.tempDir("reference")
        let gridFile = dir + "/tiny.toml"
        try tinyGrid.write(toFile: gridFile, atomically: true, encoding: .utf8)
        guard try CLI.run(["run", gridFile, "--results", dir, "--jobs", "2"], log: dir + "/run.log") == 0 else {
            throw Failed(log: (try? String(contentsOfFile: dir + "/run.log", encoding: .utf8)) ?? "")
        }
        return Run(gridFile: gridFile, documents: try CLI.cellDocuments(dir + "/tiny/cells"))
    }
}

@Suite(.serialized) struct ResumeTests {
    @Test func aSIGKILLedRunResumesToIdenticalCellDocuments() throws {
        let dir = CLI.tempDir("resume")
        let ref = try TinyGridReference.shared.get()
        let gridFile = ref.gridFile, reference = ref.documents
        #expect(reference.count == 6)
        // Interrupted: kill the runner and its workers with SIGKILL once two cells are done.
        let b = dir + "/b"
        let p = try CLI.start(["run", gridFile, "--results", b, "--jobs", "1"], log: dir + "/b1.log")
        let cells = b + "/tiny/cells"
        var waited = 0
        while waited < 600 {
            let n = (try? FileManager.default.contentsOfDirectory(atPath: cells).filter { $0.hasSuffix(".json") }.count) ?? 0
            if n >= 2 { break }
            usleep(100_000)
            waited += 1
        }
        // Freeze the runner, SIGKILL its workers mid-cell, then the runner itself.
        let pid = p.processIdentifier
        kill(pid, SIGSTOP)
        let pk = Process()
        pk.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        pk.arguments = ["-KILL", "-P", String(pid)]
        try pk.run()
        pk.waitUntilExit()
        kill(pid, SIGKILL)
        p.waitUntilExit()
        let partial = try CLI.cellDocuments(cells)
        #expect(partial.count >= 2 && partial.count < 6, "killed after \(partial.count) cells")
        // Resume: only the missing cells run, and every document matches the reference.
        #expect(try CLI.run(["run", gridFile, "--results", b, "--jobs", "2"], log: dir + "/b2.log") == 0)
        let resumed = try CLI.cellDocuments(cells)
        #expect(resumed.keys.sorted() == reference.keys.sorted())
        for (k, v) in reference { #expect(resumed[k] == v, "cell \(k) differs after resume") }
        let log = try String(contentsOfFile: dir + "/b2.log", encoding: .utf8)
        #expect(log.contains("\(partial.count) of 6 cells already finished"))
        // A finished store reruns nothing.
        #expect(try CLI.run(["run", gridFile, "--results", b], log: dir + "/b3.log") == 0)
        #expect(try String(contentsOfFile: dir + "/b3.log", encoding: .utf8).contains("6 of 6 cells already finished"))
    }

    /// A worker that dies of the same stop as its runner (Slurm signals every process of a
    /// job step; Ctrl-C signals a whole process group) is abandoned, not failed: the runner
    /// frozen, its cell worker terminated and left a zombie, then the runner terminated and
    /// thawed. The runner is started by this test process, which hands it a signal mask that
    /// blocks SIGTERM; the runner must unblock it. No document may record a failure, no cell
    /// may finish after the stop, and the resumed store must equal an uninterrupted run. (The
    /// decision itself, in the orders a test cannot force, is `WorkerEndTests`.)
    @Test func aWorkerStoppedWithItsRunnerIsAbandonedNotFailed() throws {
        let dir = CLI.tempDir("stopped")
        let ref = try TinyGridReference.shared.get()
        let b = dir + "/b", cells = b + "/tiny/cells"
        let p = try CLI.start(["run", ref.gridFile, "--results", b, "--jobs", "1"], log: dir + "/b1.log")
        let pid = p.processIdentifier
        func written() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: cells)) ?? []).filter { $0.hasSuffix(".json") }
        }
        func children() -> [pid_t] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { pid_t($0) }
        }
        func state(_ p: pid_t) -> Character? {
            guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(close, offsetBy: 2)...].first
        }
        var waited = 0
        while written().isEmpty && waited < 600 {  // the base is built and a cell is done
            usleep(100_000)
            waited += 1
        }
        var worker: pid_t?
        for _ in 0..<200 where worker == nil {  // freeze the runner while a cell worker runs
            kill(pid, SIGSTOP)
            worker = children().first
            if worker == nil {
                kill(pid, SIGCONT)
                usleep(20_000)
            }
        }
        let w = try #require(worker, "no worker to stop")
        let before = written().count
        kill(w, SIGTERM)
        for _ in 0..<500 where state(w) != "Z" { usleep(10_000) }
        #expect(state(w) == "Z", "the worker did not die")
        kill(pid, SIGTERM)
        kill(pid, SIGCONT)
        p.waitUntilExit()
        let failed = written().filter { f in
            let doc = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cells + "/" + f)))
            return (doc as? [String: Any])?["status"] as? String == "failed"
        }
        #expect(failed.isEmpty, "stopped cells recorded as failed: \(failed)")
        #expect(written().count == before && before < 6, "\(before) cells before the stop, \(written().count) after")
        #expect(try CLI.run(["run", ref.gridFile, "--results", b, "--jobs", "2"], log: dir + "/b2.log") == 0)
        let resumed = try CLI.cellDocuments(cells)
        #expect(resumed.keys.sorted() == ref.documents.keys.sorted())
        for (k, v) in ref.documents { #expect(resumed[k] == v, "cell \(k) differs after resume") }
    }
}

/// What the runner makes of a worker that ended, the decision without the processes.
@Suite struct WorkerEndTests {
    typealias End = LocalExecutor.WorkerEnd
    static func end(
        succeeded: Bool = false, killedBy signal: Int32? = nil, attempt: Int = 1, interrupted: Bool = false,
        stopFollows: Bool = false, awaited: inout Int
    ) -> End {
        LocalExecutor.end(
            succeeded: succeeded, killedBy: signal, attempt: attempt, maxAttempts: 3, interrupted: interrupted,
            awaitInterrupt: {
                awaited += 1
                return stopFollows
            })
    }

    @Test func aWorkerThatEndsWhileTheRunIsStoppedIsAbandonedWhateverItsEnd() {
        var awaited = 0
        // The race Slurm's requeue hit: the run's own SIGTERM recorded between the loop's
        // check and waitpid returning the worker that died of the same stop.
        #expect(Self.end(killedBy: SIGTERM, interrupted: true, awaited: &awaited) == .abandoned)
        #expect(Self.end(killedBy: SIGTERM, attempt: 3, interrupted: true, awaited: &awaited) == .abandoned)
        #expect(Self.end(killedBy: SIGKILL, interrupted: true, awaited: &awaited) == .abandoned)
        #expect(Self.end(interrupted: true, awaited: &awaited) == .abandoned)  // exited non-zero
        #expect(Self.end(succeeded: true, interrupted: true, awaited: &awaited) == .done)
        #expect(awaited == 0)
    }

    @Test func aWorkerStoppedJustBeforeItsRunIsAbandonedOtherwiseRetriedThenFailed() {
        var awaited = 0
        // SIGTERM or SIGINT to the worker first, the run's own stop following.
        #expect(Self.end(killedBy: SIGTERM, attempt: 3, stopFollows: true, awaited: &awaited) == .abandoned)
        #expect(Self.end(killedBy: SIGINT, attempt: 3, stopFollows: true, awaited: &awaited) == .abandoned)
        #expect(awaited == 2)
        // A SIGTERM from elsewhere with no stop of the run: an ordinary failure.
        #expect(Self.end(killedBy: SIGTERM, attempt: 1, awaited: &awaited) == .retry)
        #expect(Self.end(killedBy: SIGTERM, attempt: 3, awaited: &awaited) == .failed)
        #expect(awaited == 4)
        // Crashes, the OOM killer and non-zero exits never wait for a stop.
        #expect(Self.end(killedBy: SIGKILL, attempt: 3, stopFollows: true, awaited: &awaited) == .failed)
        #expect(Self.end(killedBy: SIGSEGV, attempt: 1, stopFollows: true, awaited: &awaited) == .retry)
        #expect(Self.end(attempt: 2, stopFollows: true, awaited: &awaited) == .retry)
        #expect(Self.end(attempt: 3, stopFollows: true, awaited: &awaited) == .failed)
        #expect(awaited == 4)
        #expect(Self.end(succeeded: true, attempt: 3, awaited: &awaited) == .done)
    }
}
