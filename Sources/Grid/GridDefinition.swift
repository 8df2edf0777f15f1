import BasePolicies
import Evaluation
import Foundation
import ResultSchema
import RLTraining
import Tasks

/// A grid file decoded into typed values, before expansion. Decoding checks every key,
/// type and range, so it raises every error that names a line of the file; the lines
/// that expansion may still need (zip, constraints, `[axes]`, each `[cell]` key) are
/// kept here. `expand()` (GridSpec.swift) turns a definition into a `Grid`.
public struct GridDefinition: Hashable, Sendable {
    public var source: GridSource
    public var name: String
    public var description: String
    public var base: BaseSettings
    public var cell: CellSettings
    public var axes: Axes
    /// Axes that advance together instead of multiplying.
    public var zipGroups: [[String]]
    /// Line of `zip` (0 when absent).
    public var zipLine: Int
    public var constraints: [Constraint]
    /// Line of `constraints` (0 when absent).
    public var constraintsLine: Int

    /// `[base]`: the bases (in `sizes` order) and how they are evaluated.
    public struct BaseSettings: Hashable, Sendable {
        public var specs: [BaseSpec]
        /// The pretraining mixture; also the default `tasks` axis.
        public var corpus: TaskMixture
        /// Held-out evaluation of each base: problems per level and samples K.
        public var evalProblems: Int
        public var evalSamples: Int
    }

    /// `[cell]`: settings shared by every cell (defaults: `CellDefaults`).
    public struct CellSettings: Hashable, Sendable {
        public var evalPoints: Int
        public var evalSamples: Int
        public var evalProblems: Int
        public var warmup: Int
        /// Method knobs written in `[cell]`, as spelled (`CellConfig.set(_:to:)` reads them).
        public var knobs: [MethodKnob: String]
        public var minDifficulty: Int
        public var maxDifficulty: Int?
        /// Turns of the multi-turn evaluation (nil: the training turns) and samples K of the
        /// support measurement (nil: none).
        public var evalTurns: Int?
        public var supportSamples: Int?
        /// Reward diagnostics (sequence KL to the base, proxy beside gold) at every point even
        /// on the gold reward.
        public var evalKL: Bool
        /// The held-out levels each evaluation point samples.
        public var evalLevels: EvalLevels
        /// Line of the `[cell]` header (0 when there is none).
        public var line: Int
        /// Line of each key written in `[cell]`; a key left at its default has none.
        public var keyLines: [String: Int]

        /// The line of `key`, or of the `[cell]` header when the key was not written.
        public func line(of key: String) -> Int { keyLines[key] ?? line }
    }

    /// `[axes]`: the values of every axis (one value for an axis left at its default).
    public struct Axes: Hashable, Sendable {
        public var size: [String]
        public var method: [String]
        /// Method-knob axes (`teacher = ["base", "ema:0.05"]`), as spelled: each applies to
        /// the cells whose method reads the knob; for the others it collapses (they keep the
        /// default, and the copies it would make are one cell).
        public var knobs: [MethodKnob: [String]]
        public var tasks: [TaskMixture]
        public var n: [Int]
        public var bp: [Int]
        public var budget: [Double]
        public var lr: [Double]
        public var lag: [Int]
        public var curriculum: [Curriculum]
        /// nil: any base pass rate (`all`).
        public var trainBucket: [PassBucket?]
        /// nil: a fresh problem for every draw (no `pool_size`).
        public var poolSize: [Int?]
        public var seed: [Int]
        /// Line of the `[axes]` header.
        public var line: Int

        /// Each axis's key and number of values, in expansion order (the first varies slowest).
        public var counts: [(key: String, count: Int)] {
            let head: [(key: String, count: Int)] = [("size", size.count), ("method", method.count)]
            let knobAxes: [(key: String, count: Int)] = MethodKnob.allCases.map { ($0.rawValue, knobs[$0]?.count ?? 1) }
            let rest: [(key: String, count: Int)] = [
                ("tasks", tasks.count), ("n", n.count), ("bp", bp.count), ("budget", budget.count), ("lr", lr.count),
                ("lag", lag.count), ("curriculum", curriculum.count), ("train_bucket", trainBucket.count),
                ("pool_size", poolSize.count), ("seed", seed.count),
            ]
            return head + knobAxes + rest
        }
    }
}

/// Where a grid was read from, so that an error can name its file and line.
public struct GridSource: Hashable, Sendable {
    public var file: String
    /// Errors about something missing point here.
    public var lastLine: Int

    /// An error at `line` (a line below 1, meaning "not written", becomes the last line).
    public func error(_ line: Int, _ key: String?, _ message: String) -> GridError {
        GridError(file: file, line: line >= 1 ? line : lastLine, key: key, message: message)
    }
}

extension GridDefinition {
    /// Decodes a grid file's text; every error names `file`, a line and (mostly) a key.
    public init(decoding text: String, file: String) throws(GridError) {
        let lastLine = max(1, text.split(separator: "\n", omittingEmptySubsequences: false).count - (text.hasSuffix("\n") ? 1 : 0))
        let r = GridReader(source: GridSource(file: file, lastLine: lastLine))
        let root: TOMLTable
        do { root = try TOMLParser.parse(text) } catch { throw GridError(file: file, line: error.line, key: nil, message: error.message) }
        try r.checkKeys(root, GridReader.rootKeys, "the top level")
        guard case .string(let name)? = root["name"] else {
            throw r.error(root.line(of: "name"), "name", root["name"] == nil ? "missing (every grid needs a name)" : "must be a string")
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw r.error(root.line(of: "name"), "name", "'\(name)' must be letters, digits, '_' or '-' (it names the results folder)")
        }
        var description = ""
        if let d = root["description"] {
            guard case .string(let s) = d else { throw r.error(root.line(of: "description"), "description", "must be a string") }
            description = s
        }
        let baseT = try r.table(root, "base", required: true), cellT = try r.table(root, "cell", required: false)
        let axesT = try r.table(root, "axes", required: true)
        try r.checkKeys(baseT, GridReader.baseKeys, "[base]")
        try r.checkKeys(cellT, GridReader.cellKeys, "[cell]")
        try r.checkKeys(axesT, GridReader.axisKeys, "[axes]")
        let base = try Self.decodeBase(baseT, r)
        let cell = try Self.decodeCell(cellT, base: base, r)
        self.init(
            source: r.source, name: name, description: description, base: base, cell: cell,
            axes: try Self.decodeAxes(axesT, base: base, cell: cell, r), zipGroups: try Self.decodeZip(root, r), zipLine: root.line(of: "zip"),
            constraints: try Self.decodeConstraints(root, r), constraintsLine: root.line(of: "constraints"))
    }

    static func decodeBase(_ t: TOMLTable, _ r: GridReader) throws(GridError) -> BaseSettings {
        let ladder = BaseLadder.sizes.map(\.name).joined(separator: ", ")
        guard case .array(let sizeValues)? = t["sizes"], !sizeValues.isEmpty else {
            throw r.error(t.line(of: "sizes"), "sizes", "[base] needs sizes = [\"xs\", ...] (ladder sizes: \(ladder))")
        }
        let corpus = try r.mixture(try r.string(t, "tasks", "[base]") ?? TaskMixture.uniform.description, line: t.line(of: "tasks"), key: "tasks")
        let tpp = try r.number(t, "tokens_per_param", "[base]", default: 8, min: 0)
        let minTokens = try r.int(t, "min_tokens", "[base]", default: 2_000_000, min: 1)
        let seed = try r.int(t, "seed", "[base]", default: 0)
        let privileged = try r.number(
            t, "privileged_fraction", "[base]", default: CorpusConfig.defaultPrivilegedFraction, min: 0, max: 1)
        let episodes = try r.number(t, "episode_fraction", "[base]", default: 0, min: 0, max: 1)
        var specs: [BaseSpec] = []
        for v in sizeValues {
            guard case .string(let s) = v,
                let spec = BaseLadder.spec(
                    s, corpus: CorpusConfig(mixture: corpus, privilegedFraction: privileged, episodeFraction: episodes), tokensPerParameter: tpp,
                    minTokens: minTokens, seed: UInt64(seed))
            else { throw r.error(t.line(of: "sizes"), "sizes", "unknown size \(v) (ladder sizes: \(ladder))") }
            specs.append(spec)
        }
        return BaseSettings(
            specs: specs, corpus: corpus, evalProblems: try r.int(t, "eval_problems", "[base]", default: 16, min: 1),
            evalSamples: try r.int(t, "eval_samples", "[base]", default: 32, min: 1))
    }

    static func decodeCell(_ t: TOMLTable, base: BaseSettings, _ r: GridReader) throws(GridError) -> CellSettings {
        let evalPoints = try r.int(t, "eval_points", "[cell]", default: CellDefaults.evalPoints, min: 2)
        let evalSamples = try r.int(t, "eval_samples", "[cell]", default: CellDefaults.evalSamples, min: 4)
        let evalProblems = try r.int(t, "eval_problems", "[cell]", default: CellDefaults.evalProblemsPerLevel, min: 1)
        // A cell evaluates a subset of its base's evaluation problems (so that the base's
        // pass-rate buckets apply to it): it cannot ask for more per level than the base has.
        guard evalProblems <= base.evalProblems else {
            throw r.error(t.line(of: "eval_problems"), "eval_problems",
                          "in [cell] is \(evalProblems), more than the \(base.evalProblems) problems per level the base is evaluated on "
                              + "([base] eval_problems); cells evaluate a subset of the base's problems, so raise [base] eval_problems")
        }
        let warmup = try r.int(t, "warmup", "[cell]", default: CellDefaults.warmupSteps)
        var knobs: [MethodKnob: String] = [:]
        for knob in MethodKnob.allCases {
            if let v = t[knob.rawValue] { knobs[knob] = try r.knob(knob, v, line: t.line(of: knob.rawValue), "[cell]") }
        }
        if let size = knobs[.rmSize] { try checkRewardModelSize(size, base: base, line: t.line(of: "rm_size"), r) }
        let minDifficulty = try r.int(t, "min_difficulty", "[cell]", default: CellDefaults.minDifficulty, min: 1)
        let maxDifficulty: Int? = t["max_difficulty"] == nil ? nil : try r.int(t, "max_difficulty", "[cell]", default: minDifficulty, min: minDifficulty)
        let evalTurns: Int? = t["eval_turns"] == nil ? nil : try r.int(t, "eval_turns", "[cell]", default: 1, min: 1)
        if let e = evalTurns, e > EpisodeSpec.maxTurns {
            throw r.error(t.line(of: "eval_turns"), "eval_turns", "must be at most \(EpisodeSpec.maxTurns), got \(e)")
        }
        let supportSamples: Int? = t["support_samples"] == nil ? nil : try r.int(t, "support_samples", "[cell]", default: 4, min: 4)
        let evalKL = try r.bool(t, "eval_kl", "[cell]", default: false)
        var evalLevels = EvalLevels.all
        if let s = try r.string(t, "eval_levels", "[cell]") {
            guard let e = EvalLevels(rawValue: s) else {
                throw r.error(t.line(of: "eval_levels"), "eval_levels",
                    "unknown value '\(s)' (expected one of: \(EvalLevels.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            evalLevels = e
        }
        return CellSettings(
            evalPoints: evalPoints, evalSamples: evalSamples, evalProblems: evalProblems, warmup: warmup, knobs: knobs,
            minDifficulty: minDifficulty, maxDifficulty: maxDifficulty, evalTurns: evalTurns, supportSamples: supportSamples, evalKL: evalKL,
            evalLevels: evalLevels,
            line: t.line, keyLines: Dictionary(uniqueKeysWithValues: t.keys.map { ($0, t.line(of: $0)) }))
    }

    /// Whether some cell of the grid trains on a learned reward model: `reward = "rm"` in
    /// [cell] or among the reward axis's values (as spelled, however spaced).
    static func trainsOnRewardModel(_ axes: [MethodKnob: [String]], _ cell: CellSettings) -> Bool {
        (axes[.reward] ?? cell.knobs[.reward].map { [$0] } ?? []).contains { RewardSource($0) == .learned }
    }

    /// Whether some cell of the grid has multi-turn episodes: `turns` above 1 in [cell] or
    /// among the turns axis's values.
    static func trainsOnEpisodes(_ axes: [MethodKnob: [String]], _ cell: CellSettings) -> Bool {
        (axes[.turns] ?? cell.knobs[.turns].map { [$0] } ?? []).contains { (Int($0.trimmingCharacters(in: .whitespaces)) ?? 1) > 1 }
    }

    /// Why no cell of the grid reads a conditional knob (its gate never opens), or nil.
    static func closedGate(_ knob: MethodKnob, _ axes: [MethodKnob: [String]], _ cell: CellSettings) -> String? {
        if MethodKnob.rewardModelKnobs.contains(knob), !trainsOnRewardModel(axes, cell) {
            return "no cell of this grid reads it: it is read only with reward = \"rm\""
        }
        if knob == .turnCredit, !trainsOnEpisodes(axes, cell) {
            return "no cell of this grid reads it: it is read only with turns > 1"
        }
        if knob == .feedback, !trainsOnEpisodes(axes, cell), (cell.evalTurns ?? 1) <= 1 {
            return "no cell of this grid reads it: it is read only with turns > 1 or eval_turns > 1"
        }
        return nil
    }

    /// `rm_size` names a base of the grid's ladder, or `base` (the cell's own).
    static func checkRewardModelSize(_ spelled: String, base: BaseSettings, line: Int, _ r: GridReader) throws(GridError) {
        let size = spelled.trimmingCharacters(in: .whitespaces)
        let names = base.specs.map(\.name)
        guard size == "base" || names.contains(size) else {
            throw r.error(line, "rm_size", "'\(size)' is not a base of this grid ([base] sizes: \(names.joined(separator: ", "))) or base")
        }
    }

    static func decodeAxes(_ t: TOMLTable, base: BaseSettings, cell: CellSettings, _ r: GridReader) throws(GridError) -> Axes {
        let baseNames = base.specs.map(\.name)
        let sizes = try r.strings(t, "size", default: baseNames)
        for s in sizes where !baseNames.contains(s) {
            throw r.error(t.line(of: "size"), "size", "'\(s)' is not among [base] sizes \(baseNames)")
        }
        let methods = try r.strings(t, "method", default: [CellDefaults.method])
        for m in methods where !Methods.names.contains(m) {
            throw r.error(t.line(of: "method"), "method", "unknown method '\(m)' (known: \(Methods.names.joined(separator: ", ")))")
        }
        var knobs: [MethodKnob: [String]] = [:]
        for knob in MethodKnob.allCases {
            guard let vs = r.values(t, knob.rawValue) else { continue }
            let line = t.line(of: knob.rawValue)
            if cell.knobs[knob] != nil {
                throw r.error(line, knob.rawValue, "is both an axis and a [cell] key (line \(cell.line(of: knob.rawValue))); keep one")
            }
            if let why = closedGate(knob, knobs, cell) { throw r.error(line, knob.rawValue, why) }
            let readers = methods.filter { Methods.knobs(of: $0).contains(knob) || MethodKnob.rewardModelKnobs.contains(knob) }
            guard !readers.isEmpty else {
                let users = Methods.names.filter { Methods.knobs(of: $0).contains(knob) }
                throw r.error(line, knob.rawValue, "no method of this grid reads it (it is read by \(users.joined(separator: ", ")))")
            }
            var spelled: [String] = []
            for v in vs { spelled.append(try r.knob(knob, v, line: line, "[axes]")) }
            guard !spelled.isEmpty else { throw r.error(line, knob.rawValue, "in [axes] needs at least one value") }
            if knob == .rmSize { for v in spelled { try checkRewardModelSize(v, base: base, line: line, r) } }
            knobs[knob] = spelled
        }
        // `rm_*` and episode keys of [cell] too are read only by the cells their gate opens for.
        for knob in MethodKnob.allCases where MethodKnob.conditionalKnobs.contains(knob) && cell.knobs[knob] != nil {
            if let why = closedGate(knob, knobs, cell) { throw r.error(cell.line(of: knob.rawValue), knob.rawValue, why) }
        }
        var mixtures: [TaskMixture] = []
        for s in try r.strings(t, "tasks", default: [base.corpus.description]) {
            mixtures.append(try r.mixture(s, line: t.line(of: "tasks"), key: "tasks"))
        }
        let ns = try r.ints(t, "n", default: [CellDefaults.rolloutsPerProblem], min: 1)
        let bps = try r.ints(t, "bp", default: [CellDefaults.problemsPerBatch], min: 1)
        let lags = try r.ints(t, "lag", default: [CellDefaults.policyLag], min: 0)
        let seeds = try r.ints(t, "seed", default: [Int(CellDefaults.seed)], min: 0)
        let lrs = try r.numbers(t, "lr", default: [GridReader.defaultLearningRate])
        var curricula: [Curriculum] = []
        for s in try r.strings(t, "curriculum", default: ["uniform"]) {
            guard let c = Curriculum.parse(s) else {
                throw r.error(t.line(of: "curriculum"), "curriculum", "'\(s)' is not uniform, easy_to_hard or pass_rate[:low-high]")
            }
            curricula.append(c)
        }
        // Fixed training pools: `train_bucket` ("all" = any base pass rate) and its size D.
        var buckets: [PassBucket?] = []
        for s in try r.strings(t, "train_bucket", default: ["all"]) {
            if s == "all" { buckets.append(nil); continue }
            guard let b = PassBucket(rawValue: s) else {
                throw r.error(t.line(of: "train_bucket"), "train_bucket",
                              "'\(s)' is not a base pass bucket (all, \(PassBucket.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            buckets.append(b)
        }
        let poolSizes: [Int?] = t["pool_size"] == nil ? [nil] : try r.ints(t, "pool_size", default: [], min: 1).map { $0 }
        return Axes(
            size: sizes, method: methods, knobs: knobs, tasks: mixtures, n: ns, bp: bps, budget: try decodeBudget(t, r), lr: lrs, lag: lags,
            curriculum: curricula, trainBucket: buckets, poolSize: poolSizes, seed: seeds, line: t.line)
    }

    /// `budget`: a list of FLOPs, or a log range `{from, to, per_decade}`.
    static func decodeBudget(_ t: TOMLTable, _ r: GridReader) throws(GridError) -> [Double] {
        guard case .table(let range)? = t["budget"] else {
            let budgets = try r.numbers(t, "budget", default: [])
            guard !budgets.isEmpty else { throw r.error(t.line, "budget", "[axes] needs budget = [...] or {from, to, per_decade}") }
            return budgets
        }
        let line = t.line(of: "budget"), rangeKeys = ["from", "to", "per_decade"]
        for k in range.keys where !rangeKeys.contains(k) {
            throw r.error(line, "budget.\(k)", "unknown key in the budget range" + GridReader.suggestion(k, among: rangeKeys))
        }
        guard let from = range["from"]?.number, let to = range["to"]?.number, from > 0, to >= from else {
            throw r.error(line, "budget", "a range needs from > 0 and to >= from, got \(TOMLValue.table(range))")
        }
        guard case .integer(let per)? = range["per_decade"], per >= 1 else {
            throw r.error(line, "budget.per_decade", "must be a positive integer, got \(range["per_decade"]?.description ?? "nothing")")
        }
        let steps = Int((log10(to / from) * Double(per)).rounded())
        return (0...steps).map { from * pow(10, Double($0) / Double(per)) }
    }

    /// `zip`: groups of axis names; an axis may be in one group only.
    static func decodeZip(_ root: TOMLTable, _ r: GridReader) throws(GridError) -> [[String]] {
        guard let z = root["zip"] else { return [] }
        let line = root.line(of: "zip"), shape = "must be an array of arrays of axis names"
        guard case .array(let groups) = z else { throw r.error(line, "zip", shape) }
        var zipGroups: [[String]] = [], seen = Set<String>()
        for g in groups {
            guard case .array(let names) = g else { throw r.error(line, "zip", shape) }
            var group: [String] = []
            for n in names {
                guard case .string(let s) = n, GridReader.axisKeys.contains(s) else {
                    let written = n.description.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    throw r.error(line, "zip", "\(n) is not an axis" + GridReader.suggestion(written, among: GridReader.axisKeys))
                }
                group.append(s)
            }
            for a in group where seen.contains(a) { throw r.error(line, "zip", "axis '\(a)' is in two zip groups") }
            seen.formUnion(group)
            zipGroups.append(group)
        }
        return zipGroups
    }

    /// `constraints`: expressions every cell must satisfy.
    static func decodeConstraints(_ root: TOMLTable, _ r: GridReader) throws(GridError) -> [Constraint] {
        guard let c = root["constraints"] else { return [] }
        let line = root.line(of: "constraints")
        guard case .array(let exprs) = c else { throw r.error(line, "constraints", "must be an array of strings") }
        var constraints: [Constraint] = []
        for e in exprs {
            guard case .string(let s) = e else { throw r.error(line, "constraints", "must be an array of strings") }
            do { constraints.append(try Constraint(s)) } catch { throw r.error(line, "constraints", "'\(s)': \(error.message)") }
        }
        return constraints
    }
}
