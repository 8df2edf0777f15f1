import ArgumentParser
import Foundation
import PolicyModel

// `--blas-core NAME` and `--simd LEVEL` (any subcommand) are taken out of the arguments
// here, before any command runs: OpenBLAS fixes its kernels when it loads, so choosing one
// may mean re-executing this process with OPENBLAS_CORETYPE set (see BLASCore), and the
// engine's SIMD level must be fixed before any model exists (see SIMDLevel).
var arguments = Array(CommandLine.arguments.dropFirst())

/// Removes `--name VALUE` or `--name=VALUE` from `arguments` and returns VALUE.
@MainActor func takeLaunchOption(_ name: String, example: String) -> String? {
    guard let i = arguments.firstIndex(where: { $0 == name || $0.hasPrefix(name + "=") }) else { return nil }
    if arguments[i] == name {
        guard i + 1 < arguments.count else {
            FileHandle.standardError.write(Data("Error: \(name) needs a value, e.g. \(name) \(example)\n".utf8))
            exit(2)
        }
        defer { arguments.removeSubrange(i...(i + 1)) }
        return arguments[i + 1]
    }
    defer { arguments.remove(at: i) }
    return String(arguments[i].dropFirst(name.count + 1))
}
LaunchOptions.blasCore = takeLaunchOption("--blas-core", example: "SkylakeX")
LaunchOptions.simd = takeLaunchOption("--simd", example: "avx2")
do {
    try BLASCore.configureAtLaunch(requested: LaunchOptions.blasCore)
    if let name = LaunchOptions.simd {
        SIMDLevel.use(try SIMDLevel.checked(name))
    } else if let level = try SIMDLevel.startupChoice() {
        SIMDLevel.use(level)
    }
} catch {
    FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
    exit(2)
}
RLScale.main(arguments)
