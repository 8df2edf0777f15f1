import Evaluation
import Foundation
import ResultSchema
import RLCommon
import Testing

/// The support-expansion measurement's false-discovery count against simulation with
/// known pass rates.
@Suite struct SupportTests {
    /// Gamma(shape, 1) by Marsaglia and Tsang (shape < 1 boosted by U^(1/shape)).
    static func gamma(_ shape: Double, _ rng: inout SeededRNG) -> Double {
        if shape < 1 { return gamma(shape + 1, &rng) * pow(rng.uniform(), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            let x = rng.gaussian(), v = pow(1 + c * x, 3)
            if v > 0, log(rng.uniform()) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }

    static func beta(_ a: Double, _ b: Double, _ rng: inout SeededRNG) -> Double {
        let x = gamma(a, &rng), y = gamma(b, &rng)
        return x / (x + y)
    }

    static func binomial(_ n: Int, _ p: Double, _ rng: inout SeededRNG) -> Int {
        var c = 0
        for _ in 0..<n where rng.uniform() < p { c += 1 }
        return c
    }

    /// One simulated measurement: two levels of problems with pass rates from known Betas,
    /// buckets from 32 samples, the support problems (bucket unsolved or hard) measured with
    /// K samples from the base and from a policy whose pass rates are `lift(p)`.
    static func simulate(K: Int, lift: (Double) -> Double, _ rng: inout SeededRNG) -> (newSupport: Int, expected: Double) {
        var prior: [String: [(c: Int, n: Int)]] = [:]
        var problems: [SupportProblem] = []
        for (level, shape) in [(1, (0.5, 3.0)), (2, (0.3, 6.0))] {
            for i in 0..<300 {
                let p = beta(shape.0, shape.1, &rng)
                let c0 = binomial(32, p, &rng)
                prior[SupportStatistics.groupKey("sort", level), default: []].append((c0, 32))
                let bucket = PassBucket.of(successes: c0, samples: 32)
                guard bucket == .unsolved || bucket == .hard else { continue }
                problems.append(SupportProblem(
                    index: level * 1000 + i, family: "sort", difficulty: level, bucket: bucket, trainDistribution: true, bucketSuccesses: c0, bucketSamples: 32,
                    base: binomial(K, p, &rng), policy: binomial(K, lift(p), &rng)))
            }
        }
        guard let m = SupportStatistics.summarize(problems, samples: K, step: 1, priorCounts: prior, flops: 0) else { return (0, .nan) }
        return (m.newSupport, m.expectedFalseDiscoveries)
    }

    @Test func expectedFalseDiscoveriesMatchSimulationUnderTheNull() {
        var rng = SeededRNG(seed: 17)
        var found = 0.0, expected = 0.0
        let reps = 30
        for _ in 0..<reps {
            let s = Self.simulate(K: 64, lift: { $0 }, &rng)
            found += Double(s.newSupport)
            expected += s.expected
        }
        found /= Double(reps)
        expected /= Double(reps)
        // A policy that is the base "discovers" problems: many per measurement, and the
        // estimator predicts how many (the simulation's SE of the mean is ~0.4 here).
        #expect(found > 5, "\(found)")
        #expect(abs(expected - found) < 0.12 * found, "expected \(expected), simulated \(found)")
        // A policy that really raises pass rates discovers far more than the null predicts.
        var lifted = 0.0, nullExpected = 0.0
        for _ in 0..<10 {
            let s = Self.simulate(K: 64, lift: { min(1, 4 * $0 + 0.01) }, &rng)
            lifted += Double(s.newSupport)
            nullExpected += s.expected
        }
        #expect(lifted > 2 * nullExpected, "lifted \(lifted) vs null \(nullExpected)")
    }

    @Test func betaPriorRecoversKnownShapesAndPassAtKIsUnbiased() throws {
        var rng = SeededRNG(seed: 3)
        let counts = (0..<4000).map { _ in (c: Self.binomial(32, Self.beta(0.5, 3, &rng), &rng), n: 32) }
        let (a, b) = try #require(SupportStatistics.betaPrior(counts))
        #expect(abs(a / (a + b) - 0.5 / 3.5) < 0.01, "mean \(a / (a + b))")
        #expect(abs((a + b) - 3.5) < 0.5, "a + b = \(a + b)")
        // P(any success in k) for a point mass (a, b huge) is 1 − (1 − p)^k.
        #expect(abs(SupportStatistics.probabilityOfAnySuccess(a: 2e6, b: 8e6, draws: 5) - (1 - pow(0.8, 5))) < 1e-5)
        #expect(SupportMeasurement.ks(samples: 256) == [1, 4, 16, 64, 256] && SupportMeasurement.ks(samples: 100) == [1, 4, 16, 64, 100])
        #expect(SupportStatistics.summarize([], samples: 64, step: 3, priorCounts: [:], flops: 0) == nil, "nothing to measure: no NaN means")
    }
}
