import Evaluation
import Foundation
import PolicyModel
import RLCommon
import ResultSchema
import Tasks

/// Best-of-n without RL: sample m completions of each problem from a policy, and for every
/// n ≤ m compute the expected gold (and proxy) reward of the completion a proxy picks among
/// n of them — exactly, over every n-subset of the m samples and uniform tie-breaking, not
/// by one random draw. With continuous scores and no ties its KL to the policy is
/// log n − (n − 1)/n (Gao et al., arXiv 2210.10760); with ties (binary proxies) that is an
/// upper bound, and the harness reports it as d = √KL all the same.
public enum BestOfN {
    /// One problem's m samples: their proxy scores and gold rewards.
    public struct Samples: Sendable {
        public var proxy: [Double]
        public var gold: [Double]
        public init(proxy: [Double], gold: [Double]) { self.proxy = proxy; self.gold = gold }
    }

    /// The expected (gold, proxy) reward of the proxy's pick among a uniformly random
    /// n-subset of the samples. Sorted by score, a tie block spanning sorted positions
    /// a…b (1-based) holds the subset's maximum with probability [C(b, n) − C(a − 1, n)] / C(m, n),
    /// and, by symmetry, the pick within it is a uniform member: its mean.
    public static func expected(_ s: Samples, n: Int) -> (gold: Double, proxy: Double) {
        let m = s.proxy.count
        precondition(n >= 1 && n <= m, "best-of-\(n) of \(m) samples")
        let order = s.proxy.indices.sorted { s.proxy[$0] < s.proxy[$1] }
        func logC(_ a: Int, _ k: Int) -> Double {  // ln C(a, k), −∞ when a < k
            a < k ? -.infinity : lgamma(Double(a + 1)) - lgamma(Double(k + 1)) - lgamma(Double(a - k + 1))
        }
        let total = logC(m, n)
        var gold = 0.0, proxy = 0.0
        var a = 0
        while a < m {
            var b = a
            while b + 1 < m && s.proxy[order[b + 1]] == s.proxy[order[a]] { b += 1 }
            // Positions a…b (0-based) are one block: 1-based a + 1 … b + 1.
            let p = exp(logC(b + 1, n) - total) - exp(logC(a, n) - total)
            let members = order[a...b]
            gold += p * members.reduce(0) { $0 + s.gold[$1] } / Double(members.count)
            proxy += p * members.reduce(0) { $0 + s.proxy[$1] } / Double(members.count)
            a = b + 1
        }
        return (gold, proxy)
    }

    /// d = √(log n − (n − 1)/n).
    public static func d(n: Int) -> Double { max(0, log(Double(n)) - Double(n - 1) / Double(n)).squareRoot() }

    /// m completions of each problem from `policy` at temperature 1, scored by `reward` and
    /// by gold; returns the per-problem samples and the forward FLOPs (sampling and any
    /// reward-model scoring).
    public static func sample(
        _ policy: Transformer, problems: [Problem], m: Int, reward: inout TrainingReward, rng: inout SeededRNG
    ) throws(ModelError) -> (samples: [Samples], flops: Double) {
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        var out: [Samples] = []
        var flops = 0.0
        for p in problems {
            let r = try policy.sample(
                prompts: Array(repeating: p.promptTokens, count: m), options: opts, limits: Array(repeating: p.completionLimit, count: m),
                rng: &rng)
            flops += r.forwardFLOPs
            let (proxy, f) = try reward.score(r.completions.map { (p, $0.tokens) })
            flops += f
            out.append(Samples(proxy: proxy, gold: r.completions.map { RuleReward.gold(p, $0.tokens) }))
        }
        return (out, flops)
    }
}
