import ArgumentParser
import Foundation
import PolicyModel

struct RLScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlscale",
        abstract: "Measure compute-optimal scaling laws for RL post-training on small policies.",
        discussion: """
            rlscale trains small transformer policies on CPU, post-trains them with RL
            methods over a grid of allocations, and fits scaling laws to the results.

            A study:  rlscale plan grids/quick.toml
                      rlscale run grids/quick.toml            (or: rlscale slurm grids/quick.toml)
                      rlscale status results/quick
                      rlscale fit results/quick --out analysis/quick
            One cell by hand: rlscale train --base s --method grpo --budget 1e12
            """,
        subcommands: [Plan.self, Run.self, Status.self, Slurm.self, Fit.self, FitCSV.self, Pretrain.self, Train.self, Eval.self, Inspect.self, Bench.self, WorkerCommand.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure engine throughput (training and KV-cache sampling) as MFU.",
        discussion: """
            For three model sizes (the largest d_model 256, 4 layers, context 64, batch 64)
            measures training tokens/s (forward + backward + AdamW) and sampling tokens/s
            with the KV cache, their achieved GFLOP/s by the harness's FLOP formula, and
            MFU: achieved GFLOP/s divided by the cblas_sgemm peak measured in the same run
            at the same thread count.
            """)

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "BLAS threads (1 gives the single-thread figures).")
    var threads = 1

    @Option(help: "Seconds to spend measuring each figure.")
    var seconds = 1.0

    func run() throws {
        setBLASThreads(threads)
        let peak = EngineBenchmark.sgemmPeak()
        var results: [EngineBenchmark.Result] = []
        for c in EngineBenchmark.defaultCases {
            results.append(try EngineBenchmark.measure(c, peak: peak, minSeconds: seconds))
        }
        let report = EngineBenchmark.Report(sgemmPeakGflops: peak, threads: blasThreads(), configs: results)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
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
