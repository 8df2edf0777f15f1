import Foundation
import Grid
import ResultSchema
import RLCommon
import Testing

/// A grid's manifest records where its results came from: harness, numerics and schema
/// versions, the git commit of the grid file's checkout, the OpenBLAS core and the machine.
@Suite(.serialized) struct ManifestTests {
    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// `git args…` in `dir`; nil when git cannot run there.
    @discardableResult
    static func git(_ args: [String], in dir: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", dir, "-c", "user.name=rlscale test", "-c", "user.email=test@example.invalid",
                       "-c", "commit.gpgsign=false"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    @Test func aRunsManifestRecordsItsProvenance() throws {
        let ref = try TinyGridReference.shared.get()
        let gridDir = URL(fileURLWithPath: ref.gridFile).deletingLastPathComponent().path
        let m = try Self.json(gridDir + "/tiny/manifest.json")
        #expect(m["harness"] as? String == Harness.version)
        #expect((m["harnessVersion"] as? String)?.hasPrefix("rlscale \(Harness.version) (numerics \(Numerics.version),") == true, "\(m)")
        #expect(m["numerics"] as? Int == Numerics.version && m["cellSchema"] as? Int == CellResult.schemaVersion)
        #expect((m["blasCore"] as? String)?.isEmpty == false)
        let machine = try #require(m["machine"] as? [String: String])
        for key in ["cpu", "cores", "hostname", "openblas", "system", "arch"] { #expect(machine[key]?.isEmpty == false, "machine.\(key)") }
        #expect(Int(machine["cores"] ?? "") == ProcessInfo.processInfo.activeProcessorCount)
        #expect((m["writtenAt"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) } != nil, "\(m["writtenAt"] ?? "none")")
        // The grid file lies in a temporary folder: a commit only if that is inside a checkout.
        let head = Self.git(["rev-parse", "HEAD"], in: gridDir)
        #expect(m["gitCommit"] as? String == head)
        #expect((m["gitDirty"] != nil) == (head != nil))

        // What the runner reads back; a manifest written before these fields still reads.
        let store = ResultStore(root: gridDir, grid: "tiny")
        let read = try store.readManifest()
        #expect(read.harness == Harness.version && read.numerics == Numerics.version && read.gitCommit == head)
        var old = m
        for key in ["harness", "numerics", "cellSchema", "gitCommit", "gitDirty", "writtenAt"] { old.removeValue(forKey: key) }
        let oldStore = ResultStore(root: CLI.tempDir("old-manifest"), grid: "tiny")
        defer { try? FileManager.default.removeItem(atPath: oldStore.root) }
        try FileManager.default.createDirectory(atPath: oldStore.gridDir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: old).write(to: URL(fileURLWithPath: oldStore.manifestPath))
        let oldRead = try oldStore.readManifest()
        #expect(oldRead.harness == nil && oldRead.gitCommit == nil && oldRead.grid.cells.count == 6 && oldRead.blasCore == read.blasCore)
    }

    /// A grid file in a git checkout: the manifest names its commit and whether the tree is dirty.
    @Test func theManifestNamesTheGitCommitOfTheGridFile() throws {
        let dir = CLI.tempDir("manifest-git")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let repo = dir + "/repo"
        try FileManager.default.createDirectory(atPath: repo + "/grids", withIntermediateDirectories: true)
        let gridFile = repo + "/grids/tiny.toml"
        try tinyGrid.write(toFile: gridFile, atomically: true, encoding: .utf8)
        guard Self.git(["init", "-q"], in: repo) != nil else {
            Issue.record("git is not available")
            return
        }
        try #require(Self.git(["add", "grids/tiny.toml"], in: repo) != nil)
        try #require(Self.git(["commit", "-q", "-m", "grid"], in: repo) != nil)
        let head = try #require(Self.git(["rev-parse", "HEAD"], in: repo))
        let grid = try GridFile.load(gridFile)
        let store = ResultStore(root: dir + "/results", grid: grid.name)
        try store.createDirectories()  // results/ inside no checkout

        try store.writeManifest(grid, gridFile: gridFile)
        var m = try store.readManifest()
        #expect(m.gitCommit == head && m.gitDirty == false, "\(String(describing: m.gitCommit)) \(String(describing: m.gitDirty))")
        #expect(GitState.read(at: repo + "/grids") == GitState(commit: head, dirty: false))

        // An untracked file makes the tree dirty.
        try "x".write(toFile: repo + "/notes.txt", atomically: true, encoding: .utf8)
        try store.writeManifest(grid, gridFile: gridFile)
        m = try store.readManifest()
        #expect(m.gitCommit == head && m.gitDirty == true)

        // Outside any checkout: no git fields, and no error.
        let outside = dir + "/plain"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        if Self.git(["rev-parse", "HEAD"], in: outside) == nil {
            try tinyGrid.write(toFile: outside + "/tiny.toml", atomically: true, encoding: .utf8)
            try store.writeManifest(grid, gridFile: outside + "/tiny.toml")
            m = try store.readManifest()
            #expect(m.gitCommit == nil && m.gitDirty == nil)
            #expect(GitState.read(at: outside) == nil && GitState.read(at: dir + "/does-not-exist") == nil)
        }
    }
}
