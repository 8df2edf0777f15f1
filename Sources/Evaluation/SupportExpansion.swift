import Foundation
import ResultSchema

/// Statistics of the support-expansion measurement (`SupportMeasurement`).
public enum SupportStatistics {
    /// A Beta(a, b) prior over the pass rates of a group of problems, fitted by the method
    /// of moments of the beta-binomial to their counts (`c` successes of `n` samples each):
    /// the mean μ of c/n and the intra-problem correlation ρ = 1/(a + b + 1) solved from the
    /// spread of c/n. μ is kept off 0 and 1 by half a success (a group with no success
    /// at all still gets a small positive mean), and ρ is clamped to [1e-3, 0.999]
    /// (under-dispersed groups are treated as one shared rate). Nil without counts.
    public static func betaPrior(_ counts: [(c: Int, n: Int)]) -> (a: Double, b: Double)? {
        let used = counts.filter { $0.n > 0 }
        guard !used.isEmpty else { return nil }
        let total = Double(used.reduce(0) { $0 + $1.n })
        let m = Double(used.count)
        let rates = used.map { Double($0.c) / Double($0.n) }
        let mu = min(max(rates.reduce(0, +) / m, 0.5 / total), 1 - 0.5 / total)
        let nBar = total / m
        var rho = 1e-3
        if used.count > 1, nBar > 1 {
            let s2 = rates.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / (m - 1)
            rho = (nBar * s2 / (mu * (1 - mu)) - 1) / (nBar - 1)
        }
        rho = min(max(rho, 1e-3), 0.999)
        let ab = 1 / rho - 1
        return (mu * ab, (1 - mu) * ab)
    }

    /// P(at least one success in k draws) for a pass rate p ~ Beta(a, b):
    /// 1 − E[(1 − p)^k] = 1 − B(a, b + k)/B(a, b).
    public static func probabilityOfAnySuccess(a: Double, b: Double, draws k: Int) -> Double {
        guard k > 0 else { return 0 }
        let logRatio = lgamma(b + Double(k)) - lgamma(b) + lgamma(a + b) - lgamma(a + b + Double(k))
        return -expm1(logRatio)
    }

    /// For a problem with 0 of K from the base, the probability that a policy that *is* the
    /// base solves it at least once in K: P(≥ 1 of K | the posterior of its pass rate), where
    /// the posterior is the prior of its family and difficulty (fitted on the bucket
    /// evaluation's counts of every held-out problem there, `priorCounts`) updated with the
    /// problem's bucket counts and its 0 of K. Nil for a problem the base solved.
    public static func falseDiscoveryProbability(
        _ p: SupportProblem, samples K: Int, priorCounts: [String: [(c: Int, n: Int)]]
    ) -> Double? {
        guard p.base == 0 else { return nil }
        let (a, b) = betaPrior(priorCounts[groupKey(p.family, p.difficulty)] ?? [])
            ?? betaPrior([(p.bucketSuccesses, p.bucketSamples)]) ?? (0.5, 0.5)
        let a1 = a + Double(p.bucketSuccesses), b1 = b + Double(p.bucketSamples - p.bucketSuccesses + K)
        return probabilityOfAnySuccess(a: a1, b: b1, draws: K)
    }

    /// The key of a family × difficulty group of `priorCounts`.
    public static func groupKey(_ family: String, _ difficulty: Int) -> String { "\(family)/\(difficulty)" }

    /// The measurement's summary from its per-problem counts (nil without problems): each
    /// base-zero problem gets its false-discovery probability, and the expected number of
    /// false discoveries is their sum.
    public static func summarize(_ measured: [SupportProblem], samples K: Int, step: Int, priorCounts: [String: [(c: Int, n: Int)]], flops: Double)
        -> SupportMeasurement?
    {
        guard !measured.isEmpty else { return nil }
        let problems = measured.map { p in
            var q = p
            q.falseDiscoveryProbability = falseDiscoveryProbability(p, samples: K, priorCounts: priorCounts)
            return q
        }
        let ks = SupportMeasurement.ks(samples: K)
        let curve = ks.map { k -> SupportPassAtK in
            // One value per problem: the mean and SE over problems.
            let b = RewardDiagnostics.clustered(problems.map { [PassAtK.best(n: K, c: $0.base, k: k)] })
            let p = RewardDiagnostics.clustered(problems.map { [PassAtK.best(n: K, c: $0.policy, k: k)] })
            return SupportPassAtK(k: k, base: b.mean, baseSE: b.se, policy: p.mean, policySE: p.se)
        }
        return SupportMeasurement(
            samples: K, step: step, problems: problems, passAtK: curve, baseZero: problems.filter { $0.base == 0 }.count,
            newSupport: problems.filter { $0.base == 0 && $0.policy > 0 }.count,
            expectedFalseDiscoveries: problems.reduce(0) { $0 + ($1.falseDiscoveryProbability ?? 0) },
            lostSupport: problems.filter { $0.base > 0 && $0.policy == 0 }.count, flops: flops)
    }
}
