import Foundation
import RLCommon

/// Errors in task configuration, naming the offending key and value.
public enum TaskConfigError: Error, Equatable, CustomStringConvertible {
    case unknownFamily(String, known: [String])
    case badWeight(family: String, value: String)
    case malformed(String)

    public var description: String {
        switch self {
        case .unknownFamily(let f, let known): "unknown task family '\(f)' (known: \(known.joined(separator: ", ")))"
        case .badWeight(let f, let v): "task family '\(f)' has invalid weight '\(v)' (need a positive number)"
        case .malformed(let s): "malformed task mixture '\(s)' (expected e.g. add:1,mul:1)"
        }
    }
}

/// Relative weights of task families, e.g. `add:2,sort:1`.
public struct TaskMixture: Codable, Hashable, Sendable, CustomStringConvertible {
    public struct Component: Codable, Hashable, Sendable {
        public var family: String
        public var weight: Double
    }
    /// Components in a canonical order (family name), so equal mixtures hash equally.
    public private(set) var components: [Component]

    public init(_ weights: [String: Double]) throws(TaskConfigError) {
        var comps: [Component] = []
        for (f, w) in weights.sorted(by: { $0.key < $1.key }) {
            guard TaskFamilies.named(f) != nil else { throw .unknownFamily(f, known: TaskFamilies.names) }
            guard w > 0, w.isFinite else { throw .badWeight(family: f, value: "\(w)") }
            comps.append(Component(family: f, weight: w))
        }
        guard !comps.isEmpty else { throw .malformed("") }
        components = comps
    }

    /// Parses `name:weight,...` (a bare name has weight 1).
    public static func parse(_ s: String) throws(TaskConfigError) -> TaskMixture {
        var w: [String: Double] = [:]
        for part in s.split(separator: ",") {
            let kv = part.split(separator: ":", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard kv.count <= 2, let name = kv.first, !name.isEmpty else { throw .malformed(s) }
            if kv.count == 2 {
                guard let x = Double(kv[1]) else { throw .badWeight(family: name, value: kv[1]) }
                w[name] = x
            } else {
                w[name] = 1
            }
        }
        return try TaskMixture(w)
    }

    private init(components: [Component]) { self.components = components }

    /// All families, equally weighted.
    public static var uniform: TaskMixture {
        TaskMixture(components: TaskFamilies.names.sorted().map { Component(family: $0, weight: 1) })
    }

    public var families: [any TaskFamily] { components.compactMap { TaskFamilies.named($0.family) } }

    public var description: String {
        components.map { "\($0.family):\(formatWeight($0.weight))" }.joined(separator: ",")
    }

    /// Draws a family index by weight.
    public func draw(_ rng: inout SeededRNG) -> any TaskFamily {
        let total = components.reduce(0) { $0 + $1.weight }
        var u = rng.uniform() * total
        for c in components {
            u -= c.weight
            if u < 0, let f = TaskFamilies.named(c.family) { return f }
        }
        return TaskFamilies.named(components[components.count - 1].family) ?? Addition()
    }
}

func formatWeight(_ w: Double) -> String {
    w == w.rounded() && abs(w) < 1e9 ? String(Int(w)) : String(w)
}

/// The noisy solver that writes the pretraining corpus: its per-step error rate grows
/// linearly with difficulty, `min(maxRate, base + perLevel · (difficulty − 1))`.
public struct SolverNoise: Codable, Hashable, Sendable {
    public var base: Double
    public var perLevel: Double
    public var maxRate: Double
    public init(base: Double = 0.01, perLevel: Double = 0.02, maxRate: Double = 0.3) {
        self.base = base
        self.perLevel = perLevel
        self.maxRate = maxRate
    }
    public func rate(difficulty: Int) -> Double { min(maxRate, base + perLevel * Double(difficulty - 1)) }
}

/// The pretraining corpus: problems from the train stream with worked solutions by the
/// noisy solver, difficulties uniform over each family's pretraining range (the lower
/// `reach` fraction of its levels; the levels above are never seen in pretraining and
/// stay out of reach), and a fraction `privilegedFraction` of examples in the privileged
/// rendering, written with the solution they show, so that a policy learns to use a
/// shown solution (self-distillation teachers need this; the base record measures it as
/// the hint uplift).
public struct CorpusConfig: Codable, Hashable, Sendable {
    public var mixture: TaskMixture
    public var noise: SolverNoise
    public var reach: Double
    public var privilegedFraction: Double
    /// The share of plain examples rendered as multi-turn episodes (`episodeExample`): nil
    /// (none) is left out of the spec's encoding, so every earlier base keeps its key.
    public var episodeFraction: Double?

    /// The default share of privileged examples (measured: see the README's hint uplift table).
    public static let defaultPrivilegedFraction = 0.5

    public init(
        mixture: TaskMixture = .uniform, noise: SolverNoise = SolverNoise(), reach: Double = 0.75,
        privilegedFraction: Double = CorpusConfig.defaultPrivilegedFraction, episodeFraction: Double? = nil
    ) {
        self.mixture = mixture
        self.noise = noise
        self.reach = reach
        self.privilegedFraction = privilegedFraction
        self.episodeFraction = episodeFraction.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Highest difficulty of `family` that appears in pretraining.
    public func maxPretrainDifficulty(_ family: any TaskFamily) -> Int {
        max(1, Int((Double(family.maxDifficulty) * reach).rounded()))
    }

    /// One training example: prompt tokens (not trained on) and completion tokens.
    public func example(_ rng: inout SeededRNG) -> (prompt: [Int32], completion: [Int32]) {
        let f = mixture.draw(&rng)
        let d = 1 + rng.below(maxPretrainDifficulty(f))
        let p = TaskFamilies.sample(f, difficulty: d, split: .train, rng: &rng)
        let (steps, answer) = f.noisySolution(p, errorRate: noise.rate(difficulty: d), rng: &rng)
        // A privileged example writes the solution it shows (error-free): a base that saw
        // the noisy solver deviate from a shown solution would learn to ignore hints.
        if rng.uniform() < privilegedFraction {
            return (p.privilegedPromptTokens, Problem.completionTokens(p.solution))
        }
        let completion = Problem.completionTokens(Problem.render(steps: steps, answer: answer))
        // No draw at all without episodes: earlier bases' streams are untouched.
        if let e = episodeFraction, rng.uniform() < e, let context = episodeContext(f, p, before: completion, &rng) {
            return (context, completion)
        }
        return (p.promptTokens, completion)
    }

    /// The context of a multi-turn pretraining example: the prompt, then one to three rejected
    /// attempts, each followed by its feedback (`Feedback.tokens`, a kind drawn uniformly per
    /// example), so that the example's completion (a fresh noisy solution, drawn as for a plain
    /// example, independent of the rejected attempts) is a retry. A base learns the episode
    /// format and that a retry is another attempt at the same problem; it is never shown
    /// a retry that uses the feedback. A rejected attempt is the noisy solver at error rate
    /// at least 0.3, redrawn until its answer is wrong (nil after 16 draws); nil too when
    /// the example would not fit the context.
    func episodeContext(_ f: any TaskFamily, _ p: Problem, before completion: [Int32], _ rng: inout SeededRNG) -> [Int32]? {
        let feedback = Feedback.allCases[rng.below(Feedback.allCases.count)]
        let rejected = 1 + rng.below(3)
        var context = p.promptTokens
        let rate = max(0.3, noise.rate(difficulty: p.difficulty))
        for _ in 0..<rejected {
            var attempt: [Int32]?
            for _ in 0..<16 {
                let (s, a) = f.noisySolution(p, errorRate: rate, rng: &rng)
                if a != p.answer { attempt = Problem.completionTokens(Problem.render(steps: s, answer: a)); break }
            }
            guard let attempt else { return nil }
            context += attempt + feedback.tokens(p, attempt: attempt)
        }
        return context.count + completion.count <= taskContext ? context : nil
    }
}

/// The context every policy is built with: the longest privileged prompt plus the
/// longest solution and EOS of any family at its top difficulty is 89 tokens (sorting 12
/// digits). Rollouts are capped per problem (`Problem.completionLimit`) so that a
/// teacher's privileged prompt plus any rollout fits too; the tests check both.
public let taskContext = 96

/// Most tokens a policy may generate for one solution (the longest reference solution
/// plus EOS is 37 tokens); generation stops here, or earlier at `Problem.completionLimit`.
public let maxSolutionTokens = 48
