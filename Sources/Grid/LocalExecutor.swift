import Foundation
import PolicyModel
import RLTraining

/// The signal (SIGINT, SIGTERM or SIGUSR1) that asked the scheduler loop to stop launching
/// and shut down; 0 while none has.
nonisolated(unsafe) var interruptRequested: sig_atomic_t = 0

/// Runs one worker process per job: `rlscale worker` with single-threaded BLAS.
public struct LocalExecutor: Sendable {
    public var jobs: Int
    /// Attempts per cell before it is recorded as failed.
    public var maxAttempts: Int
    /// The rlscale binary the workers run.
    public var executable: String

    public init(jobs: Int, maxAttempts: Int = 3, executable: String = LocalExecutor.currentExecutable()) {
        self.jobs = max(1, jobs)
        self.maxAttempts = maxAttempts
        self.executable = executable
    }

    /// Path of the running binary.
    public static func currentExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CommandLine.arguments.first ?? "rlscale"
    }

    /// One unit of work for a worker.
    public struct Job: Sendable {
        public var id: String
        public var arguments: [String]
        public var log: String
        /// Compute it represents (for progress and the ETA).
        public var flops: Double
        /// Id of a job that must succeed first (a cell waits for its base), or nil.
        public var after: String? = nil
    }

    public struct Outcome: Sendable {
        public var id: String
        public var ok: Bool
        public var attempts: Int
        public var reason: String
    }

    /// Runs `queue` with at most `jobs` workers at a time, in queue order except that a
    /// job waits until the job it runs `after` has succeeded (so cells start as soon as
    /// their own base is ready); failures are retried, and a job whose prerequisite failed
    /// fails with that reason. Calls `finished` after each job ends for good. Returns early
    /// (with the interrupted flag set) when SIGINT, SIGTERM or SIGUSR1 arrives (Slurm sends
    /// SIGTERM on cancellation, preemption and requeue, and SIGUSR1 before the time limit
    /// when asked to); running workers are then terminated and their cells abandoned: a cell
    /// document is written atomically at the end of a cell, so none is left half-written.
    public func run(
        _ queue: [Job], isDone: (Job) -> Bool, finished: (Job, Outcome) -> Void
    ) -> (outcomes: [Outcome], interrupted: Bool) {
        installSignalHandlers()
        var pending = queue
        var running: [pid_t: (Job, Int)] = [:]
        var retry: [(Job, Int)] = []
        var outcomes: [Outcome] = []
        var succeeded = Set<String>(), failed: [String: String] = [:]
        func finish(_ job: Job, _ o: Outcome) {
            outcomes.append(o)
            if o.ok { succeeded.insert(job.id) } else { failed[job.id] = o.reason }
            finished(job, o)
        }
        /// The next launchable job: a retry first, else the first pending job that is not
        /// waiting on an unfinished prerequisite.
        func next() -> (Job, Int)? {
            if !retry.isEmpty { return retry.removeFirst() }
            guard let i = pending.firstIndex(where: { $0.after.map { succeeded.contains($0) || failed[$0] != nil } ?? true })
            else { return nil }
            return (pending.remove(at: i), 1)
        }
        while !pending.isEmpty || !running.isEmpty || !retry.isEmpty {
            while running.count < jobs && interruptRequested == 0, let (job, attempt) = next() {
                if let dep = job.after, let why = failed[dep] {
                    finish(job, Outcome(id: job.id, ok: false, attempts: 0, reason: "\(dep) failed: \(why)"))
                    continue
                }
                guard let pid = spawn(job) else {
                    finish(job, Outcome(id: job.id, ok: false, attempts: attempt, reason: "cannot start worker \(executable)"))
                    continue
                }
                running[pid] = (job, attempt)
            }
            if interruptRequested != 0 {
                for pid in running.keys { kill(pid, SIGTERM) }
                for pid in running.keys { var st: Int32 = 0; waitpid(pid, &st, 0) }
                return (outcomes, true)
            }
            if running.isEmpty { continue }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 { continue }  // EINTR: loop to check the interrupt flag
            guard let (job, attempt) = running.removeValue(forKey: pid) else { continue }
            let exited = (status & 0x7f) == 0
            let code = (status >> 8) & 0xff
            switch Self.end(
                succeeded: exited && code == 0 && isDone(job), killedBy: exited ? nil : status & 0x7f,
                attempt: attempt, maxAttempts: maxAttempts, interrupted: interruptRequested != 0,
                awaitInterrupt: Self.awaitInterrupt)
            {
            case .done:
                finish(job, Outcome(id: job.id, ok: true, attempts: attempt, reason: ""))
            case .abandoned:
                continue  // the next run reruns it
            case .retry:
                retry.append((job, attempt + 1))
            case .failed:
                let why = exited ? "worker exited with status \(code)" : "worker killed by signal \(status & 0x7f)"
                finish(job, Outcome(id: job.id, ok: false, attempts: attempt, reason: "\(why) on \(attempt) attempt(s); see \(job.log)"))
            }
        }
        return (outcomes, interruptRequested != 0)
    }

    /// What became of a job whose worker ended.
    public enum WorkerEnd: Equatable, Sendable {
        case done
        /// Stopped together with this run: neither finished nor failed; the next run reruns it.
        case abandoned
        case retry
        case failed
    }

    /// The fate of a job whose worker ended: `done` if it succeeded; `abandoned` if this run
    /// is being stopped (`interrupted`), or the worker died of SIGTERM or SIGINT and this
    /// run's own stop follows (`awaitInterrupt`: Slurm signals every process of a job step,
    /// Ctrl-C a whole process group, one process after another); otherwise another attempt
    /// while `attempt < maxAttempts`, else `failed`.
    public static func end(
        succeeded: Bool, killedBy signal: Int32?, attempt: Int, maxAttempts: Int, interrupted: Bool,
        awaitInterrupt: () -> Bool
    ) -> WorkerEnd {
        if succeeded { return .done }
        if interrupted { return .abandoned }
        if let signal, signal == SIGTERM || signal == SIGINT, awaitInterrupt() { return .abandoned }
        return attempt < maxAttempts ? .retry : .failed
    }

    /// Waits up to a second for this process's own stop signal; whether it came.
    static func awaitInterrupt() -> Bool {
        for _ in 0..<100 where interruptRequested == 0 { usleep(10_000) }
        return interruptRequested != 0
    }

    func spawn(_ job: Job) -> pid_t? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, job.log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + job.arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = Self.workerEnvironment().map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        return rc == 0 ? pid : nil
    }

    /// A worker's environment: this process's, with single-threaded BLAS and the OpenBLAS
    /// core this process runs (the grid's pinned core), so the worker loads the same kernels.
    public static func workerEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        env["OPENBLAS_CORETYPE"] = BLASCore.current
        return env
    }

    /// The signal that interrupted the last `run` (0 if none).
    public static var interruptSignal: Int32 { Int32(interruptRequested) }

    /// SIGINT, SIGTERM and SIGUSR1 record themselves and, without SA_RESTART, interrupt
    /// `waitpid`; they are unblocked on this thread (a launcher may hand its children a
    /// mask that blocks them, and a blocked stop would never reach the handler; workers
    /// spawned from this thread inherit the unblocked mask, so the runner's SIGTERM stops
    /// them).
    func installSignalHandlers() {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { sig in interruptRequested = sig_atomic_t(sig) }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0
        var stops = sigset_t()
        sigemptyset(&stops)
        for sig in [SIGINT, SIGTERM, SIGUSR1] {
            sigaction(sig, &sa, nil)
            sigaddset(&stops, sig)
        }
        pthread_sigmask(SIG_UNBLOCK, &stops, nil)
    }
}
