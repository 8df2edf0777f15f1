/// RFC 4180 fields, shared by every CSV the harness writes (law tables, exports).
public enum CSVField {
    /// The field as written: quoted, with its quotes doubled, when it holds a comma, a
    /// quote, CR or LF (checked on Unicode scalars, so a "\r\n" pair is seen too).
    public static func quote(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
