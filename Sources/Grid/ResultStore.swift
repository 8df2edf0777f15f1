import BasePolicies
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import RLTraining

/// The on-disk layout of results, readable by other tools:
///
///     RESULTS/bases/<size>-<key>.safetensors   base policies, shared by every grid
///     RESULTS/bases/<size>-<key>.json          their pretraining and evaluation records
///     RESULTS/<grid>/manifest.json             resolved grid, harness version, git commit, machine
///     RESULTS/<grid>/cells/<cell-id>.json      one document per finished (or failed) cell
///     RESULTS/<grid>/logs/<cell-id>.log        each worker's output
///
/// Every file is written atomically (temporary file, fsync, rename).
public struct ResultStore: Sendable {
    public var root: String
    public var grid: String

    public init(root: String, grid: String) {
        self.root = root
        self.grid = grid
    }

    public var gridDir: String { "\(root)/\(grid)" }
    public var cellsDir: String { "\(gridDir)/cells" }
    public var logsDir: String { "\(gridDir)/logs" }
    public var manifestPath: String { "\(gridDir)/manifest.json" }
    public var bases: BaseCache { BaseCache(directory: "\(root)/bases") }
    public func cellPath(_ id: String) -> String { "\(cellsDir)/\(id).json" }
    public func logPath(_ id: String) -> String { "\(logsDir)/\(id).log" }

    public func createDirectories() throws {
        for d in [cellsDir, logsDir, bases.directory] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
    }

    public func hasCell(_ id: String) -> Bool { FileManager.default.fileExists(atPath: cellPath(id)) }

    /// Where a cell stands in this store.
    public enum CellState: Sendable, Equatable {
        /// Its document is there and finished.
        case done
        /// Its document records a failure.
        case failed
        /// No usable document yet (none, or one `run` would quarantine).
        case pending
    }

    /// The state of cell `id`: pending without a usable document, else its document's status.
    public func state(of id: String) -> CellState {
        guard hasCell(id), cellProblem(id) == nil else { return .pending }
        return (try? readCell(id))?.status == "failed" ? .failed : .done
    }

    public func readCell(_ id: String) throws -> CellResult {
        try JSONDecoder().decode(CellResult.self, from: Data(contentsOf: URL(fileURLWithPath: cellPath(id))))
    }

    /// Why the document of cell `id` cannot be used (unreadable, not a cell document, or
    /// another result schema), or nil when it reads.
    public func cellProblem(_ id: String) -> String? {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: cellPath(id))) } catch { return "unreadable: \(error.localizedDescription)" }
        struct Schema: Decodable { var schema: Int? }
        guard let schema = try? JSONDecoder().decode(Schema.self, from: data) else { return "not JSON (truncated or corrupt)" }
        guard schema.schema == CellResult.schemaVersion else {
            return "result schema \(schema.schema.map(String.init) ?? "missing"), this version writes \(CellResult.schemaVersion)"
        }
        do { _ = try JSONDecoder().decode(CellResult.self, from: data) } catch { return "not a cell document: \(error)" }
        return nil
    }

    public var quarantineDir: String { "\(gridDir)/quarantine" }

    /// Moves the document of cell `id` to `quarantine/` when it cannot be used (see
    /// `cellProblem`), so that the cell counts as pending and is run again; returns where it
    /// went and why, or nil when the document is fine (or absent). Never deletes anything.
    public func quarantineIfUnusable(_ id: String) -> (path: String, reason: String)? {
        guard hasCell(id), let reason = cellProblem(id) else { return nil }
        let fm = FileManager.default
        try? fm.createDirectory(atPath: quarantineDir, withIntermediateDirectories: true)
        var dest = "\(quarantineDir)/\(id).json", n = 1
        while fm.fileExists(atPath: dest) {
            dest = "\(quarantineDir)/\(id).\(n).json"
            n += 1
        }
        do { try fm.moveItem(atPath: cellPath(id), toPath: dest) } catch { return nil }
        return (dest, reason)
    }

    public func writeCell(_ r: CellResult, id: String) throws {
        try AtomicFile.write(try CellResult.encoder.encode(r), to: cellPath(id))
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }

    /// What a manifest records. It is rewritten by every `run` (and `slurm` submission), so
    /// its provenance is that of the latest one; the fields after `blasCore` are absent in
    /// manifests written before they existed.
    public struct Manifest: Codable, Sendable {
        public var grid: Grid
        public var gridFile: String
        /// "rlscale 0.1.0 (numerics 4, cell schema 2, base schema 2)".
        public var harnessVersion: String
        /// hostname, system, arch, cores, cpu (model string), openblas (build configuration).
        public var machine: [String: String]
        /// The OpenBLAS core every base and cell of the grid runs (pinned by the first run
        /// or submission; nil in manifests written before pinning existed).
        public var blasCore: String?
        /// The SIMD level every base and cell of the grid computes with (pinned like the
        /// core; nil in manifests written before numerics 4).
        public var simd: String? = nil
        /// `Harness.version`, `Numerics.version` and `CellResult.schemaVersion` as fields.
        public var harness: String? = nil
        public var numerics: Int? = nil
        public var cellSchema: Int? = nil
        /// The commit checked out where the grid file lives (`git rev-parse HEAD`) and
        /// whether that tree had changes (`git status --porcelain` non-empty, untracked files
        /// included); absent when the grid file is not in a git checkout or git is missing.
        public var gitCommit: String? = nil
        public var gitDirty: Bool? = nil
        /// When this manifest was written (ISO 8601, UTC).
        public var writtenAt: String? = nil
    }

    /// The OpenBLAS core the grid's existing manifest pins, or nil when there is none yet.
    public func pinnedBLASCore() -> String? {
        guard FileManager.default.fileExists(atPath: manifestPath) else { return nil }
        return (try? readManifest())?.blasCore
    }

    /// The SIMD level the grid's existing manifest pins, or nil when there is none yet.
    public func pinnedSIMD() -> String? {
        guard FileManager.default.fileExists(atPath: manifestPath) else { return nil }
        return (try? readManifest())?.simd
    }

    public static let harnessVersion =
        "rlscale \(Harness.version) (numerics \(Numerics.version), cell schema \(CellResult.schemaVersion), base schema \(BaseSpec.schemaVersion))"

    public func writeManifest(_ grid: Grid, gridFile: String) throws {
        var uts = utsname()
        uname(&uts)
        func str<T>(_ t: T) -> String { withUnsafeBytes(of: t) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
        let machine = [
            "hostname": str(uts.nodename), "system": str(uts.sysname) + " " + str(uts.release), "arch": str(uts.machine),
            "cores": String(ProcessInfo.processInfo.activeProcessorCount), "cpu": BLASCore.cpuModel(),
            "openblas": BLASCore.configuration,
        ]
        var m = Manifest(
            grid: grid, gridFile: gridFile, harnessVersion: Self.harnessVersion, machine: machine, blasCore: BLASCore.current)
        m.simd = SIMDLevel.active.rawValue
        m.harness = Harness.version
        m.numerics = Numerics.version
        m.cellSchema = CellResult.schemaVersion
        let gridDir = URL(fileURLWithPath: gridFile).deletingLastPathComponent().path
        if let git = GitState.read(at: gridDir) {
            m.gitCommit = git.commit
            m.gitDirty = git.dirty
        }
        let iso = ISO8601DateFormatter()
        iso.timeZone = TimeZone(identifier: "UTC")
        m.writtenAt = iso.string(from: Date())
        try AtomicFile.write(try Self.encoder.encode(m), to: manifestPath)
    }

    public func readManifest() throws(GridRunner.RunError) -> Manifest {
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw .io("\(gridDir) is not a result store: it has no manifest.json (`rlscale run GRID --results DIR` writes DIR/<grid>/manifest.json)")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: manifestPath)) } catch {
            throw .io("\(manifestPath): cannot read: \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw .io("\(manifestPath): not a manifest this version can read: \(error)")
        }
    }
}
