// swift-tools-version:6.0
//
// rlscale: a scaling-law measurement harness for RL post-training of small policies.
//
// Targets, bottom to top (dependencies flow one way):
//   COpenBLAS, CGSL   system libraries (kept apart: their CBLAS headers clash in one module)
//   RLCommon          seeded RNG, atomic files, stable hashing: no numerics
//   PolicyModel       the transformer engine: forward/backward, AdamW, KV-cache sampling,
//                     safetensors checkpoints, the harness's one FLOP formula, the engine bench
//   Tasks             vocabulary, task families, verifiers, noisy-solver pretraining corpus
//   ResultSchema      the cell document every writer and reader shares: CellConfig, CellResult,
//                     compute ledger, group metrics, pass buckets, the law fitter's labels
//   Evaluation        held-out sets, pass@k estimators, pass-rate buckets, evaluator
//   BasePolicies      base ladder, pretraining, the base cache
//   Rewards           training rewards: the exact verifier, hackable and noisy verifiers,
//                     learned reward models (trained and cached like bases)
//   RLTraining        RL methods, curriculum, the grid cell runner
//   Grid              grid files, expansion and constraints, result store, local and Slurm executors
//   Laws              GSL fits of scaling laws, frontiers, bootstrap, allocation tables, plots;
//                     reads cell documents through ResultSchema (no engine, no OpenBLAS)
//   rlscale           the command-line tool
import PackageDescription

import Foundation

/// The engine's element-wise kernels (exp, GELU, softmax on 8-wide SIMD vectors) run
/// about a third faster when the compiler may use AVX2 and FMA registers. They are used
/// when the machine that builds has them (every x86-64 server CPU since 2013), unless
/// RLSCALE_PORTABLE_BUILD=1 asks for a binary that runs on any x86-64. Lanes are computed
/// with the same IEEE operations either way (Swift does not contract a·b + c into an
/// FMA), so results do not depend on it.
let hostHasAVX2: Bool = {
    #if arch(x86_64)
    guard Context.environment["RLSCALE_PORTABLE_BUILD"] != "1",
        let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return false }
    let set = Set(flags.split(separator: " "))
    return set.contains("avx2") && set.contains("fma")
    #else
    return false
    #endif
}()

let optimised: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"] + (hostHasAVX2 ? ["-target-cpu", "haswell"] : []), .when(configuration: .release))
]

let package = Package(
    name: "rlscale",
    products: [
        .executable(name: "rlscale", targets: ["rlscale"]),
        .library(name: "PolicyModel", targets: ["PolicyModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // GSL is linked without its own libgslcblas so that every CBLAS call GSL makes
        // resolves to OpenBLAS (see Sources/CGSL/module.modulemap).
        .systemLibrary(
            name: "CGSL", path: "Sources/CGSL",
            providers: [.apt(["libgsl-dev"])]),
        .target(name: "RLCommon"),
        .target(name: "PolicyModel", dependencies: ["COpenBLAS", "RLCommon"], swiftSettings: optimised),
        .target(name: "Tasks", dependencies: ["RLCommon"]),
        // The cell document's types, free of the engine so that readers (Laws) need no BLAS.
        .target(name: "ResultSchema", dependencies: ["Tasks", "RLCommon"]),
        .target(name: "Evaluation", dependencies: ["Tasks", "PolicyModel", "ResultSchema", "RLCommon"]),
        .target(name: "BasePolicies", dependencies: ["Tasks", "PolicyModel", "Evaluation", "ResultSchema", "RLCommon"]),
        .target(name: "Rewards", dependencies: ["Tasks", "PolicyModel", "Evaluation", "BasePolicies", "ResultSchema", "RLCommon"]),
        // -enable-testing lets the tests drive single training steps in release builds.
        .target(
            name: "RLTraining", dependencies: ["Tasks", "PolicyModel", "Evaluation", "BasePolicies", "Rewards", "ResultSchema", "RLCommon"],
            swiftSettings: [.unsafeFlags(["-enable-testing"])]),
        .target(name: "Laws", dependencies: ["CGSL", "ResultSchema", "RLCommon"]),
        .target(name: "Grid", dependencies: ["RLTraining", "Rewards", "BasePolicies", "Evaluation", "PolicyModel", "Tasks", "ResultSchema", "RLCommon"]),
        .executableTarget(
            name: "rlscale",
            dependencies: [
                "PolicyModel", "RLCommon", "Tasks", "ResultSchema", "Evaluation", "BasePolicies", "Rewards", "RLTraining", "Grid", "Laws",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "PolicyModelTests", dependencies: ["PolicyModel", "RLCommon"]),
        .testTarget(name: "RLTrainingTests", dependencies: ["RLTraining", "Rewards", "BasePolicies", "Evaluation", "Tasks", "ResultSchema", "PolicyModel", "RLCommon"]),
        .testTarget(name: "LawsTests", dependencies: ["Laws", "ResultSchema", "Tasks", "RLCommon"]),
        .testTarget(name: "GridTests", dependencies: ["Grid", "RLTraining", "BasePolicies", "Evaluation", "Tasks", "ResultSchema", "RLCommon", "Laws"]),
        .testTarget(name: "RewardsTests", dependencies: ["Rewards", "Evaluation", "BasePolicies", "Tasks", "ResultSchema", "PolicyModel", "RLCommon"]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks", "Evaluation", "BasePolicies", "ResultSchema", "PolicyModel", "RLCommon"]),
    ]
)
