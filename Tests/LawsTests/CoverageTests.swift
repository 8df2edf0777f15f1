import Foundation
import Laws
import RLCommon
import Testing

/// The run bootstrap's intervals, checked against synthetic worlds whose laws are known.
@Suite("Coverage of the run bootstrap")
struct CoverageTests {
    /// Nominal 95% intervals of A and C_mid contain each arm's true value in at least 90% of
    /// worlds at the run counts the grids use, with normal and heavy-tailed run effects.
    /// (The README's coverage table is the same measurement with 100 worlds per row.)
    @Test(arguments: [(2, false), (3, false), (3, true)])
    func intervalsCoverAtTheRunCountsGridsUse(runs: Int, heavyTails: Bool) {
        var world = SyntheticWorld(runsPerConfiguration: runs)
        world.heavyTails = heavyTails
        let c = Coverage.measure(world, replications: 40, options: AnalysisOptions(bootstrap: BootstrapOptions(resamples: 200), budgets: 8))
        #expect(c.trials == 80)
        #expect(c.asymptote >= 0.9, "A covered in \(c.asymptote) of \(c.trials)")
        #expect(c.midpoint >= 0.9, "C_mid covered in \(c.midpoint) of \(c.trials)")
        #expect(c.tooFewRuns == 0)
    }

    /// One run per configuration shows no run-to-run spread: no interval, and the grade
    /// says why (`too_few_runs`) rather than presenting a 95% interval.
    @Test func oneRunPerConfigurationIsTooFewRuns() {
        let c = Coverage.measure(SyntheticWorld(runsPerConfiguration: 1), replications: 3, options: AnalysisOptions(budgets: 8))
        #expect(c.trials == 6)
        #expect(c.tooFewRuns == 6)
        #expect(c.asymptote == 0 && c.midpoint == 0)
    }

    /// The run bootstrap keeps every configuration in every resample and draws whole runs.
    @Test func runBootstrapDrawsWithinEachStratum() {
        let strata = [[0, 1, 2], [3, 4], [5]]
        var seen: [[Int]] = []
        let d = Bootstrap.draws(strata: strata, options: BootstrapOptions(resamples: 50, seed: 3)) { idx in
            seen.append(idx)
            return [Double(idx.count)]
        }
        #expect(d.count == 50)
        #expect(seen.allSatisfy { idx in idx.count == 6 && idx.filter { $0 <= 2 }.count == 3 && idx.filter { $0 == 3 || $0 == 4 }.count == 2 && idx.last == 5 })
        #expect(Set(seen.map { $0.filter { $0 <= 2 } }).count > 3)
    }

    /// The interval is the estimate ± t·SD·√(runs/(runs − strata)): for two strata of three
    /// draws each with spread 1, t(4 df) = 2.776 and the inflation √(6/4).
    @Test func runIntervalIsTScaledAndInflated() {
        let draws = (0..<100).map { [Double($0 % 2 == 0 ? -1 : 1)] }
        let runs = RunCount(runs: 6, strata: 2, fewestPerConfiguration: 3)
        let iv = Bootstrap.runInterval(draws, column: 0, center: 0.5, runs: runs, level: 0.95)
        let sd = (100.0 / 99).squareRoot()
        let half = 2.7764451051977987 * sd * (6.0 / 4).squareRoot()
        #expect(abs(iv.low - (0.5 - half)) < 1e-9 && abs(iv.high - (0.5 + half)) < 1e-9, "\(iv)")
        let logged = Bootstrap.runInterval(draws.map { [exp($0[0])] }, column: 0, center: 1, runs: runs, level: 0.95, logScale: true)
        #expect(abs(log(logged.high) - half) < 1e-9 && abs(log(logged.low) + half) < 1e-9)
        #expect(!Bootstrap.runInterval(draws, column: 0, center: 0.5, runs: RunCount(runs: 2, strata: 2, fewestPerConfiguration: 1),
                                       level: 0.95).low.isFinite)
    }
}
