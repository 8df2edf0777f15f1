// swift-tools-version:6.0
//
// rlscale: a scaling-law measurement harness for RL post-training of small policies.
//
// Targets, bottom to top (dependencies flow one way):
//   COpenBLAS, CGSL   system libraries (kept apart: their CBLAS headers clash in one module)
//   RLCommon          seeded RNG, atomic files, stable hashing: no numerics
//   KernelInterface   the engine's kernel protocol and the value types its kernels share
//   KernelsAVX512, KernelsAVX2, KernelsPortable
//                     one kernel source (Sources/KernelSource) built per SIMD level
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

/// The engine's kernels (Sources/KernelSource) are compiled once per SIMD level, each
/// module for its instruction set; rlscale picks one at start-up from the CPU's features
/// (`SIMDLevel`), so one binary runs on any x86-64 CPU at the best level it supports. The
/// lanes are the same IEEE operations at every level (Swift does not contract a·b + c into
/// an FMA), so the levels compute the same bits. Elsewhere than x86-64 all three modules are
/// the portable build.
func kernelTarget(_ name: String, cpu: String?) -> Target {
    var flags = ["-Ounchecked"]
    #if arch(x86_64)
    if let cpu { flags += ["-target-cpu", cpu] }
    #endif
    return .target(
        name: name, dependencies: ["KernelInterface", "COpenBLAS"],
        swiftSettings: [.unsafeFlags(flags, .when(configuration: .release))])
}

let optimised: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

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
        .target(name: "KernelInterface", swiftSettings: optimised),
        kernelTarget("KernelsAVX512", cpu: "skylake-avx512"),
        kernelTarget("KernelsAVX2", cpu: "haswell"),
        kernelTarget("KernelsPortable", cpu: nil),
        .target(
            name: "PolicyModel",
            dependencies: ["COpenBLAS", "RLCommon", "KernelInterface", "KernelsAVX512", "KernelsAVX2", "KernelsPortable"],
            swiftSettings: optimised),
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
        .testTarget(name: "PolicyModelTests", dependencies: ["PolicyModel", "RLCommon", "KernelInterface", "KernelsPortable"]),
        .testTarget(name: "RLTrainingTests", dependencies: ["RLTraining", "Rewards", "BasePolicies", "Evaluation", "Tasks", "ResultSchema", "PolicyModel", "RLCommon"]),
        .testTarget(name: "LawsTests", dependencies: ["Laws", "ResultSchema", "Tasks", "RLCommon"]),
        .testTarget(name: "GridTests", dependencies: ["Grid", "RLTraining", "BasePolicies", "Evaluation", "Tasks", "ResultSchema", "RLCommon", "Laws"]),
        .testTarget(name: "RewardsTests", dependencies: ["Rewards", "Evaluation", "BasePolicies", "Tasks", "ResultSchema", "PolicyModel", "RLCommon"]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks", "Evaluation", "BasePolicies", "ResultSchema", "PolicyModel", "RLCommon"]),
    ]
)
