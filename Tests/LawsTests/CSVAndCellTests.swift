import Foundation
import Laws
import RLCommon
import Testing

@Suite("CSV, cell documents and fit-csv")
struct CSVAndCellTests {
    @Test func csvRoundTrip() throws {
        let t = CSVTable(header: ["task_mix", "value", "status"],
                         rows: [["mul:1,sort:1", csvNumber(1e-300), "ok (a; b)"], ["add:1", csvNumber(.nan), "say \"hi\"\nthere"],
                                ["", csvNumber(-2.5e11), ""]])
        let text = t.render()
        #expect(text.hasPrefix("task_mix,value,status\n\"mul:1,sort:1\","))
        let back = try CSVTable.parse(text)
        #expect(back == t)
        let v = try back.numbers("value")
        #expect(v[0] == 1e-300 && v[1].isNaN && v[2] == -2.5e11)
        #expect(throws: LawError.self) { try back.numbers("missing") }
        #expect(throws: LawError.self) { try CSVTable.parse("a,b\n1\n") }
        #expect(throws: LawError.self) { try CSVTable.parse("a\n\"open\n") }
        // CRLF and a blank trailing line are accepted.
        let crlf = try CSVTable.parse("x,y\r\n1,2\r\n\r\n")
        #expect(crlf.rows == [["1", "2"]])
    }

    @Test func fitCSVRecoversKnownChinchilla() throws {
        let data = SyntheticChinchilla.make(seed: 31, noise: 0)
        var t = CSVTable(header: ["N", "D", "loss"])
        for i in 0..<data.count { t.rows.append([csvNumber(data.x[i]), csvNumber(data.x2![i]), csvNumber(data.y[i])]) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("laws-chin-\(getpid()).csv").path
        try t.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let table = try CSVTable.read(path: path)
        let e = try CSVFit.run(table, CSVFit.Request(form: try CSVFit.form(named: "chinchilla"), x: ["N", "D"], y: "loss",
                                                      bootstrap: BootstrapOptions(resamples: 20, seed: 1)))
        #expect(e.fit.isOK, "\(e.status)")
        for (i, v) in SyntheticChinchilla.truth.enumerated() { #expect(relClose(e.fit.values[i], v, 0.02), "\(i)") }
        for (i, iv) in e.intervals.enumerated() { #expect(iv.low <= e.fit.values[i] + 1e-9 && iv.high >= e.fit.values[i] - 1e-9) }
        let json = CSVFit.json(e)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(obj["form"] as? String == "chinchilla")
        #expect((obj["parameters"] as? [[String: Any]])?.count == 5)
        #expect(CSVFit.text(e).contains("alpha"))
        #expect(throws: LawError.self) { try CSVFit.run(table, CSVFit.Request(form: .chinchilla, x: ["N"], y: "loss")) }
        #expect(throws: LawError.self) { try CSVFit.form(named: "cubic") }
    }

    @Test func fitCSVScaleRLTakesR0FromZeroComputeRows() throws {
        var t = CSVTable(header: ["C", "score"], rows: [["0", "0.1"]])
        for c in logSpace(9, 13, 20) { t.rows.append([csvNumber(c), csvNumber(0.1 + 0.5 / (1 + pow(1e11 / c, 1.2)))]) }
        let e = try CSVFit.run(t, CSVFit.Request(form: .scaleRL, x: ["C"], y: "score", bootstrap: BootstrapOptions(resamples: 0)))
        #expect(e.fit.isOK)
        #expect(e.fit.value("R0") == 0.1)
        #expect(e.fit.fixed == ["R0"])
        #expect(relClose(e.fit.value("A"), 0.6, 1e-4))
        #expect(relClose(e.fit.value("C_mid"), 1e11, 1e-3))
    }

    /// A two-family cell document in rlscale's format (JSONEncoder's camelCase keys).
    static func cellJSON(status: String = "done", n: Int = 8, score mul: Double = 0.25) -> String {
        func group(_ fam: String, _ g: String, _ problems: Int, _ avg4: Double) -> String {
            """
            {"family":"\(fam)","group":"\(g)","problems":\(problems),"greedy":0.5,"avg":{"1":0.9,"4":\(avg4)},"best":{"4":0.7},"worst":{"4":0.01}}
            """
        }
        func point(_ step: Int, _ training: Double, _ rollouts: Int, _ m: Double, _ s: Double) -> String {
            """
            {"step":\(step),"compute":{"sampling":0,"training":\(training),"teacher":0,"reference":0,"evaluation":5,"rollouts":\(rollouts),"generatedTokens":0},
             "wallSeconds":1,"groups":[\(group("mul", "all", 30, m)),\(group("sort", "all", 10, s)),\(group("sort", "easy", 3, 0.9))],
             "supportExpansion":0,"baseUnsolved":1,"klToBase":0,"entropy":1}
            """
        }
        return """
        {"schema":2,"status":"\(status)","baseKey":"k","baseName":"s","baseParameters":25472,"steps":3,"wallSeconds":2,"windows":[],
         "config":{"method":"grpo","rolloutsPerProblem":\(n),"problemsPerBatch":4,"budgetFLOPs":1e9,"learningRate":5e-05,"warmupSteps":0,
                   "tasks":{"components":[{"family":"sort","weight":2},{"family":"mul","weight":1}]},"minDifficulty":1,
                   "curriculum":{"uniform":{}},"policyLag":0,"klCoef":0,"entropyCoef":0,"teacher":"base","divergence":"reverse_kl",
                   "distill":1,"distillOn":"all",
                   "seed":3,"evalPoints":2,"evalSamples":8,"evalProblemsPerLevel":4},
         "curve":[\(point(0, 0, 0, 0.1, 0.5)),\(point(3, 1e9, 200, mul, 0.75))],
         "compute":{"sampling":0,"training":1e9,"teacher":0,"reference":0,"evaluation":10,"rollouts":200,"generatedTokens":0}}
        """
    }

    @Test func loadsCellDocuments() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("laws-store-\(getpid())").path
        let cells = root + "/cells"
        try FileManager.default.createDirectory(atPath: cells, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data(Self.cellJSON().utf8).write(to: URL(fileURLWithPath: cells + "/c1.json"))
        try Data(Self.cellJSON(status: "failed").utf8).write(to: URL(fileURLWithPath: cells + "/c2.json"))
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: cells + "/c3.json"))
        var store = try CellStore.load(results: root, score: try ScoreSelector())
        #expect(store.grid == URL(fileURLWithPath: root).lastPathComponent)
        #expect(store.cells.count == 1)
        #expect(store.skipped.map(\.id) == ["c2", "c3"])
        let c = try #require(store.cells.first)
        #expect(c.id == "c1" && c.method == "grpo" && c.taskMix == "mul:1,sort:2")
        #expect(c.parameters == 25472 && c.rolloutsPerProblem == 8 && c.problemsPerBatch == 4 && c.seed == 3)
        #expect(c.curve.count == 2)
        // avg@4 of "all", weighted by problems: (30·0.25 + 10·0.75)/40.
        #expect(abs(c.curve[1].score - 0.375) < 1e-12)
        #expect(c.curve[1].compute == 1e9 && c.curve[1].rollouts == 200)
        #expect(c.flopsPerRollout == 1e9 / 200)
        // Another group and metric; a group no family has leaves the cell without points.
        store = try CellStore.load(results: root, score: try ScoreSelector(metric: "best@4", group: "easy"))
        #expect(abs((store.cells.first?.curve.first?.score ?? 0) - 0.7) < 1e-12)
        try Data("{\"grid\":\"quick\"}".utf8).write(to: URL(fileURLWithPath: root + "/manifest.json"))
        store = try CellStore.load(results: root, score: try ScoreSelector(metric: "greedy", group: "d9"))
        #expect(store.grid == "quick")
        #expect(store.cells.isEmpty)
        #expect(throws: LawError.self) { try ScoreSelector(metric: "avg4") }
        #expect(throws: LawError.self) { try CellStore.load(results: root + "/nope", score: try ScoreSelector()) }
    }

    /// The exact metrics are read from `pRef`/`logpRef`, weighted by `refProblems` (which
    /// may differ from the sampled `problems`).
    @Test func readsTheExactReferenceMetrics() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("laws-pref-\(getpid())").path
        try FileManager.default.createDirectory(atPath: root + "/cells", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var json = Self.cellJSON()
        json = json.replacingOccurrences(
            of: #"{"family":"mul","group":"all","problems":30,"#,
            with: #"{"family":"mul","group":"all","pRef":0.2,"logpRef":-2.0,"refProblems":60,"problems":30,"#)
        json = json.replacingOccurrences(
            of: #"{"family":"sort","group":"all","problems":10,"#,
            with: #"{"family":"sort","group":"all","pRef":0.5,"logpRef":-1.0,"refProblems":20,"problems":10,"#)
        try Data(json.utf8).write(to: URL(fileURLWithPath: root + "/cells/c1.json"))
        let p = try CellStore.load(results: root, score: try ScoreSelector(metric: "p_ref", group: "all"))
        // (60·0.2 + 20·0.5) / 80, at both evaluation points.
        #expect(p.cells.first?.curve.map(\.score) == [0.275, 0.275])
        let l = try CellStore.load(results: root, score: try ScoreSelector(metric: "logp_ref", group: "all"))
        #expect(abs((l.cells.first?.curve.first?.score ?? 0) - (-1.75)) < 1e-12)
        // A group without reference metrics gives no point.
        #expect(try CellStore.load(results: root, score: try ScoreSelector(metric: "p_ref", group: "easy")).cells.isEmpty)
    }
}
