import Foundation
import Laws
import RLCommon
import Testing

/// The runs table (`export --format runs`, `fit --curves`) and the CSV reader under it.
@Suite("Runs table and CSV reader")
struct RunsTableTests {
    static func temp(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("runs-\(getpid())-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/" + name
    }

    /// A store written as a runs table and read back is fitted to the same laws.csv and
    /// allocation.csv, with its settings (lags) still separating groups and its prefix cells
    /// folded again.
    @Test func aStoreAndItsRunsTableFitTheSameLaws() throws {
        var cells = lagStore()
        for i in cells.indices { cells[i].settings["tasks"] = "sort:1" }  // not a grouping column: not exported
        let store = CellStore(grid: "lag", cells: cells + prefixStore())
        let path = Self.temp("runs.csv")
        try RunsTable.table(store).write(to: path)
        let back = try RunsTable.read(path: path)
        #expect(back.grid == "lag" && back.cells.count == store.cells.count)
        let o = AnalysisOptions(bootstrap: BootstrapOptions(resamples: 50, seed: 2), budgets: 8)
        let a = GridAnalysis.run(store, score: try ScoreSelector(), options: o)
        let b = GridAnalysis.run(back, score: try ScoreSelector(), options: o)
        #expect(a.lawsTable().render() == b.lawsTable().render())
        #expect(a.allocationTable().render() == b.allocationTable().render())
        #expect(b.mergedCells == 8 && b.grouping?.varying == a.grouping?.varying && a.grouping?.varying.contains("lag") == true)
    }

    /// A hand-written table in JSON lines: defaults for the optional columns, unknown columns
    /// as settings that separate groups.
    @Test func jsonLinesAndUnknownColumnsAreSettings() throws {
        var lines: [String] = []
        for temp in [0.7, 1.0] {
            for seed in 0..<2 {
                for (i, c) in [0, 1e3, 1e4, 1e5].enumerated() {
                    lines.append(#"{"run": "t\#(temp)-s\#(seed)", "compute": \#(c), "score": \#(0.1 + 0.1 * Double(i)), "n": 4, "seed": \#(seed), "temperature": \#(temp)}"#)
                }
            }
        }
        let path = Self.temp("runs.jsonl")
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let store = try RunsTable.read(path: path)
        #expect(store.cells.count == 4 && store.cells.allSatisfy { $0.method == "run" && $0.curve.count == 4 && $0.parameters == 0 })
        let report = GridAnalysis.run(store, score: try ScoreSelector(), options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 0)))
        #expect(report.groups.map(\.label) == ["run [temperature=0.7]", "run [temperature=1]"])
    }

    /// Bad tables are refused with the file, the line and the column.
    @Test(arguments: [
        ("run,compute,score,n\nr1,0,0.1,4\nr1,1e9,abc,4\n", "runs.csv:3: column 'score': 'abc' is not a finite number"),
        ("run,compute,score,n\nr1,0,0.1,4\nr1,1e9,0.2,8\n", "runs.csv:3: column 'n': run 'r1' has another value here than on line 2"),
        ("run,compute,score\nr1,0,0.1\n", "runs.csv:1: a runs table needs at least one of the columns N, n, bp"),
        ("run,score,n\nr1,0.1,4\n", "runs.csv:1: missing column 'compute' (a runs table needs run, compute, score and at least one of N, n, bp)"),
        ("run,compute,score,n\nr1,-1,0.1,4\n", "runs.csv:2: column 'compute': -1 is below 0"),
        ("run,compute,score,n\n\"r\n1\",0,0.1,4\nr2,0,0.1,0\n", "runs.csv:4: column 'n': '0' is not a whole number >= 1"),
        ("run,compute,score,n\nr1,0,0.1\n", "runs.csv: csv: line 2 has 3 fields, the header has 4"),
    ])
    func badTablesNameFileLineAndColumn(text: String, message: String) throws {
        let path = Self.temp("runs.csv")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try RunsTable.read(path: path)
            Issue.record("read without error")
        } catch {
            #expect(error.message == path.replacingOccurrences(of: "runs.csv", with: "") + message || error.message.hasSuffix(message),
                    "\(error.message)")
        }
    }

    /// The reader handles what a maintained CSV parser does: quoted fields with commas,
    /// quotes and line breaks, CRLF and CR line ends, a byte-order mark, blank lines; rows
    /// report the line they start on.
    @Test func readerHandlesQuotingLineEndsAndBOM() throws {
        let text = "\u{FEFF}a,b\r\n\"x, \"\"y\"\"\",\"two\r\nlines\"\r\n\r\nlast,\"\"\rcr,only\r"
        let t = try CSVTable.parse(text)
        #expect(t.header == ["a", "b"])
        #expect(t.rows == [["x, \"y\"", "two\r\nlines"], ["last", ""], ["cr", "only"]])
        #expect(t.rowLines == [2, 5, 6])
    }

    /// Property: any table the writer renders reads back identically (1,000 random tables of
    /// fields drawn from commas, quotes, CR, LF, spaces, digits, letters and non-ASCII text).
    @Test func anyRenderedTableReadsBackIdentically() throws {
        var rng = SeededRNG(seed: 11).derived("csv-property")
        let alphabet: [String] = [",", "\"", "\r", "\n", "\r\n", " ", "0", "7", "e", "-", ".", "a", "Z", "é", "∑", "\u{FEFF}", ";"]
        func field() -> String { (0..<rng.below(6)).map { _ in alphabet[rng.below(alphabet.count)] }.joined() }
        for trial in 0..<1000 {
            let width = 1 + rng.below(5)
            // Header names are trimmed on reading: draw them without edge spaces, non-empty.
            let header = (0..<width).map { "c\($0)" + field().filter { $0 != " " } }
            let rows = (0..<rng.below(6)).map { _ in (0..<width).map { _ in field() } }
            var table = CSVTable(header: header, rows: rows)
            // A row of one empty field renders as a blank line, which the reader skips.
            table.rows.removeAll { $0 == [""] }
            let back = try CSVTable.parse(table.render())
            #expect(back == table, "trial \(trial): \(table.render().debugDescription)")
            if back != table { break }
        }
    }
}

/// The runs table's reading of settings: one spelling per number, method knobs refused as
/// columns, seed and budget readable by `--within`, a byte-order mark skipped in JSON lines.
@Suite("Runs table settings")
struct RunsTableSettingsTests {
    @Test func settingsReadAsAStoreWouldHoldThem() throws {
        let path = RunsTableTests.temp("runs.csv")
        try "run,compute,score,n,seed,budget,lr\na,0,0.1,4,18446744073709551615,1e9,1e-4\na,1e9,0.2,4,18446744073709551615,1e9,1e-4\nb,0,0.1,4,1,1e9,0.0001\nb,1e9,0.3,4,1,1e9,0.0001\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let store = try RunsTable.read(path: path)
        #expect(store.cells.map(\.seed) == [UInt64.max, 1])
        #expect(Set(store.cells.map { $0.settings["lr"] }) == ["0.0001"])
        #expect(store.within(try Stratum(parsing: "seed=1")).cells.map(\.id) == ["b"])
        #expect(store.within(try Stratum(parsing: "budget=1e9")).cells.count == 2)
        let knob = RunsTableTests.temp("runs.csv")
        try "run,compute,score,n,kl\na,0,0.1,4,0.1\n".write(toFile: knob, atomically: true, encoding: .utf8)
        #expect(throws: LawError.self) { try RunsTable.read(path: knob) }
        let bom = RunsTableTests.temp("runs.jsonl")
        try "\u{FEFF}{\"run\": \"a\", \"compute\": 0, \"score\": 0.1, \"n\": 2}\n".write(toFile: bom, atomically: true, encoding: .utf8)
        #expect(try RunsTable.read(path: bom).cells.count == 1)
    }
}
