import Foundation
import Grid
import ResultSchema
import RLCommon
import Tasks
import Testing

/// `rlscale export`: the tables read back (with a CSV reader of this file's own, and as
/// JSON lines) give exactly the documents' numbers, every row accounted for.
@Suite struct ExportTests {
    // MARK: a CSV reader independent of the exporter (RFC 4180: quoted fields, doubled quotes)

    static func parseCSV(_ text: String) -> [[String]] {
        var records: [[String]] = [], record: [String] = [], field = ""
        var inQuotes = false, any = false
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { inQuotes = false }
                } else {
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"": inQuotes = true; any = true
            case ",": record.append(field); field = ""; any = true
            case "\r": break
            case "\n":
                if any || !field.isEmpty { record.append(field); records.append(record) }
                record = []; field = ""; any = false
            default: field.unicodeScalars.append(c); any = true
            }
        }
        if any || !field.isEmpty { record.append(field); records.append(record) }
        return records
    }

    /// A CSV file as rows keyed by column name (every row must have the header's width).
    static func readCSV(_ path: String) throws -> (header: [String], rows: [[String: String]]) {
        let records = parseCSV(try String(contentsOfFile: path, encoding: .utf8))
        let header = try #require(records.first)
        var rows: [[String: String]] = []
        for (i, r) in records.dropFirst().enumerated() {
            #expect(r.count == header.count, "\(path) row \(i + 2): \(r.count) fields, header \(header.count)")
            rows.append(Dictionary(uniqueKeysWithValues: zip(header, r)))
        }
        return (header, rows)
    }

    // MARK: documents

    static func group(_ family: String, _ group: String, problems: Int, base: Double, ses: Bool, ref: Bool) -> GroupMetrics {
        var g = GroupMetrics(
            family: family, group: group, problems: problems, greedy: problems > 0 ? base : 0,
            avg: problems > 0 ? ["1": base + 0.01, "4": base + 0.02] : [:], best: problems > 0 ? ["4": base + 0.3] : [:],
            worst: problems > 0 ? ["4": base / 3] : [:])
        if ses {
            g.se = ["greedy": 0.011, "avg@1": 0.012, "avg@4": 0.0125, "best@4": 0.013, "worst@4": 0.014, "p_ref": 0.001, "logp_ref": 0.05]
            g.seSampling = ["avg@1": 0.0061, "avg@4": 0.0062, "best@4": 0.0063, "worst@4": 0.0064]
        }
        if ref {
            g.pRef = base / 7
            g.logpRef = -3.25 - base
            g.refProblems = problems + 5
        }
        return g
    }

    static func point(_ step: Int, _ scale: Double) -> EvalPoint {
        var l = ComputeLedger()
        l.sampling = 1.25e9 * scale; l.training = 3.5e9 * scale; l.teacher = 1e8 * scale; l.reference = 2e8 * scale
        l.evaluation = 7.75e8 + scale; l.rollouts = Int(640 * scale); l.generatedTokens = Int(6400 * scale)
        return EvalPoint(
            step: step, compute: l, wallSeconds: 0.5 + scale,
            groups: [
                group("sort", "train_dist", problems: 12, base: 0.4 + scale / 10, ses: true, ref: true),
                group("mul", "d2", problems: 4, base: 0.1 + scale / 20, ses: false, ref: false),
                group("mul", "unsolved", problems: 0, base: 0.2, ses: false, ref: true),  // reference problems only
                group("sort", "all", problems: 20, base: 1.0 / 3.0 + scale, ses: true, ref: false),
            ],
            supportExpansion: 3 + step, baseUnsolved: 17, klToBase: 0.0123 * scale, entropy: 0.75 - scale / 100)
    }

    static func documents() throws -> [String: CellResult] {
        var ledger = ComputeLedger()
        ledger.sampling = 2.5e9; ledger.training = 7e9; ledger.teacher = 2e8; ledger.reference = 4e8; ledger.evaluation = 1.55e9
        ledger.rollouts = 1280; ledger.generatedTokens = 12800
        let pooled = CellConfig(
            method: "opsd", rolloutsPerProblem: 4, problemsPerBatch: 8, budgetFLOPs: 1e10, learningRate: 3e-4, warmupSteps: 5,
            tasks: try TaskMixture.parse("sort:1,mul:0.5"), maxDifficulty: 3, curriculum: .passRate(low: 0.2, high: 0.8),
            trainBucket: .easy, poolSize: 64, policyLag: 2, klCoef: 0.05, entropyCoef: 0.001, teacher: .ema(rate: 0.05),
            divergence: .full(.jsd(beta: 0.5)), distill: 0.5, distillOn: .confident(0.9),
            seed: 7)
        var a = CellResult(
            config: pooled, baseKey: "abc123", baseName: "s", baseParameters: 25472, status: "done", steps: 20,
            curve: [point(0, 0), point(10, 1), point(20, 2)],
            windows: [
                StepWindow(
                    firstStep: 10, lastStep: 19, meanReward: 0.625, deadZoneFraction: 0.25, deadZoneFLOPsShare: 0.3125,
                    noGradientFraction: 0.125, noGradientSamplingShare: 0.15, noGradientTrainingShare: 0.05, discardedGroups: 3,
                    entropy: 0.41, clipFraction: 0.02, responseLength: 11.5, loss: -0.0123, gradNorm: 2.75),
                StepWindow(
                    firstStep: 0, lastStep: 9, meanReward: 0.5, deadZoneFraction: 1.0 / 3.0, deadZoneFLOPsShare: 0.3,
                    discardedGroups: 0, entropy: 0.5, clipFraction: 0, responseLength: 12, loss: 0.0456, gradNorm: 3.5),
            ],
            compute: ledger, wallSeconds: 12.5, blasCore: "SkylakeX",
            pool: PoolUse(key: "pool-k", size: 64, bucket: .easy, drawn: 160, epochs: 2.5, candidates: 300, buildFLOPs: 4.5e9))
        var wt = WallTime()
        wt.sampling = 3; wt.training = 7.5; wt.evaluation = 1.5; wt.other = 0.5
        a.wallTime = wt
        let failed = CellResult.failed(
            config: CellConfig(method: "grpo", budgetFLOPs: 5e9, tasks: try TaskMixture.parse("sort:1")), baseKey: "abc123",
            baseName: "s", baseParameters: 25472, reason: "worker crashed, twice: \"signal 9\"\nlast line of its log")
        var older = CellResult(
            config: CellConfig(method: "grpo", rolloutsPerProblem: 2, budgetFLOPs: 5e9, learningRate: 1e-4, tasks: try TaskMixture.parse("mul:1")),
            baseKey: "def456", baseName: "xs", baseParameters: 8000, status: "done", steps: 10, curve: [point(0, 0), point(10, 1)],
            windows: [], compute: ledger, wallSeconds: 3)
        older.numerics = nil  // documents written before the numerics version existed
        // Ids out of order, one all digits (a string, not a number, in every table).
        return ["b-failed": failed, "a-pooled": a, "0123": older]
    }

    /// A store holding `documents()`, a truncated document and one of a foreign schema.
    static func store(_ label: String) throws -> (dir: String, docs: [String: CellResult]) {
        let dir = CLI.tempDir(label) + "/g"
        try FileManager.default.createDirectory(atPath: dir + "/cells", withIntermediateDirectories: true)
        let docs = try documents()
        for (id, r) in docs { try CellResult.encoder.encode(r).write(to: URL(fileURLWithPath: "\(dir)/cells/\(id).json")) }
        let good = try CellResult.encoder.encode(docs["a-pooled"]!)
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir + "/cells/truncated.json"))
        var foreign = try #require(try JSONSerialization.jsonObject(with: good) as? [String: Any])
        foreign["schema"] = 99
        try JSONSerialization.data(withJSONObject: foreign).write(to: URL(fileURLWithPath: dir + "/cells/foreign.json"))
        return (dir, docs)
    }

    // MARK: the expected rows, computed here from the documents

    /// Every curve row a document must give: key "id|step|family|group|metric|k" → the
    /// expected value, se, se_sampling and problems, plus the point's columns.
    struct CurveRow { var value: Double; var se: Double?; var seSampling: Double?; var problems: Int?; var point: EvalPoint; var id: String }

    static func expectedCurves(_ docs: [String: CellResult]) -> [String: CurveRow] {
        var out: [String: CurveRow] = [:]
        for (id, r) in docs {
            for p in r.curve {
                func put(_ f: String, _ g: String, _ m: String, _ k: String, _ v: Double, _ se: Double?, _ ses: Double?, _ n: Int?) {
                    let key = "\(id)|\(p.step)|\(f)|\(g)|\(m)|\(k)"
                    #expect(out[key] == nil, "duplicate \(key)")
                    out[key] = CurveRow(value: v, se: se, seSampling: ses, problems: n, point: p, id: id)
                }
                for g in p.groups {
                    if g.problems > 0 { put(g.family, g.group, "greedy", "", g.greedy, g.se?["greedy"], g.seSampling?["greedy"], g.problems) }
                    for (m, d) in [("avg", g.avg), ("best", g.best), ("worst", g.worst)] {
                        for (k, v) in d { put(g.family, g.group, m, k, v, g.se?["\(m)@\(k)"], g.seSampling?["\(m)@\(k)"], g.problems) }
                    }
                    if let v = g.pRef { put(g.family, g.group, "p_ref", "", v, g.se?["p_ref"], g.seSampling?["p_ref"], g.refProblems) }
                    if let v = g.logpRef { put(g.family, g.group, "logp_ref", "", v, g.se?["logp_ref"], g.seSampling?["logp_ref"], g.refProblems) }
                }
                put("all", "policy", "kl_to_base", "", p.klToBase, nil, nil, nil)
                put("all", "policy", "entropy", "", p.entropy, nil, nil, nil)
                put("all", "policy", "support_expansion", "", Double(p.supportExpansion), nil, nil, p.baseUnsolved)
                if let t = p.teacher {
                    put("all", "policy", "teacher_divergence", "", t.divergence, nil, nil, nil)
                    put("all", "policy", "teacher_uplift", "", t.uplift.uplift, t.uplift.se, nil, t.uplift.problems)
                    put("all", "policy", "distilled_fraction", "", t.distilledFraction, nil, nil, nil)
                    if let d = t.trainingDivergence { put("all", "policy", "training_teacher_divergence", "", d, nil, nil, nil) }
                }
                if let w = p.reward {
                    put("all", "policy", "proxy_reward", "", w.proxy, w.proxySE, nil, nil)
                    put("all", "policy", "gold_reward", "", w.gold, w.goldSE, nil, nil)
                    put("all", "policy", "hack_rate", "", w.hackRate, w.hackRateSE, nil, nil)
                    put("all", "policy", "sequence_kl", "", w.sequenceKL, w.sequenceKLSE, nil, nil)
                    put("all", "policy", "d", "", w.d, nil, nil, nil)
                }
            }
        }
        return out
    }

    /// `field` holds `expected` (nil: empty), compared as numbers.
    static func number(_ row: [String: String], _ column: String, _ expected: Double?, _ context: String) {
        guard let field = row[column] else {
            Issue.record("\(context): no column \(column)")
            return
        }
        if let expected {
            #expect(Double(field) == expected, "\(context) \(column): '\(field)' != \(expected)")
        } else {
            #expect(field.isEmpty, "\(context) \(column): '\(field)' should be empty")
        }
    }

    static func number(_ row: [String: String], _ column: String, _ expected: Int?, _ context: String) {
        #expect(row[column] == expected.map(String.init) ?? "", "\(context) \(column): '\(row[column] ?? "no column")' != \(String(describing: expected))")
    }

    /// A JSON scalar, decoded by JSONDecoder (whose number parsing is correctly rounded).
    enum JSONField: Decodable, Equatable {
        case null, number(Double), string(String)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null } else if let s = try? c.decode(String.self) { self = .string(s) } else { self = .number(try c.decode(Double.self)) }
        }
    }

    // MARK: tests

    /// Checks the CSV tables in `dir` against `docs`; returns the parsed tables.
    @discardableResult
    static func checkCSV(_ dir: String, _ docs: [String: CellResult]) throws -> [String: (header: [String], rows: [[String: String]])] {
        let curves = try readCSV(dir + "/curves.csv"), windows = try readCSV(dir + "/windows.csv"), cells = try readCSV(dir + "/cells.csv")
        #expect(curves.header == Export.curveColumns && windows.header == Export.windowColumns && cells.header == Export.cellColumns)

        // curves: every expected row exactly once, nothing else, sorted.
        let expected = expectedCurves(docs)
        #expect(curves.rows.count == expected.count)
        var seen = Set<String>()
        var previous: (String, Int, String, String, String, Int)? = nil
        for row in curves.rows {
            let key = ["cell_id", "step", "family", "group", "metric", "k"].map { row[$0] ?? "?" }.joined(separator: "|")
            #expect(seen.insert(key).inserted, "duplicate row \(key)")
            guard let e = expected[key] else {
                Issue.record("unexpected curve row \(key)")
                continue
            }
            let sortKey = (row["cell_id"]!, Int(row["step"]!) ?? -9, row["family"]!, row["group"]!, row["metric"]!, Int(row["k"]!) ?? -1)
            if let previous { #expect(previous <= sortKey, "rows out of order at \(key)") }
            previous = sortKey
            let r = docs[e.id]!, c = r.config
            number(row, "value", e.value, key)
            number(row, "se", e.se, key)
            number(row, "se_sampling", e.seSampling, key)
            number(row, "problems", e.problems, key)
            number(row, "compute_flops", e.point.compute.total, key)
            number(row, "evaluation_flops", e.point.compute.evaluation, key)
            number(row, "rollouts", e.point.compute.rollouts, key)
            number(row, "generated_tokens", e.point.compute.generatedTokens, key)
            number(row, "wall_seconds", e.point.wallSeconds, key)
            number(row, "params_N", r.baseParameters, key)
            number(row, "n", c.rolloutsPerProblem, key)
            number(row, "bp", c.problemsPerBatch, key)
            number(row, "lag", c.policyLag, key)
            #expect(row["seed"] == String(c.seed))
            #expect(Float(row["lr"]!) == c.learningRate, "\(key) lr \(row["lr"]!)")
            #expect(row["method"] == c.method && row["task_mix"] == c.lawGroupLabel && row["base"] == r.baseName, "\(key)")
        }
        #expect(seen.count == expected.count)

        // windows: one row per window, in first-step order within each cell.
        #expect(windows.rows.count == docs.values.reduce(0) { $0 + $1.windows.count })
        for (id, r) in docs {
            let rows = windows.rows.filter { $0["cell_id"] == id }
            let ws = r.windows.sorted { $0.firstStep < $1.firstStep }
            #expect(rows.count == ws.count, "\(id)")
            for (row, w) in zip(rows, ws) {
                let ctx = "\(id) window \(w.firstStep)"
                number(row, "first_step", w.firstStep, ctx); number(row, "last_step", w.lastStep, ctx)
                number(row, "mean_reward", w.meanReward, ctx); number(row, "dead_zone_fraction", w.deadZoneFraction, ctx)
                number(row, "dead_zone_flops_share", w.deadZoneFLOPsShare, ctx)
                number(row, "no_gradient_fraction", w.noGradientFraction, ctx)
                number(row, "no_gradient_sampling_share", w.noGradientSamplingShare, ctx)
                number(row, "no_gradient_training_share", w.noGradientTrainingShare, ctx)
                number(row, "discarded_groups", w.discardedGroups, ctx); number(row, "entropy", w.entropy, ctx)
                number(row, "clip_fraction", w.clipFraction, ctx); number(row, "response_length_tokens", w.responseLength, ctx)
                number(row, "loss", w.loss, ctx); number(row, "grad_norm", w.gradNorm, ctx)
                number(row, "gold_reward", w.goldReward, ctx); number(row, "hack_rate", w.hackRate, ctx)
            }
        }

        // cells: one row per document, sorted by id, with its config, ledger and outcome.
        #expect(cells.rows.map { $0["cell_id"]! } == docs.keys.sorted())
        for row in cells.rows {
            let id = row["cell_id"]!, r = docs[id]!, c = r.config, l = r.compute
            #expect(row["status"] == r.status && row["failure"] == (r.failure ?? ""), "\(id)")
            #expect(row["method"] == c.method && row["task_mix"] == c.lawGroupLabel && row["tasks"] == c.tasks.canonicalLabel)
            #expect(row["base"] == r.baseName && row["base_key"] == r.baseKey && row["curriculum"] == c.curriculum.description)
            #expect(row["train_bucket"] == (c.trainBucket?.rawValue ?? "") && row["blas_core"] == (r.blasCore ?? ""))
            #expect(Float(row["learning_rate"]!) == c.learningRate)
            number(row, "params_N", r.baseParameters, id); number(row, "rollouts_per_problem", c.rolloutsPerProblem, id)
            number(row, "problems_per_batch", c.problemsPerBatch, id); number(row, "budget_flops", c.budgetFLOPs, id)
            number(row, "warmup_steps", c.warmupSteps, id); number(row, "max_difficulty", c.maxDifficulty, id)
            number(row, "min_difficulty", c.minDifficulty, id); number(row, "pool_size", c.poolSize, id)
            number(row, "policy_lag", c.policyLag, id); number(row, "kl_coef", c.klCoef, id)
            number(row, "entropy_coef", c.entropyCoef, id); number(row, "distill", c.distill, id)
            #expect(row["teacher"] == c.teacher.description && row["divergence"] == c.divergence.description)
            #expect(row["distill_on"] == c.distillOn.description); #expect(row["seed"] == String(c.seed))
            #expect(row["reward"] == c.rewardSource.description && row["rm_size"] == (c.rewardModel?.size ?? ""))
            number(row, "rm_labels", c.rewardModel?.labels, id); number(row, "rm_label_noise", c.rewardModel?.labelNoise, id)
            number(row, "reward_model_flops", l.rewardModel, id)
            #expect(row["rm_key"] == (r.rewardModel?.key ?? "")); number(row, "rm_held_out_auc", r.rewardModel?.heldOutAUC, id)
            number(row, "eval_points", c.evalPoints, id); number(row, "eval_samples", c.evalSamples, id)
            number(row, "eval_problems_per_level", c.evalProblemsPerLevel, id)
            number(row, "steps", r.steps, id); number(row, "curve_points", r.curve.count, id); number(row, "windows", r.windows.count, id)
            number(row, "wall_seconds", r.wallSeconds, id); number(row, "sampling_wall_seconds", r.wallTime?.sampling, id)
            number(row, "training_wall_seconds", r.wallTime?.training, id)
            number(row, "evaluation_wall_seconds", r.wallTime?.evaluation, id)
            number(row, "other_wall_seconds", r.wallTime?.other, id)
            number(row, "sampling_flops", l.sampling, id); number(row, "training_flops", l.training, id)
            number(row, "teacher_flops", l.teacher, id); number(row, "reference_flops", l.reference, id)
            number(row, "evaluation_flops", l.evaluation, id); number(row, "charged_flops", l.total, id)
            number(row, "rollouts", l.rollouts, id); number(row, "generated_tokens", l.generatedTokens, id)
            number(row, "schema", r.schema, id); number(row, "numerics", r.numerics, id)
            #expect(row["pool_key"] == (r.pool?.key ?? "") && row["pool_bucket"] == (r.pool?.bucket?.rawValue ?? ""), "\(id)")
            number(row, "pool_distinct_problems", r.pool?.size, id); number(row, "pool_drawn_problems", r.pool?.drawn, id)
            number(row, "pool_epochs", r.pool?.epochs, id); number(row, "pool_candidates", r.pool?.candidates, id)
            number(row, "pool_build_flops", r.pool?.buildFLOPs, id)
        }
        return ["curves": curves, "windows": windows, "cells": cells]
    }

    @Test func csvAndJSONLinesRoundTripTheDocuments() throws {
        let (dir, docs) = try Self.store("export")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let loaded = try Export.load(results: dir)
        #expect(loaded.documents.map(\.id) == docs.keys.sorted())
        let skipped = Dictionary(uniqueKeysWithValues: loaded.skipped.map { (($0.path as NSString).lastPathComponent, $0.reason) })
        #expect(skipped.keys.sorted() == ["foreign.json", "truncated.json"])
        #expect(skipped["foreign.json"]?.hasPrefix("result schema 99") == true && skipped["truncated.json"]?.hasPrefix("not JSON") == true)

        let tables = Export.tables(from: loaded.documents)
        #expect(tables.map(\.name) == ["curves", "windows", "cells"])
        let csvDir = dir + "/out-csv"
        let paths = try Export.write(tables, format: .csv, to: csvDir)
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["curves.csv", "windows.csv", "cells.csv"])
        let csv = try Self.checkCSV(csvDir, docs)

        // The quoting case: a failure with a comma, quotes and a newline survives as one field.
        let cellsText = try String(contentsOfFile: csvDir + "/cells.csv", encoding: .utf8)
        #expect(cellsText.contains("\"worker crashed, twice: \"\"signal 9\"\"\nlast line of its log\""))
        #expect(csv["cells"]!.rows.first { $0["cell_id"] == "b-failed" }?["failure"] == docs["b-failed"]!.failure)
        // Absent values are empty, present ones printed to round-trip ("0.0001", not 9.99…e-05).
        let older = try #require(csv["cells"]!.rows.first { $0["cell_id"] == "0123" })
        #expect(older["numerics"] == "" && older["learning_rate"] == "0.0001" && older["pool_key"] == "")

        // JSON lines: the same rows with the same keys; null where the CSV field is empty,
        // numbers as numbers (the all-digit cell id stays a string). JSONSerialization
        // checks the structure; its number parser on Linux can miss the last bit
        // (0.16000000000000003 reads as …5), so bit equality is checked with JSONDecoder.
        let jsonDir = dir + "/out-jsonl"
        try Export.write(tables, format: .jsonl, to: jsonDir)
        for name in ["curves", "windows", "cells"] {
            let text = try String(contentsOfFile: "\(jsonDir)/\(name).jsonl", encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            let rows = csv[name]!.rows
            #expect(text.hasSuffix("\n") && lines.count == rows.count, "\(name)")
            for (line, row) in zip(lines, rows) {
                let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(name): \(line)")
                let exact = try JSONDecoder().decode([String: JSONField].self, from: Data(line.utf8))
                #expect(Set(obj.keys) == Set(csv[name]!.header) && Set(exact.keys) == Set(obj.keys), "\(name)")
                for (key, field) in row {
                    switch obj[key] {
                    case is NSNull: #expect(field.isEmpty && exact[key] == .null, "\(name) \(key): null, CSV '\(field)'")
                    case let s as String: #expect(s == field && exact[key] == .string(field), "\(name) \(key): \(s) != \(field)")
                    case let n as NSNumber:
                        let x = try #require(Double(field), "\(name) \(key): number \(n), CSV '\(field)'")
                        #expect(abs(n.doubleValue - x) <= 4 * x.ulp, "\(name) \(key): \(n) != \(field)")
                        #expect(exact[key] == .number(x), "\(name) \(key): \(String(describing: exact[key])) != \(field)")
                    default: Issue.record("\(name) \(key): \(String(describing: obj[key]))")
                    }
                }
                #expect(obj["cell_id"] is String)
            }
        }
    }

    /// The command: default output folder, a warning naming each skipped document, the
    /// runner's own documents read back, and a folder that is not a store named as such.
    @Test func theCommandExportsTheRunnersStore() throws {
        let (dir, docs) = try Self.store("export-cli")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let log = dir + "/../export.log"
        #expect(try CLI.run(["export", dir], log: log) == 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("warning: skipped \(dir)/cells/foreign.json: result schema 99"), "\(text)")
        #expect(text.contains("warning: skipped \(dir)/cells/truncated.json: not JSON"), "\(text)")
        try Self.checkCSV(dir + "/export", docs)
        #expect(try CLI.run(["export", dir, "--format", "jsonl", "--out", dir + "/j"], log: log) == 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/j/curves.jsonl"))

        // The tiny grid's documents, as the runner wrote them.
        let ref = try TinyGridReference.shared.get()
        let store = URL(fileURLWithPath: ref.gridFile).deletingLastPathComponent().path + "/tiny"
        var real: [String: CellResult] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: store + "/cells") where f.hasSuffix(".json") {
            real[String(f.dropLast(5))] = try JSONDecoder().decode(CellResult.self, from: Data(contentsOf: URL(fileURLWithPath: store + "/cells/" + f)))
        }
        #expect(real.count == 6)
        #expect(try CLI.run(["export", store, "--out", dir + "/tiny"], log: log) == 0)
        let tables = try Self.checkCSV(dir + "/tiny", real)
        #expect(tables["curves"]!.rows.contains { $0["group"] == "train_dist" && $0["metric"] == "avg" && $0["k"] == "4" })

        // The runs table: `fit --curves` of it writes the same laws.csv and allocation.csv as
        // `fit` of the store itself.
        #expect(try CLI.run(["export", store, "--format", "runs", "--out", dir + "/runs"], log: log) == 0)
        #expect(try CLI.run(["fit", store, "--out", dir + "/fit-store", "--bootstrap", "100"], log: log) == 0)
        #expect(try CLI.run(["fit", "--curves", dir + "/runs/runs.csv", "--out", dir + "/fit-curves", "--bootstrap", "100"], log: log) == 0)
        for f in ["laws.csv", "allocation.csv"] {
            let a = try String(contentsOfFile: dir + "/fit-store/" + f, encoding: .utf8)
            let b = try String(contentsOfFile: dir + "/fit-curves/" + f, encoding: .utf8)
            #expect(!a.isEmpty && a == b, "\(f)")
        }
        // A store without finished cells: the reason, and no usage banner.
        let unfinished = CLI.tempDir("fit-none")
        defer { try? FileManager.default.removeItem(atPath: unfinished) }
        try FileManager.default.createDirectory(atPath: unfinished + "/cells", withIntermediateDirectories: true)
        #expect(try CLI.run(["fit", unfinished], log: log) != 0)
        let fitLog = try String(contentsOfFile: log, encoding: .utf8)
        #expect(fitLog.contains("no finished cells in \(unfinished)/cells") && !fitLog.contains("Usage:"), "\(fitLog)")

        // Not a result store: the same message as fit's.
        let empty = CLI.tempDir("export-none")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(try CLI.run(["export", empty], log: log) != 0)
        let none = try String(contentsOfFile: log, encoding: .utf8)
        #expect(none.contains("\(empty) is not a result store: it has no cells/ folder"), "\(none)")
        #expect(!FileManager.default.fileExists(atPath: empty + "/export"))
    }
}
