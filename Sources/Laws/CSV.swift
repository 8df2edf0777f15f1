import Foundation
import RLCommon

/// A CSV table: one header row, then rows of string fields (RFC 4180 quoting: fields with
/// a comma, quote or newline are quoted, quotes doubled).
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]
    /// The line of the file on which each row starts (a quoted field may span lines); empty
    /// for a table built in memory, where row i is taken to start on line i + 2.
    public var rowLines: [Int] = []

    /// Creates a table.
    public init(header: [String], rows: [[String]] = []) {
        self.header = header
        self.rows = rows
    }

    /// The line on which row `i` starts.
    public func line(ofRow i: Int) -> Int { i < rowLines.count ? rowLines[i] : i + 2 }

    /// Tables are equal when their header and rows are (where rows came from is not compared).
    public static func == (a: CSVTable, b: CSVTable) -> Bool { a.header == b.header && a.rows == b.rows }

    /// Parses CSV text (RFC 4180): fields with commas, quotes or line breaks are quoted and
    /// quotes doubled; line ends are LF, CRLF or CR; a leading byte-order mark is skipped;
    /// blank lines are skipped. Every row must have the header's width; errors name the line.
    public static func parse(_ text: String) throws(LawError) -> CSVTable {
        var records: [(fields: [String], line: Int)] = []
        var field = "", record: [String] = []
        var inQuotes = false, fieldStarted = false
        var line = 1, recordLine = 1
        var chars = Array(text.unicodeScalars)[...]
        if chars.first == "\u{FEFF}" { chars.removeFirst() }
        func endRecord() {
            if fieldStarted || !record.isEmpty || !field.isEmpty { record.append(field); records.append((record, recordLine)) }
            record = []; field = ""; fieldStarted = false
        }
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { inQuotes = false }
                } else {
                    if c == "\n" || (c == "\r" && chars.first != "\n") { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"": inQuotes = true; fieldStarted = true
            case ",": record.append(field); field = ""; fieldStarted = true
            case "\r", "\n":
                if c == "\r", chars.first == "\n" { chars.removeFirst() }
                endRecord()
                line += 1
                recordLine = line
            default: field.unicodeScalars.append(c); fieldStarted = true
            }
        }
        if inQuotes { throw .parse("csv: line \(recordLine): unterminated quoted field") }
        endRecord()
        guard let header = records.first else { throw .parse("csv: no header row") }
        let rows = Array(records.dropFirst())
        for r in rows where r.fields.count != header.fields.count {
            throw .parse("csv: line \(r.line) has \(r.fields.count) fields, the header has \(header.fields.count)")
        }
        var t = CSVTable(header: header.fields.map { $0.trimmingCharacters(in: .whitespaces) }, rows: rows.map(\.fields))
        t.rowLines = rows.map(\.line)
        return t
    }

    /// Reads and parses a CSV file.
    public static func read(path: String) throws(LawError) -> CSVTable {
        guard let d = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)") }
        guard let s = String(data: d, encoding: .utf8) else { throw .parse("\(path): not UTF-8") }
        do { return try parse(s) } catch { throw .parse("\(path): \(error.message)") }
    }

    /// The CSV text (header first, "\n" line ends).
    public func render() -> String {
        var out = header.map(CSVTable.quote).joined(separator: ",") + "\n"
        for r in rows { out += r.map(CSVTable.quote).joined(separator: ",") + "\n" }
        return out
    }

    /// Writes the table atomically.
    public func write(to path: String) throws(LawError) {
        do { try AtomicFile.write(Data(render().utf8), to: path) } catch { throw .io(error.description) }
    }

    /// A numeric column: empty fields and "nan" read as NaN, "inf"/"-inf" as infinities;
    /// anything else unparsable is an error naming the row.
    public func numbers(_ name: String) throws(LawError) -> [Double] {
        guard let j = header.firstIndex(of: name) else {
            throw .badRequest("column '\(name)' not found (columns: \(header.joined(separator: ", ")))")
        }
        var out: [Double] = []
        for (i, r) in rows.enumerated() {
            let s = r[j].trimmingCharacters(in: .whitespaces)
            if s.isEmpty || s.lowercased() == "nan" { out.append(.nan); continue }
            guard let v = Double(s) else { throw .parse("column '\(name)', line \(line(ofRow: i)): '\(s)' is not a number") }
            out.append(v)
        }
        return out
    }

    static func quote(_ s: String) -> String { CSVField.quote(s) }
}

/// A number as written to CSV: the shortest round-trip form, empty for NaN.
public func csvNumber(_ x: Double) -> String {
    guard !x.isNaN else { return "" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    return "\(x)"
}
