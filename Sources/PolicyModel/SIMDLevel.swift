import Foundation
import KernelInterface
import KernelsAVX2
import KernelsAVX512
import KernelsPortable

/// The instruction set the engine's kernels run on: one of three builds of the same kernel
/// source (Sources/KernelSource), chosen at start-up from the CPU's features, overridable
/// (`--simd`), recorded in every base, cell and manifest, and pinned per grid like the BLAS
/// core. The builds compute the same bits (fixed vector widths, no FMA contraction: a test
/// compares them on every level this CPU runs); a level changes only the speed. A level the
/// CPU cannot execute is refused with the features it lacks, never run into a SIGILL.
public enum SIMDLevel: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    /// AVX-512 (F, BW, DQ, VL, CD): 16-float registers.
    case avx512
    /// AVX2 with FMA units (no FMA instructions are emitted): 8-float registers.
    case avx2
    /// Baseline x86-64 (SSE2) or any other architecture: 4-float registers.
    case portable

    public var description: String { rawValue }

    /// The CPU flags (/proc/cpuinfo names) a level needs.
    public var flags: [String] {
        switch self {
        case .avx512: ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "avx2", "fma"]
        case .avx2: ["avx2", "fma"]
        case .portable: []
        }
    }

    /// The kernel module compiled for the level. On a machine other than x86-64 every
    /// module is the portable build.
    public var kernels: any EngineKernels.Type {
        switch self {
        case .avx512: KernelsAVX512.Kernels.self
        case .avx2: KernelsAVX2.Kernels.self
        case .portable: KernelsPortable.Kernels.self
        }
    }

    /// The flags `level` needs that `flags` lacks (empty: the CPU runs it).
    public func missing(from flags: Set<String>) -> [String] {
        #if arch(x86_64)
        return self.flags.filter { !flags.contains($0) }
        #else
        return self == .portable ? [] : ["x86-64"]
        #endif
    }

    /// The start-up preference, first that the CPU runs wins. AVX2 comes before AVX-512:
    /// on the machine the figures were measured on (AMD EPYC, Zen 4, which splits each
    /// 512-bit operation in two) the two builds ran a main-job cell equally fast (same-round
    /// ratio median 0.99 over six interleaved rounds, 0.87–1.12), and AVX2 runs on more CPUs;
    /// `--simd avx512` chooses the other where it wins.
    public static let preference: [SIMDLevel] = [.avx2, .avx512, .portable]

    /// The level the start-up choice takes on a CPU with these flags.
    public static func best(flags: Set<String> = BLASCore.cpuFlags()) -> SIMDLevel {
        preference.first { $0.missing(from: flags).isEmpty } ?? .portable
    }

    /// The levels this CPU runs, in preference order.
    public static func supported(flags: Set<String> = BLASCore.cpuFlags()) -> [SIMDLevel] {
        preference.filter { $0.missing(from: flags).isEmpty }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unknown(String)
        case unsupported(level: SIMDLevel, missing: [String], cpu: String)

        public var description: String {
            switch self {
            case .unknown(let s): "unknown SIMD level '\(s)' (choose one of \(SIMDLevel.allCases.map(\.rawValue).joined(separator: ", ")))"
            case .unsupported(let level, let missing, let cpu):
                "SIMD level \(level) needs CPU features this machine (\(cpu)) lacks: \(missing.joined(separator: ", "))"
            }
        }
    }

    /// The level spelled `name`, checked against this CPU.
    public static func checked(_ name: String, flags: Set<String> = BLASCore.cpuFlags()) throws(Failure) -> SIMDLevel {
        guard let level = SIMDLevel(rawValue: name.lowercased()) else { throw .unknown(name) }
        let missing = level.missing(from: flags)
        guard missing.isEmpty else { throw .unsupported(level: level, missing: missing, cpu: BLASCore.cpuModel()) }
        return level
    }

    /// The environment variable a grid runner sets for its workers (and a user may set):
    /// the level every process of the grid computes with.
    public static let environmentKey = "RLSCALE_SIMD"

    /// The process's level: `RLSCALE_SIMD` when set (checked), else `best()`.
    /// `use(_:)` changes it (the command line's `--simd`, a grid's pin) before any model exists.
    public static var active: SIMDLevel {
        lock.lock()
        defer { lock.unlock() }
        if let chosen { return chosen }
        let level = (try? startupChoice()) ?? best()
        chosen = level
        return level
    }

    /// Makes `level` the process's level (models created afterwards use it), and exports it
    /// as `RLSCALE_SIMD` so that every process this one starts (grid workers, bench cells)
    /// computes with it too.
    public static func use(_ level: SIMDLevel) {
        lock.lock()
        chosen = level
        setenv(environmentKey, level.rawValue, 1)
        lock.unlock()
    }

    /// `RLSCALE_SIMD` checked against this CPU, or nil when unset.
    public static func startupChoice(environment: [String: String] = ProcessInfo.processInfo.environment) throws(Failure) -> SIMDLevel? {
        guard let name = environment[environmentKey], !name.isEmpty else { return nil }
        return try checked(name)
    }

    nonisolated(unsafe) private static var chosen: SIMDLevel?
    private static let lock = NSLock()
}
