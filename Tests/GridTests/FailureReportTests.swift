import Foundation
import Testing

/// A failed cell is visible where the user looks: reported when it fails and in the final
/// summary with its reason and log, listed by `status`, and `run` exits 1 (so
/// `rlscale run GRID && rlscale fit …` stops), again on a rerun that skips it.
@Suite struct FailureReportTests {
    @Test func aFailedCellIsReportedAndFailsTheRun() throws {
        let dir = CLI.tempDir("failure")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The only cell's worker cannot load its base (a corrupt checkpoint): it fails for good.
        let grid = tinyGrid.replacingOccurrences(of: "method = [\"grpo\", \"rloo\", \"dapo\"]", with: "method = [\"grpo\"]")
            .replacingOccurrences(of: "n = [2, 4]", with: "n = [2]")
        let gridFile = dir + "/fail.toml"
        try grid.write(toFile: gridFile, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["run", gridFile, "--results", dir, "--bases-only"], log: dir + "/bases.log") == 0)
        for f in try FileManager.default.contentsOfDirectory(atPath: dir + "/bases") where f.hasSuffix(".safetensors") {
            try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: dir + "/bases/" + f))
        }
        let log = dir + "/run.log"
        #expect(try CLI.run(["run", gridFile, "--results", dir, "--jobs", "1"], log: log) == 1)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let cells = try FileManager.default.contentsOfDirectory(atPath: dir + "/tiny/cells").filter { $0.hasSuffix(".json") }
        let id = try #require(cells.first).dropLast(5)
        #expect(text.contains("cell \(id) failed: "), "\(text)")
        #expect(text.contains("1 failed") && text.contains("  failed \(id): ") && text.contains("logs/\(id).log"), "\(text)")
        // A rerun skips the recorded cell but still says it failed, and still exits 1.
        #expect(try CLI.run(["run", gridFile, "--results", dir, "--jobs", "1"], log: log) == 1)
        let again = try String(contentsOfFile: log, encoding: .utf8)
        #expect(again.contains("  failed \(id) (earlier run): ") && again.contains("1 failed (1 in earlier runs)"), "\(again)")
        #expect(try CLI.run(["status", dir + "/tiny"], log: log) == 0)
        let status = try String(contentsOfFile: log, encoding: .utf8)
        #expect(status.contains("failed \(id): "), "\(status)")
    }
}
