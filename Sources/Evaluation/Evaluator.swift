import Foundation
import PolicyModel
import RLCommon
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
    public static func run(
        _ model: Transformer, on set: EvalSet, indices: [Int]? = nil, options: EvalOptions, seed: UInt64
    ) throws(ModelError) -> (outcomes: [ProblemOutcome], cost: EvalCost) {
        let idx = indices ?? Array(set.problems.indices)
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
                let prompts = rows.map { set.problems[idx[$0.0]].promptTokens }
                let opts = SamplingOptions(
                    temperature: isGreedy ? 0 : options.temperature, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
                let r = try model.sample(prompts: prompts, options: opts, rng: &rng)
                cost.forwardFLOPs += r.forwardFLOPs
                cost.processedTokens += r.processedTokens
                for (row, c) in zip(rows, r.completions) {
                    cost.generatedTokens += c.tokens.count
                    let ok = Verifier.verify(set.problems[idx[row.0]], completion: c.tokens).correct
                    if isGreedy { greedy[row.0] = ok } else if ok { success[row.0] += 1 }
                }
            }
        }
        let outcomes = idx.enumerated().map { j, i in
            ProblemOutcome(index: i, greedyCorrect: greedy[j], successes: success[j], samples: options.samples)
        }
        return (outcomes, cost)
    }
}

/// Metrics of one group of problems (a family × difficulty level, or a family × pass bucket).
public struct GroupMetrics: Codable, Sendable, Hashable {
    public var family: String
    /// "d3" for a difficulty level, a `PassBucket` name, or "all".
    public var group: String
    public var problems: Int
    public var greedy: Double
    /// avg@k, best@k and worst@k keyed by k.
    public var avg: [String: Double]
    public var best: [String: Double]
    public var worst: [String: Double]
}

public enum Metrics {
    /// Groups outcomes by family and difficulty, by family and pass bucket (when
    /// `buckets` gives each problem index a bucket), and by family overall.
    public static func summarize(
        _ outcomes: [ProblemOutcome], set: EvalSet, ks: [Int], buckets: [Int: PassBucket]? = nil
    ) -> [GroupMetrics] {
        var groups: [String: [String: [ProblemOutcome]]] = [:]
        var order: [(String, String)] = []
        func add(_ fam: String, _ g: String, _ o: ProblemOutcome) {
            if groups[fam]?[g] == nil { order.append((fam, g)) }
            groups[fam, default: [:]][g, default: []].append(o)
        }
        for o in outcomes {
            let p = set.problems[o.index]
            add(p.family, "all", o)
            add(p.family, "d\(p.difficulty)", o)
            if let b = buckets?[o.index] { add(p.family, b.rawValue, o) }
        }
        return order.map { fam, g in
            let os = groups[fam]?[g] ?? []
            let n = Double(os.count)
            var avg: [String: Double] = [:], best: [String: Double] = [:], worst: [String: Double] = [:]
            for k in ks where os.allSatisfy({ $0.samples >= k }) {
                avg["\(k)"] = os.reduce(0) { $0 + PassAtK.average(n: $1.samples, c: $1.successes) } / n
                best["\(k)"] = os.reduce(0) { $0 + PassAtK.best(n: $1.samples, c: $1.successes, k: k) } / n
                worst["\(k)"] = os.reduce(0) { $0 + PassAtK.worst(n: $1.samples, c: $1.successes, k: k) } / n
            }
            return GroupMetrics(
                family: fam, group: g, problems: os.count,
                greedy: os.reduce(0) { $0 + ($1.greedyCorrect ? 1 : 0) } / n, avg: avg, best: best, worst: worst)
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
        for r in rows {
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
