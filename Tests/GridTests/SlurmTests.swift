import Foundation
import Grid
import Testing

/// Runs a Slurm client; its exit status and output.
func slurmClient(_ name: String, _ args: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [name] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    guard (try? p.run()) != nil else { return (-1, "cannot run \(name)") }
    let d = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: d, as: UTF8.self))
}

/// Polls `condition` every 0.2 s until it holds or `seconds` pass; whether it held.
func poll(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.2)
    }
    return condition()
}

/// Needs a running Slurm: `make test` starts a single-node cluster with
/// `.ci/slurm-up.sh` (slurmctld, slurmd and munge from Debian's packages) before the suite.
@Suite(.serialized) struct SlurmTests {
    @Test func aSlurmArrayProducesTheSameCellDocumentsAsALocalRun() throws {
        let dir = CLI.tempDir("slurm")
        let ref = try TinyGridReference.shared.get()
        let gridFile = ref.gridFile, reference = ref.documents
        #expect(reference.count == 6)

        let viaSlurm = dir + "/slurm"
        let status = try CLI.run(
            ["slurm", gridFile, "--results", viaSlurm, "--shards", "3", "--array-parallelism", "2", "--time", "20:00", "--wait"],
            log: dir + "/slurm.log")
        let log = (try? String(contentsOfFile: dir + "/slurm.log", encoding: .utf8)) ?? ""
        #expect(status == 0, "rlscale slurm failed: \(log)")
        #expect(log.contains("submitted base job"))
        // Each of the 3 array tasks ran its shard and logged it.
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: viaSlurm + "/tiny/slurm/logs")) ?? []
        #expect(logs.filter { $0.hasPrefix("cells_") }.count == 3, "\(logs)")
        #expect(logs.filter { $0.hasPrefix("bases_") }.count == 1, "\(logs)")
        let fromSlurm = try CLI.cellDocuments(viaSlurm + "/tiny/cells")
        #expect(fromSlurm.keys.sorted() == reference.keys.sorted())
        for (k, v) in reference { #expect(fromSlurm[k] == v, "cell \(k) differs between Slurm and local runs") }
    }

    /// Slurm's warning before a time limit (SIGUSR1 to the batch step, sent here by hand
    /// while the task is inside the grid) makes the task abandon its running cell and
    /// requeue itself; requeued again from outside (SIGTERM) once it runs, it abandons its
    /// cell again; the restarted task skips the cells already written, and the store ends
    /// identical to an uninterrupted run.
    @Test func aTaskWarnedOrRequeuedMidGridResumesAndEndsIdentical() throws {
        let dir = CLI.tempDir("requeue")
        let ref = try TinyGridReference.shared.get()
        let results = dir + "/slurm"
        #expect(try CLI.run(["slurm", ref.gridFile, "--results", results, "--shards", "1", "--time", "20:00"], log: dir + "/submit.log") == 0)
        let submitted = (try? String(contentsOfFile: dir + "/submit.log", encoding: .utf8)) ?? ""
        let job = try #require(submitted.firstMatch(of: /array job (\d+)/).map { String($0.1) }, "\(submitted)")
        let cells = results + "/tiny/cells"
        func written() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: cells)) ?? []).filter { $0.hasSuffix(".json") }.count }
        #expect(poll(300) { written() >= 1 }, "no cell written")
        let before = written()
        #expect(slurmClient("scancel", ["--signal=USR1", "--batch", "\(job)_0"]).status == 0)
        // The task requeues itself; Slurm holds a requeued task about two minutes (its
        // BeginTime), which the test releases.
        func task() -> String { slurmClient("scontrol", ["show", "job", "\(job)_0"]).output }
        #expect(poll(60) { let t = task(); return t.contains("Restarts=1") && t.contains("JobState=PENDING") }, "not requeued: \(task())")
        // Released only once the node has let go of the previous run: a release while its step
        // is still being torn down races Slurm itself ("Job credential revoked"), which then
        // kills the restart as non-startable.
        func release() {
            _ = poll(30) { slurmClient("scontrol", ["show", "node"]).output.contains("CPUAlloc=0") }
            _ = slurmClient("scontrol", ["update", "JobId=\(job)_0", "StartTime=now"])
        }
        release()
        // Once it runs again, requeue it from outside (what preemption or an operator does):
        // Slurm's SIGTERM makes the runner abandon its cell and exit, and Slurm requeues it.
        #expect(poll(120) { task().contains("JobState=RUNNING") }, "not restarted: \(task())")
        #expect(slurmClient("scontrol", ["requeue", "\(job)_0"]).status == 0)
        #expect(poll(60) { let t = task(); return t.contains("Restarts=2") && t.contains("JobState=PENDING") }, "not requeued: \(task())")
        release()
        #expect(poll(300) { task().contains("JobState=COMPLETED") }, "not completed: \(task())")
        #expect(task().contains("Restarts=2"))
        let log = (try? String(contentsOfFile: results + "/tiny/slurm/logs/cells_\(job)_0.txt", encoding: .utf8)) ?? ""
        #expect(log.contains("requeued Slurm job"), "\(log)")
        #expect(before < 6, "the signal came after every cell was written")
        let docs = try CLI.cellDocuments(cells)
        #expect(docs.keys.sorted() == ref.documents.keys.sorted())
        for (k, v) in ref.documents {
            let same = docs[k] == v
            #expect(same, "cell \(k) differs from the uninterrupted run")
        }
        // `status` shows the shard's Slurm state and its cells.
        #expect(try CLI.run(["status", results + "/tiny"], log: dir + "/status.log") == 0)
        let status = (try? String(contentsOfFile: dir + "/status.log", encoding: .utf8)) ?? ""
        #expect(status.contains("slurm (1 shards") && status.contains("\(job)_0"), "\(status)")
    }

    /// --resubmit-failed names only the shards with a failed or missing cell, and a dry run
    /// moves nothing.
    @Test func resubmittingFailedShardsNamesOnlyThoseShards() throws {
        let dir = CLI.tempDir("resubmit")
        let ref = try TinyGridReference.shared.get()
        let grid = try GridFile.load(ref.gridFile)
        let source = URL(fileURLWithPath: ref.gridFile).deletingLastPathComponent().path + "/tiny/cells"
        let cells = dir + "/tiny/cells"
        try FileManager.default.createDirectory(atPath: cells, withIntermediateDirectories: true)
        // Shards of K = 3: shard 0 complete, shard 1 with a failed cell, shard 2 missing one.
        let shard1 = grid.shard(1, of: 3).map(\.id), shard2 = grid.shard(2, of: 3).map(\.id)
        for c in grid.cells where c.id != shard2[0] {
            try FileManager.default.copyItem(atPath: "\(source)/\(c.id).json", toPath: "\(cells)/\(c.id).json")
        }
        let failedPath = "\(cells)/\(shard1[0]).json"
        var doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: failedPath))) as? [String: Any])
        doc["status"] = "failed"
        doc["failure"] = "worker killed by signal 9 on 3 attempt(s)"
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: failedPath))
        #expect(try CLI.run(["slurm", ref.gridFile, "--results", dir, "--shards", "3", "--resubmit-failed", "--dry-run"], log: dir + "/dry.log") == 0)
        let out = (try? String(contentsOfFile: dir + "/dry.log", encoding: .utf8)) ?? ""
        #expect(out.contains("#SBATCH --array=1,2\n") && out.contains("--shard \"${SLURM_ARRAY_TASK_ID}/3\""), "\(out)")
        #expect(out.contains("#SBATCH --requeue") && out.contains("#SBATCH --signal=B:USR1@120"))
        #expect(FileManager.default.fileExists(atPath: failedPath), "a dry run moved a document")
        // Queue states: compressed pending arrays expand to one entry per task.
        let states = SlurmQueue.parse("12_[3-5,8%2]|PENDING\n12_1|RUNNING\n12_0|CANCELLED by 0\n")
        #expect(states == ["12_3": "PENDING", "12_4": "PENDING", "12_5": "PENDING", "12_8": "PENDING", "12_1": "RUNNING", "12_0": "CANCELLED"])
    }
}
