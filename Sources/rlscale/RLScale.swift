import ArgumentParser
import Foundation
import Grid
import PolicyModel
import ResultSchema
import RLCommon
import RLTraining

struct RLScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlscale",
        abstract: "Measure compute-optimal scaling laws for RL post-training on small policies.",
        discussion: """
            rlscale trains small transformer policies on CPU, post-trains them with RL \
            methods over a grid of allocations, and fits scaling laws to the results.

            A study:  rlscale plan grids/quick.toml
                      rlscale run grids/quick.toml    (or rlscale slurm, on a cluster)
                      rlscale status results/quick
                      rlscale fit results/quick --out analysis/quick
                      rlscale export results/quick    (tidy CSV tables for pandas)
            One cell by hand: rlscale train --base s --method grpo --budget 1e12

            Every command accepts --blas-core NAME (SkylakeX, Haswell, Sandybridge, or a \
            generic core such as Prescott) to choose OpenBLAS's kernels. Without it, when \
            OpenBLAS falls back to its generic kernels on a CPU with AVX2 or AVX-512, \
            rlscale picks the matching core itself and says so once on stderr. A grid pins \
            the core in its manifest; its workers and Slurm tasks all run that core.

            Every command also accepts --simd LEVEL (avx2, avx512 or portable; or set \
            RLSCALE_SIMD) to choose which build of the engine's kernels runs; the default \
            is the first of avx2, avx512, portable this CPU supports. The levels compute the \
            same bits; a grid pins its level like its core.
            """,
        version: "rlscale \(Harness.version) (numerics \(Numerics.version), cell schema \(CellResult.schemaVersion))",
        subcommands: [Plan.self, Run.self, Status.self, Slurm.self, Fit.self, FitCSV.self, BestOfNCommand.self, ExportCommand.self, Pretrain.self, Train.self, Eval.self, Inspect.self, Bench.self, WorkerCommand.self, BenchCellWorker.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure engine throughput (training and KV-cache sampling) as MFU, or whole cells.",
        discussion: """
            For the base ladder's four shapes (xs, s, m, l: vocabulary 23) and three wider \
            configs (tiny, small, large: the largest d_model 256, 4 layers), all at context \
            64 and batch 64, measures training tokens/s (forward + backward + AdamW) and \
            sampling tokens/s with the KV cache, their achieved GFLOP/s by the harness's \
            FLOP formula, and MFU: achieved GFLOP/s divided by the cblas_sgemm peak \
            measured in the same run at the same thread count. Each figure is the median \
            of --repeats measurements.

            --cell instead runs one fixed GRPO cell per ladder size (n = 8, Bp = 8, an \
            untrained base of the ladder's shape, tasks mul:1,sort:1, 8 evaluation points), each \
            in its own worker process as a grid would, and reports charged FLOPs per wall \
            second, the share of wall time in sampling, training, evaluation and the rest, \
            and the worker's peak resident memory.
            """)

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "BLAS threads (1 gives the single-thread figures).")
    var threads = 1

    @Option(help: "Seconds to spend measuring each figure.")
    var seconds = 1.0

    @Option(help: "Comma-separated config names to run (default: all).")
    var configs: String?

    @Option(help: "Measurements per figure; the median is reported.")
    var repeats = 3

    @Flag(help: "Run one fixed GRPO cell per ladder size instead (see above).")
    var cell = false

    func run() throws {
        setBLASThreads(threads)
        let only = configs.map { Set($0.split(separator: ",").map(String.init)) }
        if cell {
            try runCells(only)
            return
        }
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        let peak = median((0..<max(1, repeats)).map { _ in EngineBenchmark.sgemmPeak() })
        var results: [EngineBenchmark.Result] = []
        for c in EngineBenchmark.defaultCases where only?.contains(c.name) ?? true {
            let runs = try (0..<max(1, repeats)).map { _ in try EngineBenchmark.measure(c, peak: peak, minSeconds: seconds) }
            var r = runs[0]
            r.trainTokensPerS = median(runs.map(\.trainTokensPerS))
            r.sampleTokensPerS = median(runs.map(\.sampleTokensPerS))
            r.trainGflops = median(runs.map(\.trainGflops))
            r.sampleGflops = median(runs.map(\.sampleGflops))
            r.trainMfu = r.trainGflops / peak
            r.sampleMfu = r.sampleGflops / peak
            results.append(r)
        }
        let report = EngineBenchmark.Report(sgemmPeakGflops: peak, threads: blasThreads(), configs: results)
        if json {
            try printJSON(report)
            return
        }
        print("CPU: \(report.cpuModel); OpenBLAS core \(report.blasCore); SIMD level \(report.simdLevel)")
        print(String(format: "sgemm peak: %.1f GFLOP/s on %d thread(s)", peak, report.threads))
        print("config      params  train tok/s  train GFLOP/s  train MFU  sample tok/s  sample GFLOP/s  sample MFU")
        for r in results {
            print(
                String(
                    format: "%-8@ %9d %12.0f %14.2f %10.3f %13.0f %15.2f %11.3f", r.name as NSString, r.params,
                    r.trainTokensPerS, r.trainGflops, r.trainMfu, r.sampleTokensPerS, r.sampleGflops, r.sampleMfu))
        }
    }
}

extension Bench {
    /// One row of `bench --cell`.
    struct CellRow: Codable {
        var name: String
        var dModel: Int, layers: Int, heads: Int
        var budgetFlops: Double, chargedFlops: Double, steps: Int
        var wallS: Double, chargedFlopsPerS: Double
        /// Charged GFLOP/s, this run's single-thread sgemm peak, and their ratio.
        var chargedGflopsPerS: Double, sgemmPeakGflops: Double, efficiency: Double
        var samplingShare: Double, trainingShare: Double, evaluationShare: Double, otherShare: Double
        var peakRssMib: Double
        enum CodingKeys: String, CodingKey {
            case name, layers, heads, steps
            case dModel = "d_model", budgetFlops = "budget_flops", chargedFlops = "charged_flops", wallS = "wall_s"
            case chargedFlopsPerS = "charged_flops_per_s", chargedGflopsPerS = "charged_gflops_per_s"
            case sgemmPeakGflops = "sgemm_peak_gflops", efficiency, samplingShare = "sampling_share"
            case trainingShare = "training_share", evaluationShare = "evaluation_share", otherShare = "other_share"
            case peakRssMib = "peak_rss_mib"
        }
    }

    struct CellReport: Codable {
        var cpuModel: String, blasCore: String, simdLevel: String
        var cells: [CellRow]
        enum CodingKeys: String, CodingKey {
            case cells
            case cpuModel = "cpu_model", blasCore = "blas_core", simdLevel = "simd_level"
        }
    }

    /// Runs each ladder size's cell in a worker process (`bench-cell-worker`), reading its
    /// document from a temporary file and its peak RSS from wait4.
    func runCells(_ only: Set<String>?) throws {
        var rows: [CellRow] = []
        let dir = NSTemporaryDirectory() + "rlscale-bench-cell-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for c in EngineBenchmark.ladderCases where only?.contains(c.name) ?? true {
            // The peak of this run, measured just before the cell (one core; the medians of
            // `repeats` measurements), so that efficiency compares like with like.
            let peak = [Double]((0..<max(1, repeats)).map { _ in EngineBenchmark.sgemmPeak() }).sorted()[max(1, repeats) / 2]
            let name = c.name, m = c.config
            let out = "\(dir)/\(name).json"
            let (status, rss) = try spawnAndWait(
                [LocalExecutor.currentExecutable(), "bench-cell-worker", "--size", name, "--out", out])
            guard status == 0 else { throw ValidationError("bench cell \(name): worker exited with status \(status)") }
            let r = try JSONDecoder().decode(CellResult.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
            let w = r.wallTime ?? WallTime()
            rows.append(CellRow(
                name: name, dModel: m.dModel, layers: m.layers, heads: m.heads,
                budgetFlops: r.config.budgetFLOPs, chargedFlops: r.compute.total, steps: r.steps, wallS: r.wallSeconds,
                chargedFlopsPerS: r.compute.total / r.wallSeconds, chargedGflopsPerS: r.compute.total / r.wallSeconds / 1e9,
                sgemmPeakGflops: peak, efficiency: r.compute.total / r.wallSeconds / 1e9 / peak, samplingShare: w.sampling / r.wallSeconds,
                trainingShare: w.training / r.wallSeconds, evaluationShare: w.evaluation / r.wallSeconds,
                otherShare: w.other / r.wallSeconds, peakRssMib: rss))
        }
        let report = CellReport(cpuModel: BLASCore.cpuModel(), blasCore: BLASCore.current, simdLevel: SIMDLevel.active.rawValue, cells: rows)
        if json {
            try printJSON(report)
            return
        }
        print("CPU: \(report.cpuModel); OpenBLAS core \(report.blasCore); SIMD level \(report.simdLevel); one GRPO cell per size (n 8, Bp 8), one worker each")
        print("size   budget  steps   wall s  charged GFLOP/s  sgemm peak  efficiency  sampling  training  evaluation  other  peak RSS MiB")
        for r in rows {
            print(String(
                format: "%-4@ %8.2g %6d %8.1f %16.2f %11.1f %11.3f %9.2f %9.2f %11.2f %6.2f %13.1f", r.name as NSString, r.budgetFlops,
                r.steps, r.wallS, r.chargedGflopsPerS, r.sgemmPeakGflops, r.efficiency, r.samplingShare, r.trainingShare, r.evaluationShare,
                r.otherShare, r.peakRssMib))
        }
    }

    /// posix_spawn + wait4: the exit status and the child's peak RSS in MiB.
    func spawnAndWait(_ argv: [String]) throws -> (Int32, Double) {
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let envp = LocalExecutor.workerEnvironment().map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], nil, nil, cargs, envp) == 0 else { throw ValidationError("cannot start \(argv[0])") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        return ((status >> 8) & 0xff, Double(usage.ru_maxrss) / 1024)  // ru_maxrss is in KiB on Linux
    }
}

/// Internal: one `bench --cell` worker.
struct BenchCellWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-cell-worker", abstract: "Internal: run one bench --cell cell.", shouldDisplay: false)
    @Option var size: String
    @Option var out: String

    func run() throws {
        setBLASThreads(1)
        guard let r = try CellBenchmark.run(size: size) else { throw ValidationError("unknown ladder size '\(size)'") }
        try JSONEncoder().encode(r).write(to: URL(fileURLWithPath: out))
    }
}
