import Evaluation
import BasePolicies
import Foundation
import RLCommon
import RLTraining
import Tasks

/// A grid-file error: names the file, line and key, and suggests the intended key when a
/// key is unknown.
public struct GridError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String?
    public var message: String

    public var description: String {
        "\(file):\(line): " + (key.map { "\($0): " } ?? "") + message
    }
}

/// One cell of an expanded grid: the base it starts from, its configuration and identity.
public struct GridCell: Codable, Hashable, Sendable {
    /// Ladder size of the base.
    public var base: String
    public var config: CellConfig
    /// Stable identity: a hash of the base's key, the resolved config and the cell result
    /// schema version. A rerun skips every cell whose document exists.
    public var id: String
}

/// A resolved grid: its bases and its expanded, constrained cells.
public struct Grid: Codable, Sendable {
    public var name: String
    public var description: String
    public var bases: [BaseSpec]
    public var cells: [GridCell]
    /// Held-out evaluation of each base (problems per level, samples K).
    public var baseEvalProblems: Int
    public var baseEvalSamples: Int

    public func base(named n: String) -> BaseSpec? { bases.first { $0.name == n } }

    /// Cells of shard `index` of `count` (round-robin over the expansion order).
    public func shard(_ index: Int, of count: Int) -> [GridCell] {
        cells.enumerated().filter { $0.offset % count == index }.map(\.element)
    }

    static func cellID(base: BaseSpec, config: CellConfig) -> String {
        StableHash.hex("cell-v\(CellResult.schemaVersion):n\(Numerics.version):\(base.key):", json: config)
    }
}

/// Reads grid files (the format is documented in the README and in `grids/quick.toml`).
public enum GridFile {
    static let rootKeys = ["name", "description", "base", "cell", "axes", "zip", "constraints"]
    static let baseKeys = ["sizes", "tasks", "tokens_per_param", "min_tokens", "seed", "eval_problems", "eval_samples"]
    static let cellKeys = [
        "eval_points", "eval_samples", "eval_problems", "warmup", "kl", "entropy", "teacher_lag",
        "distill_reward_weight", "min_difficulty", "max_difficulty",
    ]
    static let axisKeys = ["size", "method", "tasks", "n", "bp", "budget", "lr", "lag", "curriculum", "train_bucket", "pool_size", "seed"]
    /// Common misnamings, checked before edit distance.
    static let aliases = [
        "rollouts": "n", "rollouts_per_problem": "n", "problems_per_batch": "bp", "batch": "bp", "budgets": "budget",
        "compute": "budget", "methods": "method", "seeds": "seed", "sizes": "size", "model": "size",
        "learning_rate": "lr", "policy_lag": "lag", "mixture": "tasks", "task": "tasks", "bucket": "train_bucket",
        "pool": "pool_size", "dataset_size": "pool_size",
    ]

    public static func load(_ path: String) throws(GridError) -> Grid {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such file"
            throw GridError(file: path, line: 1, key: nil, message: why)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            // The line of the first byte that is not UTF-8.
            var line = 1
            for prefix in (0...data.count).reversed() where String(data: data.prefix(prefix), encoding: .utf8) != nil {
                line += data.prefix(prefix).filter { $0 == 0x0A }.count
                break
            }
            throw GridError(file: path, line: line, key: nil, message: "is not UTF-8 text (a grid file is TOML, UTF-8 encoded)")
        }
        return try parse(text, file: path)
    }

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

    public static func parse(_ text: String, file: String) throws(GridError) -> Grid {
        let root: TOMLTable
        do { root = try TOMLParser.parse(text) } catch {
            throw GridError(file: file, line: error.line, key: nil, message: error.message)
        }
        // Errors about something missing point at the file's last line.
        let lastLine = max(1, text.split(separator: "\n", omittingEmptySubsequences: false).count - (text.hasSuffix("\n") ? 1 : 0))
        func err(_ line: Int, _ key: String?, _ m: String) -> GridError {
            GridError(file: file, line: line >= 1 ? line : lastLine, key: key, message: m)
        }
        func checkKeys(_ t: TOMLTable, _ known: [String], _ section: String) throws(GridError) {
            for k in t.keys where !known.contains(k) {
                throw err(t.line(of: k), k, "unknown key in \(section)" + suggestion(k, among: known))
            }
        }
        try checkKeys(root, rootKeys, "the top level")
        func table(_ k: String, required: Bool) throws(GridError) -> TOMLTable {
            guard let v = root[k] else {
                if required { throw err(0, k, "missing required table [\(k)]") }
                return TOMLTable()
            }
            guard case .table(let t) = v else { throw err(root.line(of: k), k, "must be a table, got \(v.typeName)") }
            return t
        }
        guard case .string(let name)? = root["name"] else {
            throw err(root.line(of: "name"), "name", root["name"] == nil ? "missing (every grid needs a name)" : "must be a string")
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw err(root.line(of: "name"), "name", "'\(name)' must be letters, digits, '_' or '-' (it names the results folder)")
        }
        var description = ""
        if let d = root["description"] {
            guard case .string(let s) = d else { throw err(root.line(of: "description"), "description", "must be a string") }
            description = s
        }
        let baseT = try table("base", required: true), cellT = try table("cell", required: false)
        let axesT = try table("axes", required: true)
        try checkKeys(baseT, baseKeys, "[base]")
        try checkKeys(cellT, cellKeys, "[cell]")
        try checkKeys(axesT, axisKeys, "[axes]")

        // Typed accessors that name the key and line on error.
        func number(_ t: TOMLTable, _ k: String, _ section: String, default d: Double, min lo: Double? = nil) throws(GridError) -> Double {
            guard let v = t[k] else { return d }
            guard let x = v.number else { throw err(t.line(of: k), k, "in \(section) must be a number, got \(v.typeName) \(v)") }
            if let lo, x < lo { throw err(t.line(of: k), k, "in \(section) must be at least \(lo), got \(x)") }
            return x
        }
        func int(_ t: TOMLTable, _ k: String, _ section: String, default d: Int, min lo: Int = 0) throws(GridError) -> Int {
            guard let v = t[k] else { return d }
            guard case .integer(let x) = v else { throw err(t.line(of: k), k, "in \(section) must be an integer, got \(v.typeName) \(v)") }
            guard x >= lo else { throw err(t.line(of: k), k, "in \(section) must be at least \(lo), got \(x)") }
            return x
        }
        func string(_ t: TOMLTable, _ k: String, _ section: String) throws(GridError) -> String? {
            guard let v = t[k] else { return nil }
            guard case .string(let s) = v else { throw err(t.line(of: k), k, "in \(section) must be a string, got \(v.typeName) \(v)") }
            return s
        }
        func mixture(_ s: String, line: Int, key: String) throws(GridError) -> TaskMixture {
            do { return try TaskMixture.parse(s) } catch { throw err(line, key, error.description) }
        }

        // [base]
        guard case .array(let sizeVals)? = baseT["sizes"], !sizeVals.isEmpty else {
            throw err(baseT.line(of: "sizes"), "sizes", "[base] needs sizes = [\"xs\", ...] (ladder sizes: \(BaseLadder.sizes.map(\.name).joined(separator: ", ")))")
        }
        let corpusMix = try mixture(try string(baseT, "tasks", "[base]") ?? TaskMixture.uniform.description, line: baseT.line(of: "tasks"), key: "tasks")
        let tpp = try number(baseT, "tokens_per_param", "[base]", default: 8, min: 0)
        let minTokens = try int(baseT, "min_tokens", "[base]", default: 2_000_000, min: 1)
        let baseSeed = try int(baseT, "seed", "[base]", default: 0)
        var bases: [BaseSpec] = []
        for v in sizeVals {
            guard case .string(let s) = v, let spec = BaseLadder.spec(s, corpus: CorpusConfig(mixture: corpusMix), tokensPerParameter: tpp, minTokens: minTokens, seed: UInt64(baseSeed)) else {
                throw err(baseT.line(of: "sizes"), "sizes", "unknown size \(v) (ladder sizes: \(BaseLadder.sizes.map(\.name).joined(separator: ", ")))")
            }
            bases.append(spec)
        }

        // [cell]: settings shared by every cell
        let evalPoints = try int(cellT, "eval_points", "[cell]", default: 8, min: 2)
        let evalSamples = try int(cellT, "eval_samples", "[cell]", default: 8, min: 4)
        let evalProblems = try int(cellT, "eval_problems", "[cell]", default: 4, min: 1)
        // A cell evaluates a subset of its base's evaluation problems (so that the base's
        // pass-rate buckets apply to it): it cannot ask for more per level than the base has.
        let baseEvalProblems = try int(baseT, "eval_problems", "[base]", default: 16, min: 1)
        guard evalProblems <= baseEvalProblems else {
            throw err(cellT.line(of: "eval_problems"), "eval_problems",
                      "in [cell] is \(evalProblems), more than the \(baseEvalProblems) problems per level the base is evaluated on "
                          + "([base] eval_problems); cells evaluate a subset of the base's problems, so raise [base] eval_problems")
        }
        let warmup = try int(cellT, "warmup", "[cell]", default: 0)
        let kl = try number(cellT, "kl", "[cell]", default: 0, min: 0)
        let entropy = try number(cellT, "entropy", "[cell]", default: 0, min: 0)
        let teacherLag = try int(cellT, "teacher_lag", "[cell]", default: 0)
        let distillW = try number(cellT, "distill_reward_weight", "[cell]", default: 0, min: 0)
        let minDiff = try int(cellT, "min_difficulty", "[cell]", default: 1, min: 1)
        let maxDiff: Int? = cellT["max_difficulty"] == nil ? nil : try int(cellT, "max_difficulty", "[cell]", default: 1, min: minDiff)

        // [axes]
        func values(_ k: String) -> [TOMLValue]? {
            guard let v = axesT[k] else { return nil }
            if case .array(let a) = v { return a }
            return [v]
        }
        func strings(_ k: String, default d: [String]) throws(GridError) -> [String] {
            guard let vs = values(k) else { return d }
            var out: [String] = []
            for v in vs {
                guard case .string(let s) = v else { throw err(axesT.line(of: k), k, "in [axes] must hold strings, got \(v.typeName) \(v)") }
                out.append(s)
            }
            guard !out.isEmpty else { throw err(axesT.line(of: k), k, "in [axes] is empty") }
            return out
        }
        func ints(_ k: String, default d: [Int], min lo: Int) throws(GridError) -> [Int] {
            guard let vs = values(k) else { return d }
            var out: [Int] = []
            for v in vs {
                guard case .integer(let x) = v else { throw err(axesT.line(of: k), k, "in [axes] must hold integers, got \(v.typeName) \(v)") }
                guard x >= lo else { throw err(axesT.line(of: k), k, "in [axes] must be at least \(lo), got \(x)") }
                out.append(x)
            }
            guard !out.isEmpty else { throw err(axesT.line(of: k), k, "in [axes] is empty") }
            return out
        }
        func numbers(_ k: String, default d: [Double]) throws(GridError) -> [Double] {
            guard let vs = values(k) else { return d }
            var out: [Double] = []
            for v in vs {
                guard let x = v.number, x > 0 else { throw err(axesT.line(of: k), k, "in [axes] must hold positive numbers, got \(v)") }
                out.append(x)
            }
            guard !out.isEmpty else { throw err(axesT.line(of: k), k, "in [axes] is empty") }
            return out
        }
        let sizes = try strings("size", default: bases.map(\.name))
        for s in sizes where !bases.contains(where: { $0.name == s }) {
            throw err(axesT.line(of: "size"), "size", "'\(s)' is not among [base] sizes \(bases.map(\.name))")
        }
        let methods = try strings("method", default: ["grpo"])
        for m in methods where !Methods.names.contains(m) {
            throw err(axesT.line(of: "method"), "method", "unknown method '\(m)' (known: \(Methods.names.joined(separator: ", ")))")
        }
        var mixtures: [TaskMixture] = []
        for s in try strings("tasks", default: [corpusMix.description]) {
            mixtures.append(try mixture(s, line: axesT.line(of: "tasks"), key: "tasks"))
        }
        let ns = try ints("n", default: [8], min: 1), bps = try ints("bp", default: [8], min: 1)
        let lags = try ints("lag", default: [0], min: 0), seeds = try ints("seed", default: [0], min: 0)
        let lrs = try numbers("lr", default: [5e-5])
        var curricula: [Curriculum] = []
        for s in try strings("curriculum", default: ["uniform"]) {
            guard let c = Curriculum.parse(s) else {
                throw err(axesT.line(of: "curriculum"), "curriculum", "'\(s)' is not uniform, easy_to_hard or pass_rate[:low-high]")
            }
            curricula.append(c)
        }
        // Fixed training pools: `train_bucket` ("all" = any base pass rate) and its size D.
        var trainBuckets: [PassBucket?] = []
        for s in try strings("train_bucket", default: ["all"]) {
            if s == "all" { trainBuckets.append(nil); continue }
            guard let b = PassBucket(rawValue: s) else {
                throw err(axesT.line(of: "train_bucket"), "train_bucket",
                          "'\(s)' is not a base pass bucket (all, \(PassBucket.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            trainBuckets.append(b)
        }
        let poolSizes: [Int?] = axesT["pool_size"] == nil ? [nil] : try ints("pool_size", default: [], min: 1).map { $0 }
        // budget: a list, or a log range {from, to, per_decade}
        var budgets: [Double] = []
        if case .table(let r)? = axesT["budget"] {
            let line = axesT.line(of: "budget")
            for k in r.keys where !["from", "to", "per_decade"].contains(k) {
                throw err(line, "budget.\(k)", "unknown key in the budget range" + suggestion(k, among: ["from", "to", "per_decade"]))
            }
            guard let from = r["from"]?.number, let to = r["to"]?.number, from > 0, to >= from else {
                throw err(line, "budget", "a range needs from > 0 and to >= from, got \(TOMLValue.table(r))")
            }
            guard case .integer(let per)? = r["per_decade"], per >= 1 else {
                throw err(line, "budget.per_decade", "must be a positive integer, got \(r["per_decade"]?.description ?? "nothing")")
            }
            let decades = log10(to / from)
            let steps = Int((decades * Double(per)).rounded())
            budgets = (0...steps).map { from * pow(10, Double($0) / Double(per)) }
        } else {
            budgets = try numbers("budget", default: [])
            guard !budgets.isEmpty else { throw err(axesT.line, "budget", "[axes] needs budget = [...] or {from, to, per_decade}") }
        }

        // zipped groups: axes that advance together instead of forming a product
        var zipGroups: [[String]] = []
        if let z = root["zip"] {
            guard case .array(let groups) = z else { throw err(root.line(of: "zip"), "zip", "must be an array of arrays of axis names") }
            for g in groups {
                guard case .array(let names) = g else { throw err(root.line(of: "zip"), "zip", "must be an array of arrays of axis names") }
                var group: [String] = []
                for n in names {
                    guard case .string(let s) = n, axisKeys.contains(s) else {
                        throw err(root.line(of: "zip"), "zip", "\(n) is not an axis" + suggestion(n.description.trimmingCharacters(in: CharacterSet(charactersIn: "\"")), among: axisKeys))
                    }
                    group.append(s)
                }
                zipGroups.append(group)
            }
        }
        var constraints: [Constraint] = []
        if let c = root["constraints"] {
            guard case .array(let exprs) = c else { throw err(root.line(of: "constraints"), "constraints", "must be an array of strings") }
            for e in exprs {
                guard case .string(let s) = e else { throw err(root.line(of: "constraints"), "constraints", "must be an array of strings") }
                do { constraints.append(try Constraint(s)) } catch {
                    throw err(root.line(of: "constraints"), "constraints", "'\(s)': \(error.message)")
                }
            }
        }

        // Expansion: the product of every axis, except that axes in a zip group advance together.
        let axisValues: [(String, Int)] = [
            ("size", sizes.count), ("method", methods.count), ("tasks", mixtures.count), ("n", ns.count), ("bp", bps.count),
            ("budget", budgets.count), ("lr", lrs.count), ("lag", lags.count), ("curriculum", curricula.count),
            ("train_bucket", trainBuckets.count), ("pool_size", poolSizes.count), ("seed", seeds.count),
        ]
        var dims: [[String]] = []
        var zipped = Set<String>()
        for g in zipGroups {
            let lengths = Set(g.compactMap { a in axisValues.first { $0.0 == a }?.1 })
            guard lengths.count == 1 else {
                throw err(root.line(of: "zip"), "zip", "axes \(g) have different lengths \(g.compactMap { a in axisValues.first { $0.0 == a }?.1 })")
            }
            for a in g where zipped.contains(a) { throw err(root.line(of: "zip"), "zip", "axis '\(a)' is in two zip groups") }
            zipped.formUnion(g)
            dims.append(g)
        }
        for (a, _) in axisValues where !zipped.contains(a) { dims.append([a]) }
        let lengths = dims.map { d in axisValues.first { $0.0 == d[0] }?.1 ?? 1 }
        var cells: [GridCell] = []
        var index = [Int](repeating: 0, count: dims.count)
        let total = lengths.reduce(1, *)
        for _ in 0..<total {
            var pick: [String: Int] = [:]
            for (d, i) in zip(dims, index) { for a in d { pick[a] = i } }
            let size = sizes[pick["size"] ?? 0]
            guard let base = bases.first(where: { $0.name == size }) else { continue }
            let n = ns[pick["n"] ?? 0], bp = bps[pick["bp"] ?? 0], budget = budgets[pick["budget"] ?? 0]
            let lr = lrs[pick["lr"] ?? 0], lag = lags[pick["lag"] ?? 0], seed = seeds[pick["seed"] ?? 0]
            let vars: [String: Double] = [
                "n": Double(n), "bp": Double(bp), "budget": budget, "lr": lr, "lag": Double(lag), "seed": Double(seed),
                "params": Double(base.model.nonEmbeddingParameterCount),
            ]
            let keep = constraints.allSatisfy { $0.holds(vars) }
            if keep {
                let config = CellConfig(
                    method: methods[pick["method"] ?? 0], rolloutsPerProblem: n, problemsPerBatch: bp, budgetFLOPs: budget,
                    learningRate: Float(lr), warmupSteps: warmup, tasks: mixtures[pick["tasks"] ?? 0], maxDifficulty: maxDiff,
                    minDifficulty: minDiff, curriculum: curricula[pick["curriculum"] ?? 0],
                    trainBucket: trainBuckets[pick["train_bucket"] ?? 0], poolSize: poolSizes[pick["pool_size"] ?? 0], policyLag: lag, klCoef: kl,
                    entropyCoef: entropy, teacherLag: teacherLag, distillRewardWeight: distillW, seed: UInt64(seed),
                    evalPoints: evalPoints, evalSamples: evalSamples, evalProblemsPerLevel: evalProblems)
                if let why = config.validationError() { throw err(axesT.line, nil, "cell \(cells.count): \(why)") }
                cells.append(GridCell(base: size, config: config, id: Grid.cellID(base: base, config: config)))
            }
            // odometer increment, last dimension fastest
            var d = dims.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < lengths[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        guard !cells.isEmpty else { throw err(root.line(of: "constraints"), "constraints", "no cell satisfies the constraints") }
        let used = Set(cells.map(\.base))
        return Grid(
            name: name, description: description, bases: bases.filter { used.contains($0.name) }, cells: cells,
            baseEvalProblems: baseEvalProblems,
            baseEvalSamples: try int(baseT, "eval_samples", "[base]", default: 32, min: 1))
    }
}
