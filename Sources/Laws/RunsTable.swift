import Foundation
import ResultSchema

/// The runs table: one row per run × evaluation point, the tidy form in which `rlscale fit
/// --curves` reads learning curves from any source and `rlscale export --format runs` writes
/// a store's. Fitting a store and fitting its runs table give the same laws.csv and
/// allocation.csv.
///
/// Columns (the header names them; any order):
/// - `run` (required): the run's id; every row of a run carries the same per-run columns.
///   (JSON lines: one object per row with the same keys; numbers and strings, null empty.)
/// - `compute` (required): compute spent when the point was evaluated (0 for the step-0 row),
///   in the study's unit (FLOPs for rlscale's cells).
/// - `score` (required): the score at that point; `score_se` its standard error (empty: unknown).
/// - At least one of `N` (model size), `n` (rollouts per problem), `bp` (problems per batch);
///   a missing one is constant (N = 0, n = 1, bp = 1).
/// - Optional per run: `method` (default "run"), `task_mix` (default empty), `seed` (default
///   0), `budget`, `flops_per_rollout`, `wall_seconds`, `score_problems` (evaluation problems
///   behind the score), `schedule_reads_budget` (true/false), `numerics`, `grid`.
/// - Optional per point: `rollouts` (rollouts sampled so far), `step`.
/// - Every other column is a setting: runs that differ in it form different law groups
///   (`LawGrouping`), like `lr` or `lag` in a store (where those two and `curriculum`, when
///   they take one value per configuration, stay in the arm: `followingAllocation`).
///   Registry keys that are not grouping settings (method knobs, the task mixture's parts:
///   `CellSetting` roles other than `setting`) are read as settings only for `--within`.
public enum RunsTable {
    /// The columns with a fixed meaning, in the order `export` writes them.
    public static let known = ["grid", "run", "method", "task_mix", "N", "n", "bp", "seed", "budget", "step", "compute", "rollouts",
                               "score", "score_se", "flops_per_rollout", "wall_seconds", "score_problems",
                               "schedule_reads_budget", "numerics"]

    /// The runs table of `store`'s cells: every curve point of every cell (prefix cells
    /// included: the reader folds them again), then the cell's grouping settings.
    public static func table(_ store: CellStore) -> CSVTable {
        let settings = CellSetting.groupingKeys
        var t = CSVTable(header: known.filter { $0 != "step" } + settings)
        for c in store.cells {
            let head = [store.grid, c.id, c.method, c.taskMix, csvNumber(c.parameters), String(c.rolloutsPerProblem),
                        String(c.problemsPerBatch), String(c.seed), csvNumber(c.budget)]
            let tail = [csvNumber(c.flopsPerRollout), csvNumber(c.wallSeconds), String(c.evalProblems), String(c.scheduleDependsOnBudget),
                        c.numerics.map(String.init) ?? ""] + settings.map { c.settings[$0] ?? "" }
            for p in c.curve {
                t.rows.append(head + [csvNumber(p.compute), csvNumber(p.rollouts), csvNumber(p.score), csvNumber(p.se)] + tail)
            }
        }
        return t
    }

    /// Reads a runs table from `path` (CSV, or JSON lines when it ends in `.jsonl`) into a
    /// store named by its `grid` column, else by the file's folder. Errors name the file, the
    /// line and the column.
    public static func read(path: String, allowMixedNumerics: Bool = false) throws(LawError) -> CellStore {
        let table: CSVTable
        if path.hasSuffix(".jsonl") {
            guard let data = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)") }
            guard let text = String(data: data, encoding: .utf8) else { throw .parse("\(path): not UTF-8 text") }
            table = try jsonLines(text, file: path)
        } else {
            table = try CSVTable.read(path: path)
        }
        let folder = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent().lastPathComponent
        let store = try cells(table, file: path, defaultGrid: folder)
        let versions = Set(store.cells.map { $0.numerics ?? -1 })
        if versions.count > 1, !allowMixedNumerics {
            throw .parse("\(path) mixes runs of numerics versions \(versions.sorted().map { $0 < 0 ? "none" : String($0) }); pass --allow-mixed")
        }
        return store
    }

    /// The cells of a parsed table.
    static func cells(_ t: CSVTable, file: String, defaultGrid: String) throws(LawError) -> CellStore {
        func column(_ name: String) -> Int? { t.header.firstIndex(of: name) }
        func where_(_ row: Int, _ name: String) -> String { "\(file):\(t.line(ofRow: row)): column '\(name)'" }
        for required in ["run", "compute", "score"] where column(required) == nil {
            throw .badRequest("\(file):1: missing column '\(required)' (a runs table needs run, compute, score and at least one of N, n, bp)")
        }
        guard ["N", "n", "bp"].contains(where: { column($0) != nil }) else {
            throw .badRequest("\(file):1: a runs table needs at least one of the columns N, n, bp")
        }
        if let dup = t.header.first(where: { h in t.header.filter { $0 == h }.count > 1 }) {
            throw .badRequest("\(file):1: column '\(dup)' appears twice")
        }
        let settingColumns = t.header.filter { !known.contains($0) }
        // A registry key that is not a grouping setting (a method knob, a part of the task
        // label) would be neither a group nor a label here: it belongs in `method` or `task_mix`.
        if let c = settingColumns.first(where: { CellSetting.named($0).map { $0.role != .setting } ?? false }) {
            let home = CellSetting.named(c)?.role == .taskMix ? "task_mix (e.g. sort:1 [easy D=256])" : "method (e.g. grpo[kl=0.1])"
            throw .badRequest("\(file):1: column '\(c)' is part of a run's \(home); write it there, not as a column of its own")
        }
        func text(_ r: Int, _ name: String) -> String? { column(name).map { t.rows[r][$0].trimmingCharacters(in: .whitespaces) } }
        func number(_ r: Int, _ name: String, default d: Double?, finite: Bool = true, min: Double? = nil) throws(LawError) -> Double {
            guard let s = text(r, name), !s.isEmpty else {
                guard let d else { throw .parse("\(where_(r, name)): empty (a number is required)") }
                return d
            }
            let v = s.lowercased() == "nan" ? Double.nan : Double(s)
            guard let v, !finite || v.isFinite else { throw .parse("\(where_(r, name)): '\(s)' is not a finite number") }
            if let min, v < min { throw .parse("\(where_(r, name)): \(s) is below \(compactNumber(min))") }
            return v
        }
        func seed(_ r: Int) throws(LawError) -> UInt64 {
            guard let s = text(r, "seed"), !s.isEmpty else { return 0 }
            guard let v = UInt64(s) else { throw .parse("\(where_(r, "seed")): '\(s)' is not a whole number >= 0") }
            return v
        }
        func integer(_ r: Int, _ name: String, default d: Int, min: Int) throws(LawError) -> Int {
            guard let s = text(r, name), !s.isEmpty else { return d }
            guard let v = Int(s), v >= min else { throw .parse("\(where_(r, name)): '\(s)' is not a whole number >= \(min)") }
            return v
        }
        var order: [String] = []
        var byRun: [String: (cell: Cell, firstRow: Int)] = [:]
        var grid: String?
        for r in t.rows.indices {
            guard let run = text(r, "run"), !run.isEmpty else { throw .parse("\(where_(r, "run")): empty run id") }
            let compute = try number(r, "compute", default: nil, min: 0)
            let score = try number(r, "score", default: nil)
            let se = try number(r, "score_se", default: .nan, finite: false, min: 0)
            let rollouts = try number(r, "rollouts", default: .nan, finite: false, min: 0)
            var settings: [String: String] = [:]
            for s in settingColumns {
                // One spelling per number (1e-4 and 0.0001 are one setting), as grids spell them.
                let v = text(r, s) ?? ""
                settings[s] = Double(v).map { $0.isFinite ? knobNumber($0) : v } ?? v
            }
            let schedule: Bool
            switch text(r, "schedule_reads_budget")?.lowercased() ?? "" {
            case "", "false", "0": schedule = false
            case "true", "1": schedule = true
            case let other: throw .parse("\(where_(r, "schedule_reads_budget")): '\(other)' is not true or false")
            }
            let numerics: Int? = (text(r, "numerics") ?? "").isEmpty ? nil : try integer(r, "numerics", default: 0, min: 0)
            let cell = Cell(
                id: run, method: text(r, "method").flatMap { $0.isEmpty ? nil : $0 } ?? "run", taskMix: text(r, "task_mix") ?? "",
                parameters: try number(r, "N", default: 0, min: 0), rolloutsPerProblem: try integer(r, "n", default: 1, min: 1),
                problemsPerBatch: try integer(r, "bp", default: 1, min: 1),
                seed: try seed(r), curve: [],
                flopsPerRollout: try number(r, "flops_per_rollout", default: .nan, finite: false),
                numerics: numerics, settings: settings, budget: try number(r, "budget", default: .nan, finite: false),
                scheduleDependsOnBudget: schedule, wallSeconds: try number(r, "wall_seconds", default: .nan, finite: false, min: 0),
                evalProblems: try integer(r, "score_problems", default: 0, min: 0))
            if let g = text(r, "grid"), !g.isEmpty {
                if let known = grid, known != g { throw .parse("\(where_(r, "grid")): '\(g)' differs from '\(known)' above") }
                grid = g
            }
            // As a store's cells carry them, so that `--within seed=1` reads either alike.
            var c0 = cell
            c0.settings["seed"] = String(c0.seed)
            if c0.budget.isFinite { c0.settings["budget"] = knobNumber(c0.budget) }
            let point = CurvePoint(compute: compute, rollouts: rollouts, score: score, se: se)
            if var entry = byRun[run] {
                if let differing = perRunDifference(entry.cell, c0) {
                    throw .parse("\(where_(r, differing)): run '\(run)' has another value here than on line \(t.line(ofRow: entry.firstRow))")
                }
                entry.cell.curve.append(point)
                byRun[run] = entry
            } else {
                var c = c0
                c.curve = [point]
                byRun[run] = (c, r)
                order.append(run)
            }
        }
        var cells = order.compactMap { byRun[$0]?.cell }
        for i in cells.indices { cells[i].curve.sort { $0.compute < $1.compute } }
        guard !cells.isEmpty else { throw .parse("\(file): no rows") }
        return CellStore(grid: grid ?? defaultGrid, cells: cells.sorted { $0.id < $1.id })
    }

    /// The first per-run column in which `b` differs from `a`, if any.
    static func perRunDifference(_ a: Cell, _ b: Cell) -> String? {
        func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
        if a.method != b.method { return "method" }
        if a.taskMix != b.taskMix { return "task_mix" }
        if !same(a.parameters, b.parameters) { return "N" }
        if a.rolloutsPerProblem != b.rolloutsPerProblem { return "n" }
        if a.problemsPerBatch != b.problemsPerBatch { return "bp" }
        if a.seed != b.seed { return "seed" }
        if !same(a.budget, b.budget) { return "budget" }
        if !same(a.flopsPerRollout, b.flopsPerRollout) { return "flops_per_rollout" }
        if !same(a.wallSeconds, b.wallSeconds) { return "wall_seconds" }
        if a.evalProblems != b.evalProblems { return "score_problems" }
        if a.scheduleDependsOnBudget != b.scheduleDependsOnBudget { return "schedule_reads_budget" }
        if a.numerics != b.numerics { return "numerics" }
        return a.settings.keys.sorted().first { a.settings[$0] != b.settings[$0] }
    }

    /// A JSON-lines runs table: one object per line, values strings or numbers (null: empty).
    static func jsonLines(_ text: String, file: String) throws(LawError) -> CSVTable {
        var header: [String] = [], rows: [[String: String]] = [], lines: [Int] = []
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let s = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !s.isEmpty else { continue }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any] else {
                throw .parse("\(file):\(i + 1): not a JSON object")
            }
            var row: [String: String] = [:]
            for (k, v) in obj {
                if !header.contains(k) { header.append(k) }
                switch v {
                case let n as NSNumber:
                    let d = n.doubleValue
                    row[k] = d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : csvNumber(d)
                case let s as String: row[k] = s
                case is NSNull: row[k] = ""
                default: throw .parse("\(file):\(i + 1): column '\(k)': not a string, number or null")
                }
            }
            rows.append(row)
            lines.append(i + 1)
        }
        var t = CSVTable(header: header, rows: rows.map { r in header.map { r[$0] ?? "" } })
        t.rowLines = lines
        return t
    }
}
