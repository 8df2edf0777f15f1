/// A constraint on a cell's axis values, such as `n * bp <= 4096`: an arithmetic
/// expression (numbers, the variables n, bp, budget, lr, lag, seed and params — the
/// base's non-embedding parameters — with + − * / and parentheses), one comparison
/// (<, <=, >, >=, ==, !=), another expression.
public struct Constraint: Sendable, Hashable {
    public struct ParseError: Error { public var message: String }
    indirect enum Expr: Hashable, Sendable {
        case number(Double)
        case variable(String)
        case binary(Character, Expr, Expr)
    }
    static let variables: Set<String> = ["n", "bp", "budget", "lr", "lag", "seed", "params"]

    public let text: String
    let lhs: Expr, op: String, rhs: Expr

    public init(_ text: String) throws(ParseError) {
        self.text = text
        let ops = ["<=", ">=", "==", "!=", "<", ">"]
        guard let op = ops.first(where: { text.contains($0) }), let r = text.range(of: op) else {
            throw ParseError(message: "needs one comparison (<, <=, >, >=, ==, !=)")
        }
        self.op = op
        var l = Parser(Array(text[..<r.lowerBound])), rr = Parser(Array(text[r.upperBound...]))
        lhs = try l.expression()
        rhs = try rr.expression()
        guard l.atEnd, rr.atEnd else { throw ParseError(message: "unexpected text") }
    }

    /// Whether the constraint holds for the given variable values.
    public func holds(_ vars: [String: Double]) -> Bool {
        let a = Self.eval(lhs, vars), b = Self.eval(rhs, vars)
        switch op {
        case "<=": return a <= b
        case ">=": return a >= b
        case "==": return a == b
        case "!=": return a != b
        case "<": return a < b
        default: return a > b
        }
    }

    static func eval(_ e: Expr, _ v: [String: Double]) -> Double {
        switch e {
        case .number(let x): return x
        case .variable(let n): return v[n] ?? .nan
        case .binary(let o, let a, let b):
            let x = eval(a, v), y = eval(b, v)
            switch o {
            case "+": return x + y
            case "-": return x - y
            case "*": return x * y
            default: return x / y
            }
        }
    }

    struct Parser {
        var c: [Character]
        var i = 0
        init(_ c: [Character]) { self.c = c }
        var atEnd: Bool {
            var j = i
            while j < c.count && c[j] == " " { j += 1 }
            return j >= c.count
        }
        mutating func skip() { while i < c.count && c[i] == " " { i += 1 } }
        mutating func expression() throws(ParseError) -> Expr {
            var e = try term()
            while true {
                skip()
                guard i < c.count, c[i] == "+" || c[i] == "-" else { return e }
                let o = c[i]
                i += 1
                e = .binary(o, e, try term())
            }
        }
        mutating func term() throws(ParseError) -> Expr {
            var e = try factor()
            while true {
                skip()
                guard i < c.count, c[i] == "*" || c[i] == "/" else { return e }
                let o = c[i]
                i += 1
                e = .binary(o, e, try factor())
            }
        }
        mutating func factor() throws(ParseError) -> Expr {
            skip()
            guard i < c.count else { throw ParseError(message: "expression ends early") }
            if c[i] == "(" {
                i += 1
                let e = try expression()
                skip()
                guard i < c.count, c[i] == ")" else { throw ParseError(message: "missing ')'") }
                i += 1
                return e
            }
            var tok = ""
            while i < c.count, c[i].isLetter || c[i].isNumber || c[i] == "." || c[i] == "_"
                || ((c[i] == "+" || c[i] == "-") && (tok.last == "e" || tok.last == "E") && tok.first?.isNumber == true)
            {
                tok.append(c[i])
                i += 1
            }
            if let x = Double(tok) { return .number(x) }
            guard Constraint.variables.contains(tok) else {
                throw ParseError(message: "unknown variable '\(tok)' (known: \(Constraint.variables.sorted().joined(separator: ", ")))")
            }
            return .variable(tok)
        }
    }
}
