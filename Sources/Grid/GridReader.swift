import Foundation
import ResultSchema
import RLTraining
import Tasks

/// Typed reads from a parsed grid file: each names the file, line and key on error, and
/// an unknown key gets a suggestion.
struct GridReader {
    let source: GridSource

    static let rootKeys = ["name", "description", "base", "cell", "axes", "zip", "constraints"]
    static let baseKeys = [
        "sizes", "tasks", "tokens_per_param", "min_tokens", "privileged_fraction", "episode_fraction", "seed", "eval_problems", "eval_samples",
    ]
    /// The cell settings a grid sets in `[cell]` and as `[axes]` (the registry, `CellSetting`),
    /// and the base size, which is an axis but not a cell setting.
    static let cellKeys = CellSetting.gridKeys(.cell)
    static let axisKeys = ["size"] + CellSetting.gridKeys(.axis)
    /// Common misnamings, checked before edit distance.
    static let aliases = [
        "rollouts": "n", "rollouts_per_problem": "n", "problems_per_batch": "bp", "batch": "bp", "budgets": "budget",
        "compute": "budget", "methods": "method", "seeds": "seed", "sizes": "size", "model": "size",
        "learning_rate": "lr", "policy_lag": "lag", "mixture": "tasks", "task": "tasks", "bucket": "train_bucket",
        "pool": "pool_size", "dataset_size": "pool_size", "teacher_lag": "teacher", "alpha": "distill", "lambda": "distill",
        "distill_coef": "distill", "distill_tokens": "distill_on",
    ]
    /// The `lr` axis's default, `CellDefaults.learningRate` as written (2e-4, not the
    /// Float's exact binary value), so that a constraint on `lr` sees what a file would say.
    static let defaultLearningRate = Double(CellDefaults.learningRate.description) ?? Double(CellDefaults.learningRate)

    static func suggestion(_ key: String, among known: [String]) -> String {
        if let a = aliases[key], known.contains(a) { return " (did you mean '\(a)'?)" }
        let best = known.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        if let (k, d) = best, d <= max(2, key.count / 3) { return " (did you mean '\(k)'?)" }
        return " (known keys: \(known.joined(separator: ", ")))"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var prev = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var cur = [i] + Array(repeating: 0, count: y.count)
            for j in 1...max(1, y.count) where !y.isEmpty {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }

    func error(_ line: Int, _ key: String?, _ message: String) -> GridError { source.error(line, key, message) }

    /// A method knob's value as written (a number or a string), checked by setting it on a
    /// default config.
    func knob(_ knob: MethodKnob, _ v: TOMLValue, line: Int, _ section: String) throws(GridError) -> String {
        let spelled: String
        switch v {
        case .string(let s): spelled = s
        default:
            guard let x = v.number else {
                throw error(line, knob.rawValue, "in \(section) must be a number or a string, got \(v.typeName) \(v)")
            }
            spelled = knobNumber(x)
        }
        var probe = CellDefaults.cell
        if let why = probe.set(knob, to: spelled) { throw error(line, knob.rawValue, "in \(section) " + why) }
        return spelled
    }

    func checkKeys(_ t: TOMLTable, _ known: [String], _ section: String) throws(GridError) {
        for k in t.keys where !known.contains(k) {
            throw error(t.line(of: k), k, "unknown key in \(section)" + Self.suggestion(k, among: known))
        }
    }

    /// The table `[k]` of `root` (an empty one when it is optional and absent).
    func table(_ root: TOMLTable, _ k: String, required: Bool) throws(GridError) -> TOMLTable {
        guard let v = root[k] else {
            if required { throw error(0, k, "missing required table [\(k)]") }
            return TOMLTable()
        }
        guard case .table(let t) = v else { throw error(root.line(of: k), k, "must be a table, got \(v.typeName)") }
        return t
    }

    func number(
        _ t: TOMLTable, _ k: String, _ section: String, default d: Double, min lo: Double? = nil, max hi: Double? = nil
    ) throws(GridError) -> Double {
        guard let v = t[k] else { return d }
        guard let x = v.number else { throw error(t.line(of: k), k, "in \(section) must be a number, got \(v.typeName) \(v)") }
        if let lo, x < lo { throw error(t.line(of: k), k, "in \(section) must be at least \(lo), got \(x)") }
        if let hi, x > hi { throw error(t.line(of: k), k, "in \(section) must be at most \(hi), got \(x)") }
        return x
    }

    func int(_ t: TOMLTable, _ k: String, _ section: String, default d: Int, min lo: Int = 0) throws(GridError) -> Int {
        guard let v = t[k] else { return d }
        guard case .integer(let x) = v else { throw error(t.line(of: k), k, "in \(section) must be an integer, got \(v.typeName) \(v)") }
        guard x >= lo else { throw error(t.line(of: k), k, "in \(section) must be at least \(lo), got \(x)") }
        return x
    }

    func bool(_ t: TOMLTable, _ k: String, _ section: String, default d: Bool) throws(GridError) -> Bool {
        guard let v = t[k] else { return d }
        guard case .bool(let b) = v else { throw error(t.line(of: k), k, "in \(section) must be true or false, got \(v.typeName) \(v)") }
        return b
    }

    func string(_ t: TOMLTable, _ k: String, _ section: String) throws(GridError) -> String? {
        guard let v = t[k] else { return nil }
        guard case .string(let s) = v else { throw error(t.line(of: k), k, "in \(section) must be a string, got \(v.typeName) \(v)") }
        return s
    }

    func mixture(_ s: String, line: Int, key: String) throws(GridError) -> TaskMixture {
        do { return try TaskMixture.parse(s) } catch { throw self.error(line, key, error.description) }
    }

    // Axis values: a list, or one value standing for a list of one.

    func values(_ t: TOMLTable, _ k: String) -> [TOMLValue]? {
        guard let v = t[k] else { return nil }
        if case .array(let a) = v { return a }
        return [v]
    }

    func strings(_ t: TOMLTable, _ k: String, default d: [String]) throws(GridError) -> [String] {
        guard let vs = values(t, k) else { return d }
        var out: [String] = []
        for v in vs {
            guard case .string(let s) = v else { throw error(t.line(of: k), k, "in [axes] must hold strings, got \(v.typeName) \(v)") }
            out.append(s)
        }
        guard !out.isEmpty else { throw error(t.line(of: k), k, "in [axes] is empty") }
        return out
    }

    func ints(_ t: TOMLTable, _ k: String, default d: [Int], min lo: Int) throws(GridError) -> [Int] {
        guard let vs = values(t, k) else { return d }
        var out: [Int] = []
        for v in vs {
            guard case .integer(let x) = v else { throw error(t.line(of: k), k, "in [axes] must hold integers, got \(v.typeName) \(v)") }
            guard x >= lo else { throw error(t.line(of: k), k, "in [axes] must be at least \(lo), got \(x)") }
            out.append(x)
        }
        guard !out.isEmpty else { throw error(t.line(of: k), k, "in [axes] is empty") }
        return out
    }

    func numbers(_ t: TOMLTable, _ k: String, default d: [Double]) throws(GridError) -> [Double] {
        guard let vs = values(t, k) else { return d }
        var out: [Double] = []
        for v in vs {
            guard let x = v.number, x > 0 else { throw error(t.line(of: k), k, "in [axes] must hold positive numbers, got \(v)") }
            out.append(x)
        }
        guard !out.isEmpty else { throw error(t.line(of: k), k, "in [axes] is empty") }
        return out
    }
}
