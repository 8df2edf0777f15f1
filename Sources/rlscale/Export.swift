import ArgumentParser
import Foundation
import Grid

extension Export.Format: ExpressibleByArgument {}

/// `rlscale export RESULTS [--format csv|jsonl] [--out DIR]`: a store's cell documents as
/// tidy long tables.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a result store's learning curves, training windows and cells as tidy CSV (or JSON lines) tables.",
        discussion: """
            Reads RESULTS/cells/*.json (every status; failed cells are in cells.csv with \
            their reason) and writes curves, windows and cells (.csv or .jsonl, the same \
            columns) into --out: curves has one row per cell, evaluation point, family, group, \
            metric and k; windows one row per training window; cells one row per cell with \
            its whole configuration and compute ledger. A document that cannot be used is \
            skipped with a warning naming it. The README lists every column.
            """)

    @Argument(help: "The grid's result folder, e.g. results/quick.") var results: String
    @Option(help: "csv or jsonl.") var format: Export.Format = .csv
    @Option(help: "Output folder (default RESULTS/export).") var out: String?

    func run() throws {
        let loaded = try Export.load(results: results)
        for s in loaded.skipped { stderrLine("warning: skipped \(s.path): \(s.reason)") }
        let tables = Export.tables(from: loaded.documents)
        let dir = out ?? (results as NSString).appendingPathComponent("export")
        let paths = try Export.write(tables, format: format, to: dir)
        let counts = zip(tables, paths).map { "\(($1 as NSString).lastPathComponent) (\($0.rows.count) rows)" }
        print("\(loaded.documents.count) cells (\(loaded.skipped.count) skipped); wrote \(counts.joined(separator: ", ")) to \(dir)")
    }
}
