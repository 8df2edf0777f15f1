import Foundation
import ResultSchema
import RLCommon

/// Tidy long tables of a result store's cell documents (`rlscale export`): `curves` (one row
/// per cell × evaluation point × family × group × metric [× k]), `windows` (one row per
/// training window) and `cells` (one row per cell), written as RFC 4180 CSV or JSON lines
/// with the same columns. The README lists every column.
///
/// `tables(from:)` is a pure function of the documents; `load(results:)` reads a store and
/// `write(_:format:to:)` writes the files atomically.
public enum Export {
    /// One field of a row. `null` is an empty CSV field and a JSON `null`.
    public enum Value: Sendable, Equatable {
        case int(Int)
        case uint(UInt64)
        case double(Double)
        case string(String)
        case null

        /// A Double prints as Swift's shortest round-trip form ("0.25", "5000000000.0",
        /// "1e-05"), so parsing it back gives the document's bits. Non-finite values (which
        /// the cell encoder cannot write) print as nan/inf/-inf in CSV and null in JSON.
        static func number(_ x: Double) -> String {
            if x.isNaN { return "nan" }
            if x.isInfinite { return x > 0 ? "inf" : "-inf" }
            return String(describing: x)
        }

        /// The field's CSV text, before quoting.
        public var text: String {
            switch self {
            case .int(let i): String(i)
            case .uint(let u): String(u)
            case .double(let x): Self.number(x)
            case .string(let s): s
            case .null: ""
            }
        }

        /// The field as a JSON value.
        public var json: String {
            switch self {
            case .int(let i): return String(i)
            case .uint(let u): return String(u)
            case .double(let x): return x.isFinite ? Self.number(x) : "null"
            case .string(let s): return Self.jsonString(s)
            case .null: return "null"
            }
        }

        static func jsonString(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }

        init(_ x: Double?) { self = x.map { .double($0) } ?? .null }
        init(_ i: Int?) { self = i.map { .int($0) } ?? .null }
        init(_ s: String?) { self = s.map { .string($0) } ?? .null }
    }

    /// One table: a name (the file stem), its columns and its rows.
    public struct Table: Sendable {
        public var name: String
        public var columns: [String]
        public var rows: [[Value]]

        public init(name: String, columns: [String], rows: [[Value]] = []) {
            self.name = name; self.columns = columns; self.rows = rows
        }

        /// RFC 4180 CSV: a header row, then one line per row; a field holding a comma, a
        /// quote, CR or LF is quoted with its quotes doubled. Lines end in "\n", as in every
        /// CSV rlscale writes (RFC 4180 readers accept it).
        public func csv() -> String {
            var out = columns.map(Self.quote).joined(separator: ",") + "\n"
            for r in rows { out += r.map { Self.quote($0.text) }.joined(separator: ",") + "\n" }
            return out
        }

        /// One JSON object per row, keys in column order.
        public func jsonLines() -> String {
            var out = ""
            for r in rows {
                out += "{" + zip(columns, r).map { Value.jsonString($0) + ":" + $1.json }.joined(separator: ",") + "}\n"
            }
            return out
        }

        static func quote(_ s: String) -> String { CSVField.quote(s) }
    }

    public enum Format: String, CaseIterable, Sendable {
        case csv, jsonl
    }

    // MARK: columns

    public static let curveColumns = [
        "cell_id", "method", "task_mix", "base", "params_N", "n", "bp", "lr", "lag", "seed",
        "step", "compute_flops", "evaluation_flops", "rollouts", "generated_tokens", "wall_seconds",
        "family", "group", "metric", "k", "value", "se", "se_sampling", "problems",
    ]

    public static let windowColumns = [
        "cell_id", "first_step", "last_step", "mean_reward", "dead_zone_fraction", "dead_zone_flops_share",
        "no_gradient_fraction", "no_gradient_sampling_share", "no_gradient_training_share", "distilled_fraction",
        "teacher_divergence", "gold_reward", "hack_rate", "discarded_groups", "entropy", "clip_fraction", "response_length_tokens",
        "loss", "grad_norm",
    ]

    public static let cellColumns = [
        "cell_id", "status", "failure", "method", "task_mix", "base", "base_key", "params_N",
        // every CellConfig field (method above)
        "rollouts_per_problem", "problems_per_batch", "budget_flops", "learning_rate", "warmup_steps", "tasks",
        "max_difficulty", "min_difficulty", "curriculum", "train_bucket", "pool_size", "policy_lag", "kl_coef",
        "entropy_coef", "teacher", "divergence", "distill", "distill_on", "reward", "rm_size", "rm_labels", "rm_label_noise",
        "rm_ensemble", "turns", "feedback", "turn_credit", "seed", "eval_points", "eval_samples",
        "eval_problems_per_level", "eval_turns", "support_samples", "eval_kl", "eval_levels",
        // outcome
        "steps", "curve_points", "windows", "wall_seconds", "sampling_wall_seconds", "training_wall_seconds",
        "evaluation_wall_seconds", "other_wall_seconds",
        // the ledger
        "sampling_flops", "training_flops", "teacher_flops", "reference_flops", "reward_model_flops", "evaluation_flops", "charged_flops",
        "rollouts", "generated_tokens",
        // provenance
        "schema", "numerics", "blas_core",
        // the fixed training pool
        "pool_key", "pool_distinct_problems", "pool_bucket", "pool_drawn_problems", "pool_epochs", "pool_candidates",
        "pool_build_flops",
        // the learned reward model (built like a base: not charged)
        "rm_key", "rm_held_out_accuracy", "rm_majority_accuracy", "rm_held_out_auc", "rm_sampling_flops", "rm_training_flops",
        // the support-expansion measurement (evaluation: not charged)
        "support_problems", "support_base_zero", "support_new", "support_expected_false_discoveries", "support_lost",
        "support_flops",
    ]

    /// The family and group of the rows that measure the policy at a point rather than a
    /// group of problems (`kl_to_base`, `entropy`, `support_expansion`).
    public static let pointFamily = "all"
    public static let pointGroup = "policy"
    /// The group of the multi-turn evaluation's rows (`solved_within` with k = t turns, …)
    /// and of the support measurement's (`base_pass`, `policy_pass` with k, `new_support`, …).
    public static let multiTurnGroup = "multi_turn"
    public static let supportGroup = "support"

    /// A learning rate as the document writes it (a Float: 1e-4, not 9.99999974e-05).
    static func rate(_ x: Float) -> Value { .double(Double(String(describing: x)) ?? Double(x)) }

    // MARK: tables

    /// The three tables (`curves`, `windows`, `cells`) of `documents`, rows sorted by cell id,
    /// then step, family, group, metric and k (curves) or first step (windows).
    public static func tables(from documents: [(id: String, result: CellResult)]) -> [Table] {
        let docs = documents.enumerated().sorted { ($0.element.id, $0.offset) < ($1.element.id, $1.offset) }.map(\.element)
        var curves = Table(name: "curves", columns: curveColumns)
        var windows = Table(name: "windows", columns: windowColumns)
        var cells = Table(name: "cells", columns: cellColumns)
        for (id, r) in docs {
            curves.rows += curveRows(id: id, r)
            windows.rows += r.windows.enumerated()
                .sorted { ($0.element.firstStep, $0.offset) < ($1.element.firstStep, $1.offset) }
                .map { windowRow(id: id, $0.element) }
            cells.rows.append(cellRow(id: id, r))
        }
        return [curves, windows, cells]
    }

    static func curveRows(id: String, _ r: CellResult) -> [[Value]] {
        let c = r.config
        let cell: [Value] = [
            .string(id), .string(c.method), .string(c.lawGroupLabel), .string(r.baseName), .int(r.baseParameters),
            .int(c.rolloutsPerProblem), .int(c.problemsPerBatch), rate(c.learningRate), .int(c.policyLag), .uint(c.seed),
        ]
        struct Row { var step: Int; var point: Int; var family: String; var group: String; var metric: String; var k: Int?; var fields: [Value] }
        var rows: [Row] = []
        for (pi, p) in r.curve.enumerated() {
            let point: [Value] = [
                .int(p.step), .double(p.compute.total), .double(p.compute.evaluation), .int(p.compute.rollouts),
                .int(p.compute.generatedTokens), .double(p.wallSeconds),
            ]
            func add(_ family: String, _ group: String, _ metric: String, _ k: Int?, _ value: Double, se: Double?, seSampling: Double?, problems: Int?) {
                rows.append(Row(
                    step: p.step, point: pi, family: family, group: group, metric: metric, k: k,
                    fields: cell + point + [
                        .string(family), .string(group), .string(metric), Value(k), .double(value), Value(se), Value(seSampling),
                        Value(problems),
                    ]))
            }
            for g in p.groups {
                let se = g.se ?? [:], ses = g.seSampling ?? [:]
                // A group of reference problems only has no sampled measurement (greedy stays 0).
                if g.problems > 0 {
                    add(g.family, g.group, "greedy", nil, g.greedy, se: se["greedy"], seSampling: ses["greedy"], problems: g.problems)
                }
                for (name, values) in [("avg", g.avg), ("best", g.best), ("worst", g.worst)] {
                    for (key, v) in values {
                        let label = "\(name)@\(key)"
                        add(g.family, g.group, name, Int(key), v, se: se[label], seSampling: ses[label], problems: g.problems)
                    }
                }
                if let v = g.pRef { add(g.family, g.group, "p_ref", nil, v, se: se["p_ref"], seSampling: ses["p_ref"], problems: g.refProblems) }
                if let v = g.logpRef {
                    add(g.family, g.group, "logp_ref", nil, v, se: se["logp_ref"], seSampling: ses["logp_ref"], problems: g.refProblems)
                }
            }
            add(pointFamily, pointGroup, "kl_to_base", nil, p.klToBase, se: nil, seSampling: nil, problems: nil)
            add(pointFamily, pointGroup, "entropy", nil, p.entropy, se: nil, seSampling: nil, problems: nil)
            add(pointFamily, pointGroup, "support_expansion", nil, Double(p.supportExpansion), se: nil, seSampling: nil, problems: p.baseUnsolved)
            if let t = p.teacher {
                add(pointFamily, pointGroup, "teacher_divergence", nil, t.divergence, se: nil, seSampling: nil, problems: nil)
                add(pointFamily, pointGroup, "teacher_uplift", nil, t.uplift.uplift, se: t.uplift.se, seSampling: nil, problems: t.uplift.problems)
                add(pointFamily, pointGroup, "distilled_fraction", nil, t.distilledFraction, se: nil, seSampling: nil, problems: nil)
                if let d = t.trainingDivergence {
                    add(pointFamily, pointGroup, "training_teacher_divergence", nil, d, se: nil, seSampling: nil, problems: nil)
                }
            }
            if let r = p.reward {
                add(pointFamily, pointGroup, "proxy_reward", nil, r.proxy, se: r.proxySE, seSampling: nil, problems: nil)
                add(pointFamily, pointGroup, "gold_reward", nil, r.gold, se: r.goldSE, seSampling: nil, problems: nil)
                add(pointFamily, pointGroup, "hack_rate", nil, r.hackRate, se: r.hackRateSE, seSampling: nil, problems: nil)
                add(pointFamily, pointGroup, "sequence_kl", nil, r.sequenceKL, se: r.sequenceKLSE, seSampling: nil, problems: nil)
                add(pointFamily, pointGroup, "d", nil, r.d, se: nil, seSampling: nil, problems: nil)
            }
            if let m = p.multiTurn {
                for (t, v) in m.solvedWithin.enumerated() {
                    add(pointFamily, multiTurnGroup, "solved_within", t + 1, v, se: m.solvedWithinSE[t], seSampling: nil, problems: m.problems)
                }
                add(pointFamily, multiTurnGroup, "mean_turns", nil, m.meanTurns, se: m.meanTurnsSE, seSampling: nil, problems: m.problems)
                if let v = m.repeatShare {
                    add(pointFamily, multiTurnGroup, "repeat_share", nil, v, se: m.repeatShareSE, seSampling: nil, problems: m.problems)
                }
                add(pointFamily, multiTurnGroup, "tokens_per_episode", nil, m.tokensPerEpisode, se: nil, seSampling: nil, problems: m.problems)
                add(pointFamily, multiTurnGroup, "flops_per_episode", nil, m.flopsPerEpisode, se: nil, seSampling: nil, problems: m.problems)
            }
            // The support measurement: the base's pass@k on the first point, the policy's on the last.
            if let s = r.support, pi == 0 || pi == r.curve.count - 1 {
                let who = pi == 0 ? "base_pass" : "policy_pass"
                for c in s.passAtK {
                    add(pointFamily, supportGroup, who, c.k, pi == 0 ? c.base : c.policy, se: pi == 0 ? c.baseSE : c.policySE,
                        seSampling: nil, problems: s.problems.count)
                }
                if pi == r.curve.count - 1 {
                    add(pointFamily, supportGroup, "new_support", nil, Double(s.newSupport), se: nil, seSampling: nil, problems: s.baseZero)
                    add(pointFamily, supportGroup, "expected_false_discoveries", nil, s.expectedFalseDiscoveries, se: nil, seSampling: nil,
                        problems: s.baseZero)
                    add(pointFamily, supportGroup, "lost_support", nil, Double(s.lostSupport), se: nil, seSampling: nil, problems: s.problems.count)
                }
            }
        }
        rows.sort {
            ($0.step, $0.family, $0.group, $0.metric, $0.k ?? -1, $0.point) < ($1.step, $1.family, $1.group, $1.metric, $1.k ?? -1, $1.point)
        }
        return rows.map(\.fields)
    }

    static func windowRow(id: String, _ w: StepWindow) -> [Value] {
        [
            .string(id), .int(w.firstStep), .int(w.lastStep), .double(w.meanReward), .double(w.deadZoneFraction),
            .double(w.deadZoneFLOPsShare), Value(w.noGradientFraction), Value(w.noGradientSamplingShare),
            Value(w.noGradientTrainingShare), Value(w.distilledFraction), Value(w.teacherDivergence),
            Value(w.goldReward), Value(w.hackRate), .int(w.discardedGroups), .double(w.entropy), .double(w.clipFraction),
            .double(w.responseLength), .double(w.loss), .double(w.gradNorm),
        ]
    }

    static func cellRow(id: String, _ r: CellResult) -> [Value] {
        let c = r.config, l = r.compute, wt = r.wallTime, pool = r.pool
        return [
            .string(id), .string(r.status), Value(r.failure), .string(c.method), .string(c.lawGroupLabel), .string(r.baseName),
            .string(r.baseKey), .int(r.baseParameters),
            .int(c.rolloutsPerProblem), .int(c.problemsPerBatch), .double(c.budgetFLOPs), rate(c.learningRate),
            .int(c.warmupSteps), .string(c.tasks.canonicalLabel), Value(c.maxDifficulty), .int(c.minDifficulty),
            .string(c.curriculum.description), Value(c.trainBucket?.rawValue), Value(c.poolSize), .int(c.policyLag),
            .double(c.klCoef), .double(c.entropyCoef), .string(c.teacher.description), .string(c.divergence.description),
            .double(c.distill), .string(c.distillOn.description), .string(c.rewardSource.description),
            Value(c.rewardModel?.size), Value(c.rewardModel?.labels), Value(c.rewardModel?.labelNoise),
            Value(c.rewardModel?.ensemble.description), .int(c.episodeSpec.turns), .string(c.episodeSpec.feedback.description),
            .string(c.episodeSpec.credit.description), .uint(c.seed),
            .int(c.evalPoints), .int(c.evalSamples), .int(c.evalProblemsPerLevel), .int(c.evaluationTurns), Value(c.supportSamples),
            .string(c.measuresRewardDiagnostics ? "true" : "false"), .string(c.evaluationLevels.rawValue),
            .int(r.steps), .int(r.curve.count), .int(r.windows.count), .double(r.wallSeconds), Value(wt?.sampling),
            Value(wt?.training), Value(wt?.evaluation), Value(wt?.other),
            .double(l.sampling), .double(l.training), .double(l.teacher), .double(l.reference), .double(l.rewardModel),
            .double(l.evaluation),
            .double(l.total), .int(l.rollouts), .int(l.generatedTokens),
            .int(r.schema), Value(r.numerics), Value(r.blasCore),
            Value(pool?.key), Value(pool?.size), Value(pool?.bucket?.rawValue), Value(pool?.drawn), Value(pool?.epochs),
            Value(pool?.candidates), Value(pool?.buildFLOPs),
            Value(r.rewardModel?.key), Value(r.rewardModel?.heldOutAccuracy), Value(r.rewardModel?.majorityAccuracy),
            Value(r.rewardModel?.heldOutAUC), Value(r.rewardModel?.samplingFLOPs), Value(r.rewardModel?.trainingFLOPs),
            Value(r.support?.problems.count), Value(r.support?.baseZero), Value(r.support?.newSupport),
            Value(r.support?.expectedFalseDiscoveries), Value(r.support?.lostSupport), Value(r.support?.flops),
        ]
    }

    // MARK: reading and writing

    /// The usable documents of a store and the ones left out, with why.
    public struct Loaded: Sendable {
        public var documents: [(id: String, result: CellResult)]
        public var skipped: [(path: String, reason: String)]
    }

    /// Reads every `RESULTS/cells/*.json`, in id order. A document that cannot be used
    /// (unreadable, truncated, not a cell document, another result schema: the store's own
    /// check, `ResultStore.cellProblem`) is skipped with its reason; a folder without
    /// `cells/` is not a result store.
    public static func load(results: String) throws(GridRunner.RunError) -> Loaded {
        let fm = FileManager.default
        let url = URL(fileURLWithPath: results).standardizedFileURL
        let store = ResultStore(root: url.deletingLastPathComponent().path, grid: url.lastPathComponent)
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: store.cellsDir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .io("\(results) is not a result store: it has no cells/ folder (`rlscale run GRID` writes results/<grid>/cells/)")
        }
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: store.cellsDir) } catch {
            throw .io("cannot list \(store.cellsDir): \(error.localizedDescription)")
        }
        var out = Loaded(documents: [], skipped: [])
        for name in names.sorted() where name.hasSuffix(".json") && !name.hasPrefix(".") {
            let id = String(name.dropLast(5))
            if let problem = store.cellProblem(id) {
                out.skipped.append((store.cellPath(id), problem))
                continue
            }
            do { out.documents.append((id, try store.readCell(id))) } catch {
                out.skipped.append((store.cellPath(id), "unreadable: \(error.localizedDescription)"))
            }
        }
        return out
    }

    /// Writes each table as `<name>.csv` or `<name>.jsonl` in `directory` (created when
    /// missing), atomically; returns the paths written.
    @discardableResult
    public static func write(_ tables: [Table], format: Format, to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var paths: [String] = []
        for t in tables {
            let path = (directory as NSString).appendingPathComponent("\(t.name).\(format.rawValue)")
            let text = format == .csv ? t.csv() : t.jsonLines()
            try AtomicFile.write(Data(text.utf8), to: path)
            paths.append(path)
        }
        return paths
    }
}
