import RLCommon

/// A procedurally generated, exactly verifiable task with a difficulty knob.
///
/// Families only generate problems and write (possibly noisy) worked solutions; checking
/// is family-independent (`Verifier`) because every problem carries its reference steps.
public protocol TaskFamily: Sendable {
    /// Short name used in grid files and reports, e.g. "add".
    var name: String { get }
    /// Tag letter that starts every problem rendering, so one policy can tell families apart.
    var tag: Character { get }
    /// Difficulties run 1...maxDifficulty.
    var maxDifficulty: Int { get }
    /// One problem at `difficulty` (clamped to the valid range).
    func generate(difficulty: Int, rng: inout SeededRNG) -> Problem
    /// A worked solution from a solver that errs on each step with probability
    /// `errorRate`; like a real solver, its final answer follows from the steps it wrote.
    func noisySolution(_ p: Problem, errorRate: Double, rng: inout SeededRNG) -> (steps: [String], answer: String)
}

extension TaskFamily {
    func clamp(_ d: Int) -> Int { min(max(d, 1), maxDifficulty) }
}

/// Which part of a family's problem space (held-out: a fifth) a problem belongs to. Membership is a function
/// of the problem text alone (a stable hash), so the streams can never share a problem.
public enum Split: String, Sendable, Codable {
    case train, heldOut = "held_out"

    public static func of(_ p: Problem) -> Split {
        var h = StableHash()
        h.combine(p.text)
        return h.value % 5 == 0 ? .heldOut : .train
    }
}

/// The registry of task families.
public enum TaskFamilies {
    public static let all: [any TaskFamily] = [Addition(), Multiplication(), Sorting(), ModularChain()]
    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) -> (any TaskFamily)? { all.first { $0.name == name } }

    /// A problem of `family` at `difficulty` from the given split's stream.
    public static func sample(
        _ family: any TaskFamily, difficulty: Int, split: Split, rng: inout SeededRNG
    ) -> Problem {
        while true {
            let p = family.generate(difficulty: difficulty, rng: &rng)
            if Split.of(p) == split { return p }
        }
    }
}

/// Random digits helper: a d-digit number as a digit array, most significant first.
func randomNumber(digits d: Int, rng: inout SeededRNG) -> [Int] {
    (0..<d).map { i in i == 0 && d > 1 ? 1 + rng.below(9) : rng.below(10) }
}

func number(_ digits: [Int]) -> Int { digits.reduce(0) { $0 * 10 + $1 } }

/// With probability `p`, a different digit than `d`; otherwise `d`.
func maybeWrongDigit(_ d: Int, _ p: Double, _ rng: inout SeededRNG) -> (Int, Bool) {
    guard p > 0, rng.uniform() < p else { return (d, false) }
    return ((d + 1 + rng.below(9)) % 10, true)
}

/// Multi-digit addition with carries. Difficulty d: two d-digit numbers. Steps, from the
/// rightmost column: the column's sum digit then its carry out, e.g. `A123+459` →
/// `21,80,50=582`.
public struct Addition: TaskFamily {
    public let name = "add"
    public let tag: Character = "A"
    public let maxDifficulty = 8
    public init() {}

    public func generate(difficulty: Int, rng: inout SeededRNG) -> Problem {
        let d = clamp(difficulty)
        let a = randomNumber(digits: d, rng: &rng), b = randomNumber(digits: d, rng: &rng)
        var none = SeededRNG(seed: 0)
        let (steps, answer) = work(a, b, errorRate: 0, rng: &none)
        return Problem(family: name, difficulty: d, text: "A\(number(a))+\(number(b))", steps: steps, answer: answer)
    }

    public func noisySolution(_ p: Problem, errorRate: Double, rng: inout SeededRNG) -> (steps: [String], answer: String) {
        let parts = p.text.dropFirst().split(separator: "+")
        guard parts.count == 2 else { return (p.steps, p.answer) }
        let d = max(parts[0].count, parts[1].count)
        func digits(_ s: Substring) -> [Int] {
            let x = s.compactMap { $0.wholeNumberValue }
            return Array(repeating: 0, count: d - x.count) + x
        }
        return work(digits(parts[0]), digits(parts[1]), errorRate: errorRate, rng: &rng)
    }

    func work(_ a: [Int], _ b: [Int], errorRate: Double, rng: inout SeededRNG) -> ([String], String) {
        var carry = 0
        var steps: [String] = []
        var written: [Int] = []
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            let s = a[i] + b[i] + carry
            var digit = s % 10, c = s / 10
            if errorRate > 0 && rng.uniform() < errorRate {
                if rng.below(2) == 0 { digit = (digit + 1 + rng.below(9)) % 10 } else { c = 1 - c }
            }
            steps.append("\(digit)\(c)")
            written.append(digit)
            carry = c
        }
        if carry == 1 { written.append(1) }
        return (steps, String(number(written.reversed())))
    }
}

/// Multi-digit multiplication with partial products. Difficulty 1...8 maps to operand
/// digit counts (1,1) (2,1) (3,1) (2,2) (3,2) (4,2) (3,3) (4,3). Steps: one partial product
/// per digit of the second factor, rightmost first, shifted: `M123*45` → `615,4920=5535`.
public struct Multiplication: TaskFamily {
    public let name = "mul"
    public let tag: Character = "M"
    public let maxDifficulty = 8
    static let shapes = [(1, 1), (2, 1), (3, 1), (2, 2), (3, 2), (4, 2), (3, 3), (4, 3)]
    public init() {}

    public func generate(difficulty: Int, rng: inout SeededRNG) -> Problem {
        let d = clamp(difficulty)
        let (da, db) = Self.shapes[d - 1]
        let a = number(randomNumber(digits: da, rng: &rng)), b = number(randomNumber(digits: db, rng: &rng))
        var none = SeededRNG(seed: 0)
        let (steps, answer) = work(a, b, errorRate: 0, rng: &none)
        return Problem(family: name, difficulty: d, text: "M\(a)*\(b)", steps: steps, answer: answer)
    }

    public func noisySolution(_ p: Problem, errorRate: Double, rng: inout SeededRNG) -> (steps: [String], answer: String) {
        let parts = p.text.dropFirst().split(separator: "*")
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) else { return (p.steps, p.answer) }
        return work(a, b, errorRate: errorRate, rng: &rng)
    }

    func work(_ a: Int, _ b: Int, errorRate: Double, rng: inout SeededRNG) -> ([String], String) {
        var steps: [String] = []
        var total = 0
        var shift = 1
        for ch in String(b).reversed() {
            var partial = Array(String(a * (ch.wholeNumberValue ?? 0) * shift))
            if errorRate > 0 && rng.uniform() < errorRate {
                let i = rng.below(partial.count)
                let (w, _) = maybeWrongDigit(partial[i].wholeNumberValue ?? 0, 1, &rng)
                partial[i] = Character(String(w))
            }
            let s = String(partial)
            steps.append(s)
            total += Int(s) ?? 0
            shift *= 10
        }
        return (steps, String(total))
    }
}

/// Sorting digits. Difficulty d: d + 1 digits. Steps: the sorted digits one by one;
/// answer: them concatenated. `S5391` → `1,3,5,9=1359`.
public struct Sorting: TaskFamily {
    public let name = "sort"
    public let tag: Character = "S"
    public let maxDifficulty = 11
    public init() {}

    public func generate(difficulty: Int, rng: inout SeededRNG) -> Problem {
        let k = clamp(difficulty) + 1
        let xs = (0..<k).map { _ in rng.below(10) }
        let sorted = xs.sorted().map(String.init)
        return Problem(
            family: name, difficulty: k - 1, text: "S" + xs.map(String.init).joined(), steps: sorted,
            answer: sorted.joined())
    }

    public func noisySolution(_ p: Problem, errorRate: Double, rng: inout SeededRNG) -> (steps: [String], answer: String) {
        let steps = p.steps.map { s -> String in
            let (d, _) = maybeWrongDigit(Int(s) ?? 0, errorRate, &rng)
            return String(d)
        }
        return (steps, steps.joined())
    }
}

/// Chains of modular arithmetic: a start value in 0...99, then d operations `+x`
/// (x in 1...9, three times in four) or `*x` (x in 2...3) applied left to right modulo 100. Steps: the running
/// value after each operation. `C37+5*8` → `42,36=36`. With 100 possible answers a guess
/// is right 1% of the time, so long chains stay out of reach.
public struct ModularChain: TaskFamily {
    public let name = "chain"
    public let tag: Character = "C"
    public let maxDifficulty = 10
    static let modulus = 100
    public init() {}

    public func generate(difficulty: Int, rng: inout SeededRNG) -> Problem {
        let d = clamp(difficulty)
        let start = rng.below(Self.modulus)
        var text = "C\(start)"
        var ops: [(Character, Int)] = []
        for _ in 0..<d {
            let mul = rng.below(4) == 0
            let x = mul ? 2 + rng.below(2) : 1 + rng.below(9)
            ops.append((mul ? "*" : "+", x))
            text += "\(mul ? "*" : "+")\(x)"
        }
        var none = SeededRNG(seed: 0)
        let (steps, answer) = work(start, ops, errorRate: 0, rng: &none)
        return Problem(family: name, difficulty: d, text: text, steps: steps, answer: answer)
    }

    public func noisySolution(_ p: Problem, errorRate: Double, rng: inout SeededRNG) -> (steps: [String], answer: String) {
        // "C37+5*8": the start value, then operator/digit pairs.
        let body = p.text.dropFirst()
        guard let firstOp = body.firstIndex(where: { $0 == "+" || $0 == "*" }), let start = Int(body[..<firstOp]) else {
            return (p.steps, p.answer)
        }
        let rest = Array(body[firstOp...])
        var ops: [(Character, Int)] = []
        var i = 0
        while i + 1 < rest.count {
            ops.append((rest[i], rest[i + 1].wholeNumberValue ?? 0))
            i += 2
        }
        return work(start, ops, errorRate: errorRate, rng: &rng)
    }

    func work(_ start: Int, _ ops: [(Character, Int)], errorRate: Double, rng: inout SeededRNG) -> ([String], String) {
        let m = Self.modulus
        var v = start
        var steps: [String] = []
        for (op, x) in ops {
            v = op == "*" ? (v * x) % m : (v + x) % m
            if errorRate > 0 && rng.uniform() < errorRate { v = (v + 1 + rng.below(m - 1)) % m }
            steps.append(String(v))
        }
        return (steps, steps.last ?? String(start))
    }
}
