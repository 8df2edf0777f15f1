import Foundation
import Laws
import RLCommon
import Testing

@Suite("Bootstrap and holdout")
struct BootstrapTests {
    @Test func percentileCoverageIsNearNominal() {
        // 120 synthetic data sets; for each, a 95% bootstrap interval for the power-law
        // exponent. The truth must fall inside about 95% of them.
        let x = logSpace(10, 14, 30)
        var covered = 0
        let draws = 120
        for r in 0..<draws {
            var rng = SeededRNG(seed: 1000 + UInt64(r))
            let y = x.map { 2e-3 * pow($0, 0.5) * exp(0.1 * rng.gaussian()) }
            let e = Laws.estimate(.powerLaw, LawData(x: x, y: y), bootstrap: BootstrapOptions(resamples: 200, seed: UInt64(r)))
            if e.intervals[1].contains(0.5) { covered += 1 }
        }
        let coverage = Double(covered) / Double(draws)
        #expect(coverage >= 0.85 && coverage <= 0.99, "coverage \(coverage)")
    }

    @Test func intervalsShrinkWithMoreData() {
        var rng = SeededRNG(seed: 3)
        func width(_ n: Int) -> Double {
            let x = logSpace(10, 14, n)
            let y = x.map { 0.1 + 0.6 / (1 + pow(1e12 / $0, 1.0)) + 0.02 * rng.gaussian() }
            let e = Laws.estimate(.scaleRL, LawData(x: x, y: y), options: FitOptions(r0: 0.1, asymptoteMax: 1),
                                  bootstrap: BootstrapOptions(resamples: 60, seed: 1))
            return e.intervals[1].high - e.intervals[1].low
        }
        let small = width(12), large = width(120)
        #expect(large < small)
        #expect(large > 0)
    }

    @Test func bootstrapIsSeeded() {
        let x = logSpace(3, 6, 15)
        var rng = SeededRNG(seed: 9)
        let y = x.map { 0.3 + 20 * pow($0, -0.5) + 0.01 * rng.gaussian() }
        let a = Laws.estimate(.powerOffset, LawData(x: x, y: y), bootstrap: BootstrapOptions(resamples: 40, seed: 7))
        let b = Laws.estimate(.powerOffset, LawData(x: x, y: y), bootstrap: BootstrapOptions(resamples: 40, seed: 7))
        let c = Laws.estimate(.powerOffset, LawData(x: x, y: y), bootstrap: BootstrapOptions(resamples: 40, seed: 8))
        #expect(a.intervals == b.intervals)
        #expect(a.intervals != c.intervals)
    }

    @Test func holdoutErrorIsSmallForTheTrueFormAndLargeForAWrongOne() throws {
        let x = logSpace(2, 6, 40)
        let y = x.map { 0.2 + 5 * pow($0, -0.3) }
        let good = try Holdout.error(.powerOffset, LawData(x: x, y: y), options: FitOptions()).get()
        #expect(good < 1e-3)
        // A pure power law cannot follow the offset: its extrapolation error is visible.
        let bad = try Holdout.error(.powerLaw, LawData(x: x, y: y), options: FitOptions()).get()
        #expect(bad > 10 * good)
        // Less than a decade of data: no holdout, with a reason.
        let narrow = Holdout.error(.powerLaw, LawData(x: [1, 2, 3, 4, 5], y: [1, 2, 3, 4, 5]), options: FitOptions())
        #expect((try? narrow.get()) == nil)
    }
}
