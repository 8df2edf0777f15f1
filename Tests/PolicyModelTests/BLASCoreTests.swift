import PolicyModel
import Testing

/// Choosing OpenBLAS's kernels: which core a CPU can run, when rlscale overrides a
/// generic fallback, and that a core the CPU cannot execute is refused before any BLAS
/// call (the relaunch itself is exercised by every `rlscale` process the grid tests run).
@Suite struct BLASCoreTests {
    static let sapphireRapids: Set<String> = ["sse2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    static let zen3: Set<String> = ["sse2", "avx", "avx2", "fma"]
    static let oldXeon: Set<String> = ["sse2", "sse4_2", "avx"]

    @Test func cpuFlagsAreReadFromCpuinfo() {
        let cpuinfo = """
            processor\t: 0
            model name\t: Intel(R) Xeon(R) Processor
            flags\t\t: fpu sse2 avx2 fma avx512f avx512bw

            processor\t: 1
            flags\t\t: fpu sse2
            """
        #expect(BLASCore.cpuFlags(cpuinfo: cpuinfo) == ["fpu", "sse2", "avx2", "fma", "avx512f", "avx512bw"])
        #expect(BLASCore.cpuModel(cpuinfo: cpuinfo) == "Intel(R) Xeon(R) Processor")
        #expect(BLASCore.cpuFlags(cpuinfo: nil).isEmpty)
    }

    @Test func theBestCoreTheCPUCanRun() {
        #expect(BLASCore.best(flags: Self.sapphireRapids) == "SkylakeX")
        #expect(BLASCore.best(flags: Self.zen3) == "Haswell")
        #expect(BLASCore.best(flags: Self.oldXeon) == "Sandybridge")
        #expect(BLASCore.best(flags: ["sse2"]) == nil)
    }

    @Test func genericFallbacksAreOverriddenOnlyWhenNothingWasAskedFor() {
        #expect(BLASCore.isGeneric("Prescott") && BLASCore.isGeneric("katmai") && !BLASCore.isGeneric("Haswell"))
        #expect(BLASCore.automaticChoice(current: "Prescott", flags: Self.sapphireRapids, environment: [:]) == "SkylakeX")
        #expect(BLASCore.automaticChoice(current: "Prescott", flags: Self.zen3, environment: [:]) == "Haswell")
        // OpenBLAS recognised the CPU: keep its choice.
        #expect(BLASCore.automaticChoice(current: "Haswell", flags: Self.sapphireRapids, environment: [:]) == nil)
        // The user (or the grid's runner) set OPENBLAS_CORETYPE: keep it.
        #expect(BLASCore.automaticChoice(current: "Prescott", flags: Self.sapphireRapids, environment: ["OPENBLAS_CORETYPE": "Prescott"]) == nil)
        // No AVX at all: nothing better to pick.
        #expect(BLASCore.automaticChoice(current: "Prescott", flags: ["sse2"], environment: [:]) == nil)
    }

    @Test func aCoreTheCPUCannotExecuteIsRefusedWithTheMissingFeatures() {
        #expect(BLASCore.missingFlags("SkylakeX", flags: Self.zen3) == ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
        #expect(BLASCore.missingFlags("skylakex", flags: Self.sapphireRapids) == [])
        #expect(BLASCore.missingFlags("Prescott", flags: []) == [])
        #expect(BLASCore.missingFlags("Zen", flags: Self.zen3) == nil)
        do {
            try BLASCore.run("SkylakeX", flags: Self.zen3)
            Issue.record("SkylakeX accepted on a CPU without AVX-512")
        } catch {
            guard case .unsupported(let core, let missing, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(core == "SkylakeX" && missing.contains("avx512f"))
            #expect(error.description.contains("needs CPU features"))
        }
        // A name rlscale cannot check is accepted only when it is the core already loaded.
        #expect(throws: BLASCore.Failure.unknown("NoSuchCore")) { try BLASCore.run("NoSuchCore", flags: Self.zen3) }
        #expect(throws: Never.self) { try BLASCore.run(BLASCore.current, flags: Self.sapphireRapids) }
    }
}
