import Foundation
import ResultSchema

/// Which score to read from a cell's evaluations: a metric (`avg@k`, `best@k`, `worst@k`,
/// `greedy`, or the exact `p_ref` / `logp_ref`) of one group (`train_dist`, `all`, a pass
/// bucket such as `easy`/`hard`, or a difficulty such as `d3`), averaged over the task
/// families weighted by their problem counts.
public struct ScoreSelector: Sendable, Hashable, CustomStringConvertible {
    /// "avg", "best", "worst", "greedy", "p_ref", "logp_ref", or "solved" (multi-turn
    /// episodes solved within k turns, on the training distribution: `group` is ignored).
    public var kind: String
    /// k for avg/best/worst (ignored for greedy).
    public var k: Int
    /// Evaluation group name.
    public var group: String

    /// Parses a metric such as "avg@4" or "greedy".
    public init(metric: String = "avg@4", group: String = "all") throws(LawError) {
        let m = metric.trimmingCharacters(in: .whitespaces).lowercased()
        if ["greedy", "p_ref", "logp_ref"].contains(m) {
            kind = m; k = 1
        } else {
            let parts = m.split(separator: "@")
            guard parts.count == 2, ["avg", "best", "worst", "solved"].contains(String(parts[0])), let kk = Int(parts[1]), kk >= 1 else {
                throw .parse("metric '\(metric)': expected avg@k, best@k, worst@k, greedy, p_ref, logp_ref or solved@t")
            }
            kind = String(parts[0]); k = kk
        }
        guard !group.isEmpty else { throw .parse("group: empty") }
        self.group = group
    }

    /// "avg@4 of all"; "solved@4 (multi-turn, train_dist)".
    public var description: String {
        if kind == "solved" { return "solved@\(k) (multi-turn episodes, train_dist)" }
        return (["avg", "best", "worst"].contains(kind) ? "\(kind)@\(k)" : kind) + " of " + group
    }
}

/// One point of a cell's learning curve.
public struct CurvePoint: Sendable, Hashable {
    /// Compute charged so far (FLOPs, `compute.total`).
    public var compute: Double
    /// Rollouts sampled so far.
    public var rollouts: Double
    /// The selected score.
    public var score: Double
    /// Standard error of `score` (the family-weighted combination of the document's `se`
    /// entries); NaN when unknown (older documents, or a family without an SE).
    public var se: Double
    /// Creates a point (`se` defaults to unknown).
    public init(compute: Double, rollouts: Double, score: Double, se: Double = .nan) {
        self.compute = compute; self.rollouts = rollouts; self.score = score; self.se = se
    }

    /// Equality treats two unknown (NaN) SEs as equal.
    public static func == (a: CurvePoint, b: CurvePoint) -> Bool {
        a.compute == b.compute && a.rollouts == b.rollouts && a.score == b.score && sameSE(a.se, b.se)
    }

    public func hash(into h: inout Hasher) {
        h.combine(compute); h.combine(rollouts); h.combine(score); h.combine(se.isNaN ? Double.infinity : se)
    }
}

/// Whether two standard errors are equal, two unknown (NaN) ones included.
func sameSE(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

/// What the law fitter needs of one finished cell.
public struct Cell: Sendable, Hashable {
    /// The file-name stem of its document.
    public var id: String
    public var method: String
    /// Canonical task mixture and training pool, e.g. "mul:1,sort:1" or "sort:1 [easy D=256]"
    /// (`CellConfig.lawGroupLabel`).
    public var taskMix: String
    /// Non-embedding parameters of the base (N).
    public var parameters: Double
    /// Rollouts per problem (n).
    public var rolloutsPerProblem: Int
    /// Problems per batch (Bp).
    public var problemsPerBatch: Int
    public var seed: UInt64
    /// The numerics version that computed the cell (nil for documents older than versioning).
    public var numerics: Int?
    /// The learning curve, step 0 (compute 0) first.
    public var curve: [CurvePoint]
    /// Charged FLOPs per sampled rollout over the whole run (`compute.total / compute.rollouts`):
    /// the all-in cost of one rollout, training passes included.
    public var flopsPerRollout: Double
    /// Every setting of the cell (`CellSetting.all`: learning rate, lag, curriculum, difficulty
    /// range, evaluation, method knobs, …), spelled as grids spell them, by key; the law
    /// fitter groups by those of role `setting` (`LawGrouping`).
    public var settings: [String: String]
    /// The compute budget the cell ran to (NaN when unknown): among cells of one run (same
    /// settings and seed) the one with the largest budget holds the others as prefixes.
    public var budget: Double
    /// Whether the cell's training schedule reads its budget (`CellConfig.scheduleDependsOnBudget`):
    /// then a smaller budget is not a prefix of a larger one.
    public var scheduleDependsOnBudget: Bool
    /// Wall time of the run in seconds (NaN when unknown): the cost model of `core_hours_needed`.
    public var wallSeconds: Double
    /// Evaluation problems behind the score at each point (0 when unknown): the base of
    /// `eval_problems_needed`.
    public var evalProblems: Int
    /// Ids of the cells of the same run with smaller budgets that this one stands for
    /// (`RunMerge`); empty for a cell that is its own run.
    public var mergedPrefixes: [String] = []

    /// Creates a cell (tests and synthetic grids build cells directly).
    public init(id: String, method: String, taskMix: String, parameters: Double, rolloutsPerProblem: Int,
                problemsPerBatch: Int, seed: UInt64 = 0, curve: [CurvePoint], flopsPerRollout: Double, numerics: Int? = nil,
                settings: [String: String] = [:], budget: Double = .nan, scheduleDependsOnBudget: Bool = false,
                wallSeconds: Double = .nan, evalProblems: Int = 0) {
        self.id = id; self.method = method; self.taskMix = taskMix; self.parameters = parameters
        self.rolloutsPerProblem = rolloutsPerProblem; self.problemsPerBatch = problemsPerBatch; self.seed = seed
        self.curve = curve; self.flopsPerRollout = flopsPerRollout; self.numerics = numerics
        self.settings = settings; self.budget = budget; self.scheduleDependsOnBudget = scheduleDependsOnBudget
        self.wallSeconds = wallSeconds; self.evalProblems = evalProblems
    }

    /// The score before any RL (the step-0 point), if the curve has one.
    public var initialScore: Double? { curve.first(where: { $0.compute == 0 })?.score }
}

/// The cells of one result store.
public struct CellStore: Sendable {
    /// Grid name: `manifest.json`'s "grid" (or "name") field, else the folder name.
    public var grid: String
    /// Finished cells, sorted by id.
    public var cells: [Cell]
    /// Cells left out and why (failed, unreadable, no usable score).
    public var skipped: [(id: String, reason: String)]
    /// The stratum `cells` were restricted to (`within(_:)`), nil for the whole store.
    public var within: Stratum? = nil

    /// Creates a store from cells (synthetic analyses and tests).
    public init(grid: String, cells: [Cell], skipped: [(id: String, reason: String)] = []) {
        self.grid = grid; self.cells = cells; self.skipped = skipped
    }

    /// Reads every `RESULTS/cells/*.json` with status "done", scoring each evaluation point
    /// with `score`. Points whose score or compute is not finite are dropped; a cell with
    /// no usable point is skipped with its reason.
    ///
    /// Cells computed by different numerics versions (`numerics` in the documents) are not
    /// comparable: a store that mixes them is refused, naming the versions and some of their
    /// cells, unless `allowMixedNumerics`.
    public static func load(results: String, score: ScoreSelector, allowMixedNumerics: Bool = false) throws(LawError) -> CellStore {
        let fm = FileManager.default
        let dir = (results as NSString).appendingPathComponent("cells")
        let names: [String]
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .io("\(results) is not a result store: it has no cells/ folder (`rlscale run GRID` writes results/<grid>/cells/)")
        }
        do { names = try fm.contentsOfDirectory(atPath: dir) } catch {
            throw .io("cannot list \(dir): \(error.localizedDescription)")
        }
        var grid = URL(fileURLWithPath: results).standardizedFileURL.lastPathComponent
        let manifest = (results as NSString).appendingPathComponent("manifest.json")
        if let d = fm.contents(atPath: manifest),
           let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any] {
            if let g = obj["grid"] as? String, !g.isEmpty { grid = g } else if let g = obj["name"] as? String, !g.isEmpty { grid = g }
        }
        var cells: [Cell] = [], skipped: [(id: String, reason: String)] = []
        for name in names.sorted() where name.hasSuffix(".json") && !name.hasPrefix(".") {
            let id = String(name.dropLast(5))
            let path = (dir as NSString).appendingPathComponent(name)
            guard let data = fm.contents(atPath: path) else { skipped.append((id, "unreadable")); continue }
            switch parse(data, id: id, score: score) {
            case .success(let c): cells.append(c)
            case .failure(let f): skipped.append((id, f.status))
            }
        }
        let versions = Dictionary(grouping: cells) { $0.numerics.map { "numerics \($0)" } ?? "no numerics version (older)" }
        if versions.count > 1 && !allowMixedNumerics {
            let parts = versions.keys.sorted().map { v in
                let ids = versions[v, default: []].map(\.id).sorted()
                return "\(v): \(ids.count) cell(s) (\(ids.prefix(3).joined(separator: ", "))\(ids.count > 3 ? ", …" : ""))"
            }
            throw .parse("\(results) mixes results of different numerics: " + parts.joined(separator: "; ")
                         + ". Rerun the grid with this version (its cells get new ids) or pass --allow-mixed.")
        }
        return CellStore(grid: grid, cells: cells, skipped: skipped)
    }

    /// Decodes one cell document (rlscale's `CellResult`). Its schema version and status are
    /// read first, so that a document of another schema, or a failed cell, is named as such
    /// rather than by whatever field it happens to lack; then the whole document.
    static func parse(_ data: Data, id: String, score: ScoreSelector) -> Result<Cell, LawFitFailure> {
        /// The fields every schema version keeps, to decide whether to read the rest.
        struct Probe: Decodable { var schema: Int?; var status: String? }
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: data) } catch {
            return .failure(LawFitFailure("not a cell document: \(error)"))
        }
        guard probe.schema == CellResult.schemaVersion else {
            return .failure(LawFitFailure("result schema \(probe.schema.map(String.init) ?? "missing"), this version reads \(CellResult.schemaVersion)"))
        }
        if let status = probe.status, status != "done" { return .failure(LawFitFailure("status \(status)")) }
        let doc: CellResult
        do { doc = try JSONDecoder().decode(CellResult.self, from: data) } catch {
            return .failure(LawFitFailure("not a cell document: \(error)"))
        }
        var curve: [CurvePoint] = []
        var problems = 0
        for p in doc.curve {
            problems = max(problems, score.kind == "solved" ? (p.multiTurn?.problems ?? 0) : problemCount(of: p.groups, score))
            let (s, se) = score.kind == "solved" ? solvedWithin(p.multiTurn, turns: score.k) : valueAndSE(of: p.groups, score)
            let c = p.compute.total
            if s.isFinite, c.isFinite, c >= 0 {
                curve.append(CurvePoint(compute: c, rollouts: Double(p.compute.rollouts), score: s, se: se))
            }
        }
        guard !curve.isEmpty else { return .failure(LawFitFailure("no evaluation point has \(score)")) }
        curve.sort { $0.compute < $1.compute }
        let fpr = doc.compute.rollouts > 0 ? doc.compute.total / Double(doc.compute.rollouts) : .nan
        return .success(Cell(
            id: id, method: doc.config.methodLabel, taskMix: doc.config.lawGroupLabel, parameters: Double(doc.baseParameters),
            rolloutsPerProblem: doc.config.rolloutsPerProblem, problemsPerBatch: doc.config.problemsPerBatch,
            seed: doc.config.seed, curve: curve, flopsPerRollout: fpr, numerics: doc.numerics,
            settings: CellSetting.values(of: doc.config), budget: doc.config.budgetFLOPs,
            scheduleDependsOnBudget: doc.config.scheduleDependsOnBudget, wallSeconds: doc.wallSeconds, evalProblems: problems))
    }

    /// Problems behind the selected group's score (summed over families; `refProblems` for
    /// p_ref/logp_ref).
    static func problemCount(of groups: [GroupMetrics], _ s: ScoreSelector) -> Int {
        groups.filter { $0.group == s.group }.reduce(0) { $0 + (s.kind.hasSuffix("_ref") ? ($1.refProblems ?? 0) : $1.problems) }
    }

    /// Multi-turn episodes solved within `turns` turns, and its SE (NaN when the point has no
    /// multi-turn evaluation of that many turns).
    static func solvedWithin(_ m: MultiTurnMetrics?, turns: Int) -> (value: Double, se: Double) {
        guard let m, turns <= m.solvedWithin.count else { return (.nan, .nan) }
        return (m.solvedWithin[turns - 1], m.solvedWithinSE[turns - 1] ?? .nan)
    }

    /// The selected metric of the selected group, averaged over families by problem count.
    static func value(of groups: [GroupMetrics], _ s: ScoreSelector) -> Double { valueAndSE(of: groups, s).value }

    /// The selected metric of the selected group averaged over families by problem count
    /// (`refProblems` for p_ref/logp_ref), and the standard error of that weighted mean,
    /// sqrt(Σ w_f² se_f²) / Σ w_f, with the same weights. The SE is NaN unless every family
    /// that contributes to the score has a finite, non-negative SE for the metric.
    static func valueAndSE(of groups: [GroupMetrics], _ s: ScoreSelector) -> (value: Double, se: Double) {
        var num = 0.0, den = 0.0, varSum = 0.0, seKnown = true
        let key = ["avg", "best", "worst"].contains(s.kind) ? "\(s.kind)@\(s.k)" : s.kind
        for g in groups where g.group == s.group {
            let v: Double?, weight: Int
            switch s.kind {
            case "p_ref": (v, weight) = (g.pRef, g.refProblems ?? 0)
            case "logp_ref": (v, weight) = (g.logpRef, g.refProblems ?? 0)
            case "greedy": (v, weight) = (g.greedy, g.problems)
            case "avg": (v, weight) = (g.avg["\(s.k)"], g.problems)
            case "best": (v, weight) = (g.best["\(s.k)"], g.problems)
            default: (v, weight) = (g.worst["\(s.k)"], g.problems)
            }
            guard let v, v.isFinite, weight > 0 else { continue }
            let w = Double(weight)
            num += w * v; den += w
            if let e = g.se?[key], e.isFinite, e >= 0 { varSum += w * w * e * e } else { seKnown = false }
        }
        guard den > 0 else { return (.nan, .nan) }
        return (num / den, seKnown ? varSum.squareRoot() / den : .nan)
    }
}
