import Foundation
import PolicyModel
import RLCommon
import ResultSchema
import Tasks

/// A fixed held-out evaluation set: `problemsPerLevel` distinct held-out problems per
/// family and difficulty, drawn from a seeded stream.
public struct EvalSet: Codable, Sendable {
    public var families: [String]
    public var problemsPerLevel: Int
    public var seed: UInt64
    public var problems: [Problem]

    public init(families: [any TaskFamily], problemsPerLevel: Int, seed: UInt64) {
        self.families = families.map(\.name)
        self.problemsPerLevel = problemsPerLevel
        self.seed = seed
        var out: [Problem] = []
        for f in families {
            var rng = SeededRNG(seed: seed).derived("eval/\(f.name)")
            for d in 1...f.maxDifficulty {
                var seen = Set<String>()
                var tries = 0
                while seen.count < problemsPerLevel && tries < 50 * problemsPerLevel {
                    tries += 1
                    let p = TaskFamilies.sample(f, difficulty: d, split: .heldOut, rng: &rng)
                    if seen.insert(p.text).inserted { out.append(p) }
                }
            }
        }
        problems = out
    }
}

/// Per-problem outcome of an evaluation.
public struct ProblemOutcome: Codable, Sendable, Hashable {
    /// Index into the eval set's problems.
    public var index: Int
    public var greedyCorrect: Bool
    /// Correct samples among `samples`.
    public var successes: Int
    public var samples: Int

    public init(index: Int, greedyCorrect: Bool, successes: Int, samples: Int) {
        self.index = index
        self.greedyCorrect = greedyCorrect
        self.successes = successes
        self.samples = samples
    }
}

/// What an evaluation spent.
public struct EvalCost: Codable, Sendable {
    public var forwardFLOPs: Double = 0
    public var processedTokens: Int = 0
    public var generatedTokens: Int = 0
    public init() {}
}

/// How to evaluate.
public struct EvalOptions: Codable, Hashable, Sendable {
    /// Samples per problem at temperature `temperature` (n ≥ the largest k reported).
    public var samples: Int
    public var temperature: Float
    /// Also decode greedily once per problem.
    public var greedy: Bool
    /// Rows per sampling batch.
    public var batchRows: Int

    public init(samples: Int = 32, temperature: Float = 1, greedy: Bool = true, batchRows: Int = 256) {
        self.samples = samples
        self.temperature = temperature
        self.greedy = greedy
        self.batchRows = batchRows
    }
}

public enum Evaluator {
    /// Samples every problem `options.samples` times (and greedily once); counts successes
    /// with the exact verifier. Deterministic for a given seed.
    /// `rendering` .privileged prompts with the reference solution shown (the hint uplift).
    /// `sampled`, when given, receives every temperature sample (not the greedy decodes):
    /// the problem's index in the set and the completion.
    public static func run(
        _ model: Transformer, on set: EvalSet, indices: [Int]? = nil, options: EvalOptions, seed: UInt64,
        rendering: PromptRendering = .plain, sampled: ((Int, [Int32]) -> Void)? = nil
    ) throws(ModelError) -> (outcomes: [ProblemOutcome], cost: EvalCost) {
        try run(model, problems: set.problems, indices: indices, options: options, seed: seed, rendering: rendering, sampled: sampled)
    }

    /// `run` over any list of problems (outcome indices are positions in `problems`).
    public static func run(
        _ model: Transformer, problems: [Problem], indices: [Int]? = nil, options: EvalOptions, seed: UInt64,
        rendering: PromptRendering = .plain, sampled: ((Int, [Int32]) -> Void)? = nil
    ) throws(ModelError) -> (outcomes: [ProblemOutcome], cost: EvalCost) {
        let idx = indices ?? Array(problems.indices)
        var rng = SeededRNG(seed: seed).derived("eval-sampling")
        var cost = EvalCost()
        var success = [Int](repeating: 0, count: idx.count)
        var greedy = [Bool](repeating: false, count: idx.count)
        // Jobs: (position in idx, greedy?)
        var jobs: [(Int, Bool)] = []
        for (j, _) in idx.enumerated() {
            if options.greedy { jobs.append((j, true)) }
            for _ in 0..<options.samples { jobs.append((j, false)) }
        }
        var start = 0
        while start < jobs.count {
            let chunk = jobs[start..<min(jobs.count, start + options.batchRows)]
            start += chunk.count
            for isGreedy in [true, false] {
                let rows = chunk.filter { $0.1 == isGreedy }
                guard !rows.isEmpty else { continue }
                let prompts = rows.map { problems[idx[$0.0]].promptTokens(rendering) }
                let opts = SamplingOptions(
                    temperature: isGreedy ? 0 : options.temperature, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
                let r = try model.sample(
                    prompts: prompts, options: opts, limits: rows.map { problems[idx[$0.0]].completionLimit }, rng: &rng)
                cost.forwardFLOPs += r.forwardFLOPs
                cost.processedTokens += r.processedTokens
                for (row, c) in zip(rows, r.completions) {
                    cost.generatedTokens += c.tokens.count
                    let ok = Verifier.verify(problems[idx[row.0]], completion: c.tokens).correct
                    if isGreedy { greedy[row.0] = ok } else if ok { success[row.0] += 1 }
                    if !isGreedy { sampled?(idx[row.0], c.tokens) }
                }
            }
        }
        let outcomes = idx.enumerated().map { j, i in
            ProblemOutcome(index: i, greedyCorrect: greedy[j], successes: success[j], samples: options.samples)
        }
        return (outcomes, cost)
    }

    /// log p(reference solution + EOS | prompt) of each problem under `model`: one
    /// teacher-forced forward per problem, batched `batchRows` at a time (run
    /// `Transformer.passRows` sequences per forward pass). Exact (no
    /// sampling), so its only noise is which problems are in the set. Returns the
    /// log-probabilities and the forward FLOPs spent.
    public static func referenceLogProbs(
        _ model: Transformer, problems: [Problem], batchRows: Int = 256
    ) throws(ModelError) -> (logProbs: [Double], forwardFLOPs: Double) {
        var out: [Double] = []
        out.reserveCapacity(problems.count)
        var flops = 0.0
        var start = 0
        while start < problems.count {
            let chunk = problems[start..<min(problems.count, start + batchRows)]
            start += chunk.count
            let batch = SequenceBatch(chunk.map { ($0.promptTokens, Problem.completionTokens($0.solution)) })
            flops += batch.forwardFLOPs(model.config)
            for pass in batch.passes {
                try batch.forward(model, rows: pass)
                let first = batch.positions(pass).lowerBound
                let lp = try model.logProbs(targets: Array(batch.targets[batch.positions(pass)]))
                for row in pass {
                    var sum = 0.0
                    for t in 0..<batch.lengths[row] where batch.targets[batch.position(row, t)] >= 0 {
                        sum += Double(lp[batch.position(row, t) - first])
                    }
                    out.append(sum)
                }
            }
        }
        return (out, flops)
    }
}

public enum Metrics {
    /// Groups outcomes by family and difficulty (`d3`), by family and pass bucket (when
    /// `buckets` gives each problem index a bucket), by family overall (`all`) and, when
    /// `trainRange` gives the training difficulties per family, the cell's own training
    /// distribution (`train_dist`: the held-out problems of those families and levels, and,
    /// when `trainBucket` is given, of that base pass bucket too).
    /// `reference` (problem index → log p of its reference solution) adds `p_ref` and
    /// `logp_ref` over every problem it covers.
    public static func summarize(
        _ outcomes: [ProblemOutcome], set: EvalSet, ks: [Int], buckets: [Int: PassBucket]? = nil,
        reference: [Int: Double] = [:], trainRange: [String: ClosedRange<Int>]? = nil, trainBucket: PassBucket? = nil
    ) -> [GroupMetrics] {
        var sampled: [String: [String: [ProblemOutcome]]] = [:]
        var refs: [String: [String: [Double]]] = [:]
        var order: [(String, String)] = []
        var seen = Set<String>()
        func groups(of index: Int) -> (String, [String]) {
            let p = set.problems[index]
            var g = ["all", "d\(p.difficulty)"]
            if let b = buckets?[index] { g.append(b.rawValue) }
            if let r = trainRange?[p.family], r.contains(p.difficulty), trainBucket == nil || buckets?[index] == trainBucket {
                g.append("train_dist")
            }
            return (p.family, g)
        }
        func note(_ fam: String, _ g: String) {
            if seen.insert(fam + "/" + g).inserted { order.append((fam, g)) }
        }
        for o in outcomes {
            let (fam, gs) = groups(of: o.index)
            for g in gs {
                note(fam, g)
                sampled[fam, default: [:]][g, default: []].append(o)
            }
        }
        for (index, lp) in reference.sorted(by: { $0.key < $1.key }) {
            let (fam, gs) = groups(of: index)
            for g in gs {
                note(fam, g)
                refs[fam, default: [:]][g, default: []].append(lp)
            }
        }
        return order.map { fam, g in
            let os = sampled[fam]?[g] ?? []
            // A group with reference problems only (problems = 0) keeps greedy at 0 and no avg/best/worst.
            var m = GroupMetrics(family: fam, group: g, problems: os.count, greedy: 0, avg: [:], best: [:], worst: [:])
            var se: [String: Double] = [:], seSampling: [String: Double] = [:]
            func add(_ name: String, _ values: [Double], variances: [Double]?) -> Double {
                let mean = values.reduce(0, +) / Double(values.count)
                se[name] = standardError(values, mean: mean)
                if let variances { seSampling[name] = variances.reduce(0, +).squareRoot() / Double(values.count) }
                return mean
            }
            if !os.isEmpty {
                m.greedy = add("greedy", os.map { $0.greedyCorrect ? 1 : 0 }, variances: nil)
                for k in ks where os.allSatisfy({ $0.samples >= k }) {
                    let estimators: [(String, (Int, Int) -> Double)] = [
                        ("avg", { n, c in PassAtK.average(n: n, c: c) }), ("best", { n, c in PassAtK.best(n: n, c: c, k: k) }),
                        ("worst", { n, c in PassAtK.worst(n: n, c: c, k: k) }),
                    ]
                    for (name, f) in estimators {
                        let values = os.map { f($0.samples, $0.successes) }
                        // The jackknife drops one sample, so it needs n − 1 ≥ k.
                        let jack: [Double]? = os.allSatisfy({ $0.samples - 1 >= k })
                            ? os.map { PassAtK.jackknifeVariance(n: $0.samples, c: $0.successes, f) } : nil
                        let v = add("\(name)@\(k)", values, variances: jack)
                        switch name {
                        case "avg": m.avg["\(k)"] = v
                        case "best": m.best["\(k)"] = v
                        default: m.worst["\(k)"] = v
                        }
                    }
                }
            }
            // A diverged policy's non-finite log-probabilities are left out (and so is p_ref).
            if let lps = refs[fam]?[g]?.filter(\.isFinite), !lps.isEmpty {
                m.pRef = add("p_ref", lps.map { Foundation.exp($0) }, variances: nil)
                m.logpRef = add("logp_ref", lps, variances: nil)
                m.refProblems = lps.count
            }
            m.se = se
            m.seSampling = seSampling.isEmpty ? nil : seSampling
            return m
        }
    }

    /// Standard deviation (n − 1) of `values` over √count; 0 for a single value.
    static func standardError(_ values: [Double], mean: Double) -> Double {
        guard values.count > 1 else { return 0 }
        let ss = values.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) }
        return (ss / Double(values.count - 1)).squareRoot() / Double(values.count).squareRoot()
    }

    /// The hint uplift overall ("all", "all"), per bucket ("all", bucket), per family
    /// (family, "all") and per family × bucket: pass@1 on the privileged prompt (`hinted`) minus on the plain one (`plain`),
    /// both over the same problems (matched by index), with the paired SE. Buckets come
    /// from `buckets` (the base's); problems without one count in the "all" rows only.
    public static func hintUplift(
        plain: [ProblemOutcome], hinted: [ProblemOutcome], set: EvalSet, buckets: [Int: PassBucket] = [:]
    ) -> [HintUplift] {
        let hintedByIndex = Dictionary(hinted.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        var diffs: [String: (family: String, bucket: String, plain: [Double], hinted: [Double])] = [:]
        var order: [String] = []
        func add(_ family: String, _ bucket: String, _ a: Double, _ b: Double) {
            let key = family + "/" + bucket
            if diffs[key] == nil { diffs[key] = (family, bucket, [], []); order.append(key) }
            diffs[key]?.plain.append(a)
            diffs[key]?.hinted.append(b)
        }
        for o in plain {
            guard let h = hintedByIndex[o.index], o.samples > 0, h.samples > 0 else { continue }
            let a = Double(o.successes) / Double(o.samples), b = Double(h.successes) / Double(h.samples)
            let family = set.problems[o.index].family
            add("all", "all", a, b)
            add(family, "all", a, b)
            if let bucket = buckets[o.index] {
                add("all", bucket.rawValue, a, b)
                add(family, bucket.rawValue, a, b)
            }
        }
        return order.compactMap { key -> HintUplift? in
            guard let d = diffs[key] else { return nil }
            let n = Double(d.plain.count)
            let delta = zip(d.hinted, d.plain).map { $0 - $1 }
            let mean = delta.reduce(0, +) / n
            let variance = delta.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
            return HintUplift(
                family: d.family, bucket: d.bucket, problems: d.plain.count, plain: d.plain.reduce(0, +) / n,
                hinted: d.hinted.reduce(0, +) / n, se: n > 1 ? (variance / n).squareRoot() : nil)
        }
    }

    /// Buckets from a reference policy's outcomes (K = its samples per problem).
    public static func buckets(from outcomes: [ProblemOutcome]) -> [Int: PassBucket] {
        Dictionary(uniqueKeysWithValues: outcomes.map { ($0.index, PassBucket.of(successes: $0.successes, samples: $0.samples)) })
    }

    /// A readable table, one block per family.
    public static func table(_ rows: [GroupMetrics], ks: [Int]) -> String {
        func col(_ x: String, _ w: Int) -> String { x.count >= w ? x : x + String(repeating: " ", count: w - x.count) }
        func num(_ x: Double?) -> String { x.map { String(format: "%8.3f", $0) } ?? "       -" }
        var s = col("task", 7) + " " + col("group", 9) + "     n   greedy"
        for k in ks { s += " " + ["avg@", "best@", "worst@"].map { String(repeating: " ", count: max(0, 8 - $0.count - "\(k)".count)) + $0 + "\(k)" }.joined(separator: " ") }
        s += "\n"
        // Per family (in order of appearance): all, then levels d1, d2, …, then pass buckets
        // from unsolved to solved, then anything else (train_dist).
        let families = rows.reduce(into: [String]()) { if !$0.contains($1.family) { $0.append($1.family) } }
        func rank(_ g: String) -> (Int, Int) {
            if g == "all" { return (0, 0) }
            if g.hasPrefix("d"), let level = Int(g.dropFirst()) { return (1, level) }
            if let b = PassBucket(rawValue: g) { return (2, b.rank) }
            return (3, 0)
        }
        let ordered = rows.enumerated().sorted { a, b in
            let fa = families.firstIndex(of: a.element.family) ?? 0, fb = families.firstIndex(of: b.element.family) ?? 0
            if fa != fb { return fa < fb }
            let ra = rank(a.element.group), rb = rank(b.element.group)
            return ra != rb ? ra < rb : a.offset < b.offset
        }.map(\.element)
        for r in ordered {
            s += col(r.family, 7) + " " + col(r.group, 9) + String(format: " %5d", r.problems) + num(r.greedy) + " "
            for k in ks {
                let key = "\(k)"
                s += " " + [num(r.avg[key]), num(r.best[key]), num(r.worst[key])].joined(separator: " ")
            }
            s += "\n"
        }
        return s
    }
}
