import ArgumentParser
import Foundation
import Grid
import Laws

/// What `rlscale export` writes.
enum ExportFormat: String, CaseIterable, ExpressibleByArgument {
    /// The curves, windows and cells tables as CSV.
    case csv
    /// The same tables as JSON lines.
    case jsonl
    /// The runs table `rlscale fit --curves` reads (runs.csv): one row per run and evaluation
    /// point with the selected score, the run's allocation and every setting.
    case runs
}

/// `rlscale export RESULTS [--format csv|jsonl|runs] [--out DIR]`: a store's cell documents
/// as tidy long tables.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a result store's learning curves, training windows and cells as tidy CSV (or JSON lines) tables, or its runs table.",
        discussion: """
            Reads RESULTS/cells/*.json (every status; failed cells are in cells.csv with \
            their reason) and writes curves, windows and cells (.csv or .jsonl, the same \
            columns) into --out: curves has one row per cell, evaluation point, family, group, \
            metric and k; windows one row per training window; cells one row per cell with \
            its whole configuration and compute ledger. A document that cannot be used is \
            skipped with a warning naming it. The README lists every column.

            --format runs writes runs.csv instead: one row per finished cell and evaluation \
            point with the score selected by --metric and --group (the same as fit's), the \
            cell's allocation, ledger figures and settings. `rlscale fit --curves runs.csv` \
            fits it to the same laws.csv and allocation.csv as `rlscale fit RESULTS`.
            """)

    @Argument(help: "The grid's result folder, e.g. results/quick.") var results: String
    @Option(help: "csv, jsonl or runs.") var format: ExportFormat = .csv
    @Option(help: "Output folder (default RESULTS/export).") var out: String?
    @Option(help: "runs: the score metric (as fit's --metric).") var metric: String = "avg@4"
    @Option(help: "runs: the evaluation group (as fit's --group).") var group: String = "train_dist"
    @Flag(help: "runs: export a store whose cells come from different numerics versions.") var allowMixed = false

    func run() throws {
        let dir = out ?? (results as NSString).appendingPathComponent("export")
        if format == .runs {
            let store = try CellStore.load(results: results, score: try ScoreSelector(metric: metric, group: group),
                                           allowMixedNumerics: allowMixed)
            for s in store.skipped { stderrLine("warning: skipped \(s.id): \(s.reason)") }
            var folder = try OutputFolder(dir)
            let table = RunsTable.table(store)
            try folder.put("runs.csv", table.render())
            print("\(store.cells.count) finished cells (\(store.skipped.count) skipped); wrote runs.csv (\(table.rows.count) rows) to \(dir)")
            return
        }
        let loaded = try Export.load(results: results)
        for s in loaded.skipped { stderrLine("warning: skipped \(s.path): \(s.reason)") }
        let tables = Export.tables(from: loaded.documents)
        let paths = try Export.write(tables, format: format == .csv ? .csv : .jsonl, to: dir)
        let counts = zip(tables, paths).map { "\(($1 as NSString).lastPathComponent) (\($0.rows.count) rows)" }
        print("\(loaded.documents.count) cells (\(loaded.skipped.count) skipped); wrote \(counts.joined(separator: ", ")) to \(dir)")
    }
}
