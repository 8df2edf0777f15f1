import Foundation

/// The git checkout a grid file lives in, for the manifest's provenance.
public struct GitState: Sendable, Equatable {
    /// `git rev-parse HEAD`.
    public var commit: String
    /// `git status --porcelain` printed anything (tracked changes or untracked files).
    public var dirty: Bool

    public init(commit: String, dirty: Bool) {
        self.commit = commit; self.dirty = dirty
    }

    /// The state of the checkout holding `directory`, or nil when there is none (not a git
    /// checkout, no commit yet, git not installed or failing): never an error.
    public static func read(at directory: String) -> GitState? {
        guard let head = run(["rev-parse", "HEAD"], in: directory)?.trimmingCharacters(in: .whitespacesAndNewlines),
            head.count >= 40, head.allSatisfy(\.isHexDigit)
        else { return nil }
        guard let status = run(["status", "--porcelain"], in: directory) else { return nil }
        return GitState(commit: head, dirty: !status.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    /// `git -C directory args…`'s standard output, or nil when it cannot run or fails.
    static func run(_ args: [String], in directory: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", directory.isEmpty ? "." : directory] + args
        var env = ProcessInfo.processInfo.environment
        env["GIT_OPTIONAL_LOCKS"] = "0"  // `status` must not take the index lock of a tree in use
        env["LC_ALL"] = "C"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationReason == .exit, p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
