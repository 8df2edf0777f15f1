import Foundation
import RLCommon

/// A CSV table: one header row, then rows of string fields (RFC 4180 quoting: fields with
/// a comma, quote or newline are quoted, quotes doubled).
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]

    /// Creates a table.
    public init(header: [String], rows: [[String]] = []) {
        self.header = header
        self.rows = rows
    }

    /// Parses CSV text. Blank lines are skipped; every row must have the header's width.
    public static func parse(_ text: String) throws(LawError) -> CSVTable {
        var records: [[String]] = []
        var field = "", record: [String] = []
        var inQuotes = false, fieldStarted = false
        var chars = Array(text.unicodeScalars)[...]
        func endRecord() {
            if fieldStarted || !record.isEmpty || !field.isEmpty { record.append(field); records.append(record) }
            record = []; field = ""; fieldStarted = false
        }
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { inQuotes = false }
                } else { field.unicodeScalars.append(c) }
                continue
            }
            switch c {
            case "\"": inQuotes = true; fieldStarted = true
            case ",": record.append(field); field = ""; fieldStarted = true
            case "\r": if chars.first == "\n" { chars.removeFirst() }; endRecord()
            case "\n": endRecord()
            default: field.unicodeScalars.append(c); fieldStarted = true
            }
        }
        if inQuotes { throw .parse("csv: unterminated quoted field") }
        endRecord()
        guard let header = records.first else { throw .parse("csv: no header row") }
        let rows = Array(records.dropFirst())
        for (i, r) in rows.enumerated() where r.count != header.count {
            throw .parse("csv: row \(i + 2) has \(r.count) fields, the header has \(header.count)")
        }
        return CSVTable(header: header.map { $0.trimmingCharacters(in: .whitespaces) }, rows: rows)
    }

    /// Reads and parses a CSV file.
    public static func read(path: String) throws(LawError) -> CSVTable {
        guard let d = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)") }
        guard let s = String(data: d, encoding: .utf8) else { throw .parse("\(path): not UTF-8") }
        return try parse(s)
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
            guard let v = Double(s) else { throw .parse("column '\(name)', row \(i + 2): '\(s)' is not a number") }
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
