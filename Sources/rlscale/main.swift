import ArgumentParser
import Foundation
import PolicyModel

// `--blas-core NAME` (any subcommand) is taken out of the arguments here, before any
// command runs: OpenBLAS fixes its kernels when it loads, so choosing one may mean
// re-executing this process with OPENBLAS_CORETYPE set (see BLASCore).
var arguments = Array(CommandLine.arguments.dropFirst())
if let i = arguments.firstIndex(where: { $0 == "--blas-core" || $0.hasPrefix("--blas-core=") }) {
    if arguments[i] == "--blas-core" {
        guard i + 1 < arguments.count else {
            FileHandle.standardError.write(Data("Error: --blas-core needs a core name, e.g. --blas-core SkylakeX\n".utf8))
            exit(2)
        }
        LaunchOptions.blasCore = arguments[i + 1]
        arguments.removeSubrange(i...(i + 1))
    } else {
        LaunchOptions.blasCore = String(arguments[i].dropFirst("--blas-core=".count))
        arguments.remove(at: i)
    }
}
do {
    try BLASCore.configureAtLaunch(requested: LaunchOptions.blasCore)
} catch {
    FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
    exit(2)
}
RLScale.main(arguments)
