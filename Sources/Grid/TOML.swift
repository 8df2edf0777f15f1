/// A TOML value with the line it was written on, so that every error can name the
/// file, line and key. rlscale parses the subset of TOML its grid files use: comments,
/// `[table]` and `[[array-of-tables]]` headers, `key = value` with strings, integers,
/// floats (including `1e12`), booleans, arrays and inline tables; dotted keys are not
/// supported.
public indirect enum TOMLValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .integer(let i): String(i)
        case .float(let d): String(d)
        case .bool(let b): String(b)
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .table(let t): "{" + t.keys.map { "\($0) = \(t.entries[$0]?.value.description ?? "")" }.joined(separator: ", ") + "}"
        }
    }

    /// The value as a number (integers widen to Double).
    public var number: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .float(let d): d
        default: nil
        }
    }

    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .bool: "boolean"
        case .array: "array"
        case .table: "table"
        }
    }
}

/// A table: keys in written order, each with its value and line.
public struct TOMLTable: Equatable, Sendable {
    public var keys: [String] = []
    public var entries: [String: (value: TOMLValue, line: Int)] = [:]
    /// Line of the table's header (0 for the root).
    public var line: Int = 0

    public init(line: Int = 0) { self.line = line }

    public subscript(_ key: String) -> TOMLValue? { entries[key]?.value }
    public func line(of key: String) -> Int { entries[key]?.line ?? line }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) -> Bool {
        if entries[key] != nil { return false }
        keys.append(key)
        entries[key] = (value, line)
        return true
    }

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.keys == b.keys && a.keys.allSatisfy { a.entries[$0]?.value == b.entries[$0]?.value }
    }
}

/// A syntax error with its line.
public struct TOMLError: Error, Equatable, Sendable {
    public var line: Int
    public var message: String
}

/// Parses the TOML subset described at `TOMLValue`.
public enum TOMLParser {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var root = TOMLTable()
        // Path of the current table: a top-level key, and for [[x]] the index.
        var current: (name: String, index: Int?)? = nil
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var i = 0
        while i < lines.count {
            let lineNo = i + 1
            var raw = stripComment(lines[i])
            i += 1
            raw = raw.trimmingSpaces()
            if raw.isEmpty { continue }
            if raw.hasPrefix("[[") {
                guard raw.hasSuffix("]]") else { throw TOMLError(line: lineNo, message: "unterminated [[table]] header") }
                let name = String(raw.dropFirst(2).dropLast(2)).trimmingSpaces()
                guard isBareKey(name) else { throw TOMLError(line: lineNo, message: "invalid table name '\(name)'") }
                var arr: [TOMLValue] = []
                if let existing = root.entries[name] {
                    guard case .array(let a) = existing.value else {
                        throw TOMLError(line: lineNo, message: "'\(name)' is already defined as a \(existing.value.typeName)")
                    }
                    arr = a
                }
                arr.append(.table(TOMLTable(line: lineNo)))
                if root.entries[name] == nil { root.keys.append(name) }
                root.entries[name] = (.array(arr), root.entries[name]?.line ?? lineNo)
                current = (name, arr.count - 1)
                continue
            }
            if raw.hasPrefix("[") {
                guard raw.hasSuffix("]") else { throw TOMLError(line: lineNo, message: "unterminated [table] header") }
                let name = String(raw.dropFirst().dropLast()).trimmingSpaces()
                guard isBareKey(name) else { throw TOMLError(line: lineNo, message: "invalid table name '\(name)'") }
                guard root.set(name, .table(TOMLTable(line: lineNo)), line: lineNo) else {
                    throw TOMLError(line: lineNo, message: "table [\(name)] is defined twice")
                }
                current = (name, nil)
                continue
            }
            guard let eq = raw.firstIndex(of: "=") else {
                throw TOMLError(line: lineNo, message: "expected 'key = value'")
            }
            let key = String(raw[..<eq]).trimmingSpaces()
            guard isBareKey(key) else { throw TOMLError(line: lineNo, message: "invalid key '\(key)'") }
            var valueText = String(raw[raw.index(after: eq)...]).trimmingSpaces()
            // Multi-line arrays: keep reading while brackets are open.
            while bracketDepth(valueText) > 0 && i < lines.count {
                valueText += " " + stripComment(lines[i]).trimmingSpaces()
                i += 1
            }
            var scanner = Scanner(Array(valueText), line: lineNo)
            let value = try scanner.value()
            scanner.skipSpaces()
            guard scanner.atEnd else { throw TOMLError(line: lineNo, message: "unexpected text after the value of '\(key)'") }
            if let cur = current {
                guard var entry = root.entries[cur.name] else { continue }
                if let idx = cur.index, case .array(var arr) = entry.value, case .table(var t) = arr[idx] {
                    guard t.set(key, value, line: lineNo) else { throw TOMLError(line: lineNo, message: "key '\(key)' is defined twice") }
                    arr[idx] = .table(t)
                    entry.value = .array(arr)
                } else if case .table(var t) = entry.value {
                    guard t.set(key, value, line: lineNo) else { throw TOMLError(line: lineNo, message: "key '\(key)' is defined twice") }
                    entry.value = .table(t)
                }
                root.entries[cur.name] = entry
            } else {
                guard root.set(key, value, line: lineNo) else { throw TOMLError(line: lineNo, message: "key '\(key)' is defined twice") }
            }
        }
        return root
    }

    static func isBareKey(_ s: String) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }

    /// Calls `body` with each character of `s` outside basic strings (a `"` … `"` with `\"`
    /// escapes), stopping when it returns false.
    static func forEachOutsideStrings(_ s: String, _ body: (String.Index, Character) -> Bool) {
        var inString = false, escaped = false
        for i in s.indices {
            let c = s[i]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            if c == "\"" { inString = true; continue }
            if !body(i, c) { return }
        }
    }

    /// Removes a `#` comment that is not inside a string.
    static func stripComment(_ s: String) -> String {
        var end = s.endIndex
        forEachOutsideStrings(s) { i, c in
            if c == "#" { end = i; return false }
            return true
        }
        return String(s[..<end])
    }

    static func bracketDepth(_ s: String) -> Int {
        var depth = 0
        forEachOutsideStrings(s) { _, c in
            if c == "[" || c == "{" { depth += 1 }
            if c == "]" || c == "}" { depth -= 1 }
            return true
        }
        return depth
    }

    struct Scanner {
        var chars: [Character]
        var pos = 0
        let line: Int
        init(_ chars: [Character], line: Int) {
            self.chars = chars
            self.line = line
        }
        var atEnd: Bool { pos >= chars.count }
        mutating func skipSpaces() { while pos < chars.count && (chars[pos] == " " || chars[pos] == "\t") { pos += 1 } }
        func fail(_ m: String) -> TOMLError { TOMLError(line: line, message: m) }

        mutating func value() throws(TOMLError) -> TOMLValue {
            skipSpaces()
            guard pos < chars.count else { throw fail("missing value") }
            switch chars[pos] {
            case "\"":
                pos += 1
                var s = ""
                while pos < chars.count && chars[pos] != "\"" {
                    if chars[pos] == "\\" && pos + 1 < chars.count {
                        pos += 1
                        switch chars[pos] {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        default: s.append(chars[pos])
                        }
                    } else {
                        s.append(chars[pos])
                    }
                    pos += 1
                }
                guard pos < chars.count else { throw fail("unterminated string") }
                pos += 1
                return .string(s)
            case "[":
                pos += 1
                var items: [TOMLValue] = []
                while true {
                    skipSpaces()
                    guard pos < chars.count else { throw fail("unterminated array") }
                    if chars[pos] == "]" { pos += 1; break }
                    items.append(try value())
                    skipSpaces()
                    guard pos < chars.count else { throw fail("unterminated array") }
                    if chars[pos] == "," { pos += 1 } else if chars[pos] != "]" { throw fail("expected ',' or ']' in array") }
                }
                return .array(items)
            case "{":
                pos += 1
                var t = TOMLTable(line: line)
                while true {
                    skipSpaces()
                    guard pos < chars.count else { throw fail("unterminated inline table") }
                    if chars[pos] == "}" { pos += 1; break }
                    var key = ""
                    while pos < chars.count && chars[pos] != "=" && chars[pos] != "}" { key.append(chars[pos]); pos += 1 }
                    key = key.trimmingSpaces()
                    guard pos < chars.count, chars[pos] == "=", TOMLParser.isBareKey(key) else { throw fail("expected 'key = value' in inline table") }
                    pos += 1
                    let v = try value()
                    guard t.set(key, v, line: line) else { throw fail("key '\(key)' is defined twice") }
                    skipSpaces()
                    guard pos < chars.count else { throw fail("unterminated inline table") }
                    if chars[pos] == "," { pos += 1 } else if chars[pos] != "}" { throw fail("expected ',' or '}' in inline table") }
                }
                return .table(t)
            default:
                var tok = ""
                while pos < chars.count && !",]} \t".contains(chars[pos]) { tok.append(chars[pos]); pos += 1 }
                if tok == "true" { return .bool(true) }
                if tok == "false" { return .bool(false) }
                let clean = tok.replacingUnderscores()
                if let i = Int(clean) { return .integer(i) }
                if let d = Double(clean), d.isFinite { return .float(d) }
                throw fail("invalid value '\(tok)'")
            }
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }

    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
