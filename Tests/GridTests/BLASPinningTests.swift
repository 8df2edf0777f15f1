import Foundation
import Testing

/// A grid pins the OpenBLAS core its first run used: every document records it, and a run
/// that would compute with other kernels is refused before anything runs.
@Suite(.serialized) struct BLASPinningTests {
    static func json(_ path: String) throws -> [String: Any] {
        (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]) ?? [:]
    }

    @Test func aGridPinsItsCoreAndRefusesToMixKernels() throws {
        let ref = try TinyGridReference.shared.get()
        let store = URL(fileURLWithPath: ref.gridFile).deletingLastPathComponent().path + "/tiny"
        var manifest = try Self.json(store + "/manifest.json")
        let pinned = try #require(manifest["blasCore"] as? String)
        let cells = try FileManager.default.contentsOfDirectory(atPath: store + "/cells").filter { $0.hasSuffix(".json") }
        #expect(cells.count == 6)
        for c in cells { #expect(try Self.json(store + "/cells/" + c)["blasCore"] as? String == pinned, "\(c)") }
        let bases = URL(fileURLWithPath: store).deletingLastPathComponent().path + "/bases"
        let records = try FileManager.default.contentsOfDirectory(atPath: bases).filter { $0.hasSuffix(".json") }
        #expect(!records.isEmpty)
        for r in records { #expect(try Self.json(bases + "/" + r)["blasCore"] as? String == pinned, "\(r)") }

        // A store pinned to a core this machine cannot run (here: one rlscale cannot even
        // check) is refused, naming the pin, and nothing runs.
        let dir = CLI.tempDir("pin")
        try FileManager.default.createDirectory(atPath: dir + "/tiny", withIntermediateDirectories: true)
        manifest["blasCore"] = "NoSuchCore"
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/tiny/manifest.json"))
        let status = try CLI.run(["run", ref.gridFile, "--results", dir], log: dir + "/run.log")
        let log = try String(contentsOfFile: dir + "/run.log", encoding: .utf8)
        #expect(status != 0)
        #expect(log.contains("pinned to OpenBLAS core NoSuchCore"), "\(log)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/tiny/cells"))

        // --blas-core naming another core than the pin is refused too; the store is untouched.
        let other = pinned.lowercased() == "prescott" ? "Katmai" : "Prescott"
        let before = try CLI.cellDocuments(store + "/cells")
        let status2 = try CLI.run(["run", ref.gridFile, "--results", URL(fileURLWithPath: store).deletingLastPathComponent().path, "--blas-core", other], log: dir + "/conflict.log")
        let log2 = try String(contentsOfFile: dir + "/conflict.log", encoding: .utf8)
        #expect(status2 != 0)
        #expect(log2.contains("pinned to OpenBLAS core \(pinned)") || log2.contains("OpenBLAS was asked for core"), "\(log2)")
        #expect(try CLI.cellDocuments(store + "/cells") == before)
        #expect(try Self.json(store + "/manifest.json")["blasCore"] as? String == pinned)
    }

    /// The SIMD level is recorded and pinned the same way: every document names the grid's
    /// level; a store pinned to a level this machine cannot run is refused naming it, and a
    /// `--simd` other than the pin is refused with the store untouched.
    @Test func aGridPinsItsSIMDLevel() throws {
        let ref = try TinyGridReference.shared.get()
        let store = URL(fileURLWithPath: ref.gridFile).deletingLastPathComponent().path + "/tiny"
        var manifest = try Self.json(store + "/manifest.json")
        let pinned = try #require(manifest["simd"] as? String)
        for c in try FileManager.default.contentsOfDirectory(atPath: store + "/cells").filter({ $0.hasSuffix(".json") }) {
            #expect(try Self.json(store + "/cells/" + c)["simd"] as? String == pinned, "\(c)")
        }
        let dir = CLI.tempDir("simd-pin")
        try FileManager.default.createDirectory(atPath: dir + "/tiny", withIntermediateDirectories: true)
        manifest["simd"] = "avx1024"
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/tiny/manifest.json"))
        let status = try CLI.run(["run", ref.gridFile, "--results", dir], log: dir + "/run.log")
        let log = try String(contentsOfFile: dir + "/run.log", encoding: .utf8)
        #expect(status != 0 && log.contains("pinned to SIMD level avx1024"), "\(log)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/tiny/cells"))
        let other = pinned == "portable" ? "avx2" : "portable"
        let before = try CLI.cellDocuments(store + "/cells")
        let status2 = try CLI.run(
            ["run", ref.gridFile, "--results", URL(fileURLWithPath: store).deletingLastPathComponent().path, "--simd", other],
            log: dir + "/conflict.log")
        let log2 = try String(contentsOfFile: dir + "/conflict.log", encoding: .utf8)
        #expect(status2 != 0 && log2.contains("pinned to SIMD level \(pinned)"), "\(log2)")
        #expect(try CLI.cellDocuments(store + "/cells") == before)
    }
}
