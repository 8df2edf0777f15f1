import COpenBLAS
import Foundation

/// Which OpenBLAS kernel family ("core") the process runs, and choosing it.
///
/// A dynamic-architecture OpenBLAS picks its kernels when the library loads, from the
/// CPU model. A build that does not know the model (a newer CPU than the library, or a
/// VM that masks it) falls back to a generic SSE kernel such as `Prescott`, several
/// times slower than the AVX2/AVX-512 kernels the CPU can run. The core can only be
/// chosen before the library loads, through `OPENBLAS_CORETYPE`; rlscale therefore
/// re-executes itself once with that variable set (`relaunch`).
///
/// The core also fixes the bits: sgemm kernels sum in different orders, so results are
/// bitwise reproducible only for one core. A grid pins the core in its manifest and
/// every worker and Slurm task of the grid runs it.
public enum BLASCore {
    /// The core OpenBLAS loaded, as it names it (`Prescott`, `Haswell`, `SkylakeX`, …).
    public static var current: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build configuration (`openblas_get_config`), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH …".
    public static var configuration: String {
        guard let c = openblas_get_config() else { return "unknown" }
        return String(cString: c).trimmingCharacters(in: .whitespaces)
    }

    /// Cores a dynamic OpenBLAS falls back to for an unrecognised x86-64 CPU: SSE-only
    /// kernels, slower than anything a CPU with AVX2 can run.
    static let genericCores: Set<String> = [
        "prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn", "dunnington", "nehalem",
        "atom", "generic", "unknown",
    ]

    /// The x86-64 cores rlscale chooses between, best first, with the CPU flags
    /// (/proc/cpuinfo names) each needs; OPENBLAS_CORETYPE accepts these names.
    static let choices: [(name: String, flags: [String])] = [
        ("SkylakeX", ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]),
        ("Haswell", ["avx2", "fma"]),
        ("Sandybridge", ["avx"]),
    ]

    /// Whether `core` is a generic fallback kernel.
    public static func isGeneric(_ core: String) -> Bool { genericCores.contains(core.lowercased()) }

    /// The CPU's feature flags, from /proc/cpuinfo (empty where it cannot be read).
    public static func cpuFlags(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> Set<String> {
        guard let text = cpuinfo,
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") || $0.hasPrefix("Features") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// The CPU's model name, from /proc/cpuinfo.
    public static func cpuModel(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String {
        guard let text = cpuinfo, let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// The flags a core needs that `flags` lacks; nil when rlscale does not know the core.
    /// Generic cores need nothing beyond x86-64's SSE2/SSE3.
    public static func missingFlags(_ core: String, flags: Set<String>) -> [String]? {
        if isGeneric(core) { return [] }
        guard let c = choices.first(where: { $0.name.lowercased() == core.lowercased() }) else { return nil }
        return c.flags.filter { !flags.contains($0) }
    }

    /// The best core these CPU flags can run, or nil (no AVX: keep what OpenBLAS chose).
    public static func best(flags: Set<String>) -> String? {
        choices.first { $0.flags.allSatisfy(flags.contains) }?.name
    }

    /// The canonical spelling of a core name the user typed (`skylakex` → `SkylakeX`).
    public static func canonical(_ core: String) -> String {
        choices.first { $0.name.lowercased() == core.lowercased() }?.name ?? core
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The CPU cannot execute the core's instructions.
        case unsupported(core: String, missing: [String], cpu: String)
        /// The name is not one rlscale can check.
        case unknown(String)
        /// OpenBLAS loaded another core than the one asked for.
        case notLoaded(wanted: String, got: String)
        case exec(String)

        public var description: String {
            switch self {
            case .unsupported(let core, let missing, let cpu):
                "OpenBLAS core \(core) needs CPU features this machine (\(cpu)) lacks: \(missing.joined(separator: ", "))"
            case .unknown(let s):
                "unknown OpenBLAS core '\(s)' (choose one of \(choices.map(\.name).joined(separator: ", ")), or a generic one such as Prescott)"
            case .notLoaded(let wanted, let got):
                "OpenBLAS was asked for core \(wanted) (OPENBLAS_CORETYPE) but loaded \(got): this OpenBLAS build does not provide it"
            case .exec(let s): "cannot re-execute with the chosen OpenBLAS core: \(s)"
            }
        }
    }

    /// Checks that this CPU can run `core`.
    public static func check(_ core: String, flags: Set<String> = cpuFlags()) throws(Failure) {
        guard let missing = missingFlags(core, flags: flags) else { throw .unknown(core) }
        if !missing.isEmpty { throw .unsupported(core: canonical(core), missing: missing, cpu: cpuModel()) }
    }

    /// The environment variable set on the re-executed process so it does not loop.
    static let relaunchMarker = "RLSCALE_BLAS_RELAUNCHED"

    /// Makes this process run `core`: returns when it already does; otherwise sets
    /// OPENBLAS_CORETYPE and replaces the process with a fresh copy of itself (same
    /// arguments), which loads OpenBLAS anew. Throws when the CPU cannot run the core
    /// (checked even when the core is already loaded: a forced OPENBLAS_CORETYPE is not
    /// checked by OpenBLAS, and would die on its first illegal instruction), or when a
    /// relaunched process still did not get it.
    public static func run(_ core: String, flags: Set<String> = cpuFlags()) throws(Failure) {
        let loaded = current.lowercased() == core.lowercased()
        if let missing = missingFlags(core, flags: flags) {
            if !missing.isEmpty { throw .unsupported(core: canonical(core), missing: missing, cpu: cpuModel()) }
        } else if !loaded {
            throw .unknown(core)  // a core rlscale cannot check is accepted only as the one loaded
        }
        if loaded { return }
        if ProcessInfo.processInfo.environment[relaunchMarker] != nil {
            throw .notLoaded(wanted: canonical(core), got: current)
        }
        try relaunch(core: canonical(core))
    }

    /// Replaces the process with itself under OPENBLAS_CORETYPE = `core`.
    static func relaunch(core: String) throws(Failure) -> Never {
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(relaunchMarker, "1", 1)
        fflush(nil)
        let args = CommandLine.arguments
        let argv = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", argv)
        throw .exec(String(cString: strerror(errno)))
    }

    /// The automatic choice at start-up: when OpenBLAS fell back to a generic core on a
    /// CPU that can run a better one, and the user set neither OPENBLAS_CORETYPE nor a
    /// core of their own, the better core; else nil (keep what is loaded).
    public static func automaticChoice(
        current: String = current, flags: Set<String> = cpuFlags(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, environment[relaunchMarker] == nil, isGeneric(current),
            let better = best(flags: flags)
        else { return nil }
        return better
    }

    /// Called first thing by the command-line tool: applies `requested` (from
    /// `--blas-core`) or the automatic choice, saying so once on stderr.
    public static func configureAtLaunch(requested: String?) throws(Failure) {
        if let requested {
            try run(requested)
            return
        }
        guard let better = automaticChoice() else { return }
        let note = "rlscale: OpenBLAS chose its generic \(current) kernels on this CPU (\(cpuModel())); "
            + "using \(better) instead (override with --blas-core NAME)\n"
        FileHandle.standardError.write(Data(note.utf8))
        try relaunch(core: better)
    }
}
