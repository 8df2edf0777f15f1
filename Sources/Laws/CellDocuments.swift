import Foundation
import ResultSchema

/// The done cell documents of a result store, whole (the analyses that read more than a
/// learning curve: over-optimisation, support expansion).
public enum CellDocuments {
    /// Reads every `RESULTS/cells/*.json` (as `CellStore.load` does: the current schema only,
    /// one numerics version unless `allowMixedNumerics`), keeping the done cells in id order.
    /// Throws when the folder is not a result store or mixes numerics versions; a document
    /// that cannot be used is skipped with its reason.
    public static func load(results: String, allowMixedNumerics: Bool) throws(LawError)
        -> (ids: [String], documents: [CellResult], skipped: [(id: String, reason: String)])
    {
        let fm = FileManager.default
        let dir = (results as NSString).appendingPathComponent("cells")
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .io("\(results) is not a result store: it has no cells/ folder (`rlscale run GRID` writes results/<grid>/cells/)")
        }
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: dir) } catch {
            throw .io("cannot list \(dir): \(error.localizedDescription)")
        }
        struct Probe: Decodable { var schema: Int?; var status: String? }
        var ids: [String] = [], docs: [CellResult] = [], skipped: [(id: String, reason: String)] = []
        for name in names.sorted() where name.hasSuffix(".json") && !name.hasPrefix(".") {
            let id = String(name.dropLast(5))
            guard let data = fm.contents(atPath: (dir as NSString).appendingPathComponent(name)) else {
                skipped.append((id, "unreadable")); continue
            }
            guard let probe = try? JSONDecoder().decode(Probe.self, from: data) else { skipped.append((id, "not a cell document")); continue }
            guard probe.schema == CellResult.schemaVersion else {
                skipped.append((id, "result schema \(probe.schema.map(String.init) ?? "missing"), this version reads \(CellResult.schemaVersion)"))
                continue
            }
            if let status = probe.status, status != "done" { skipped.append((id, "status \(status)")); continue }
            do { docs.append(try JSONDecoder().decode(CellResult.self, from: data)); ids.append(id) } catch {
                skipped.append((id, "not a cell document: \(error)"))
            }
        }
        let versions = Dictionary(grouping: docs.indices) { docs[$0].numerics.map { "numerics \($0)" } ?? "no numerics version (older)" }
        if versions.count > 1 && !allowMixedNumerics {
            let parts = versions.keys.sorted().map { v in
                let some = versions[v, default: []].map { ids[$0] }.sorted()
                return "\(v): \(some.count) cell(s) (\(some.prefix(3).joined(separator: ", "))\(some.count > 3 ? ", …" : ""))"
            }
            throw .parse("\(results) mixes results of different numerics: " + parts.joined(separator: "; ")
                         + ". Rerun the grid with this version (its cells get new ids) or pass --allow-mixed.")
        }
        return (ids, docs, skipped)
    }
}
