import Foundation
import Laws
import RLCommon
import Testing

@Suite("Chinchilla fit and allocation")
struct ChinchillaTests {
    @Test func nelderMeadFindsNoLowerObjective() throws {
        let data = SyntheticChinchilla.make(seed: 21, noise: 0.03)
        let fit = Laws.fit(.chinchilla, data, options: FitOptions(huberDelta: 1e-3))
        #expect(fit.isOK, "\(fit.status)")
        let own = ChinchillaFit.huberObjective(fit.values, data: data, delta: 1e-3)
        #expect(abs(own - fit.objective) <= 1e-9 * max(1, own))
        // Independent derivative-free minimisations from the fit, from the truth and from
        // scattered starts never beat the BFGS optimum by more than numerical noise.
        var rng = SeededRNG(seed: 5)
        var starts = [fit.values, SyntheticChinchilla.truth]
        for _ in 0..<4 {
            starts.append(SyntheticChinchilla.truth.map { $0 * exp(0.5 * rng.gaussian()) })
        }
        var bestNM = Double.infinity
        for s in starts {
            let nm = try #require(ChinchillaFit.nelderMead(data, start: s, delta: 1e-3))
            bestNM = min(bestNM, nm.objective)
        }
        #expect(bestNM >= fit.objective - 1e-6 * max(1, fit.objective))
        // And the objective is not trivially flat: the truth perturbed is worse.
        let worse = ChinchillaFit.huberObjective(fit.values.enumerated().map { $0.offset == 2 ? $0.element * 1.3 : $0.element }, data: data, delta: 1e-3)
        #expect(worse > fit.objective * 1.01)
    }

    @Test func computeOptimalAllocationIsTheIsoComputeMinimum() {
        let t = SyntheticChinchilla.truth
        let law = LawFit(form: .chinchilla, values: t)
        for c in [1e12, 1e15, 1e18] {
            let opt = ChinchillaFit.computeOptimal(law, budget: c, k: 6)
            #expect(relClose(opt.n * opt.d, c / 6, 1e-9))
            // Brute force along N·D = C/6.
            var bestN = 0.0, bestL = Double.infinity
            for i in 0...4000 {
                let n = pow(10, 1 + 12 * Double(i) / 4000)
                let l = law.predict(n, c / 6 / n)
                if l < bestL { bestL = l; bestN = n }
            }
            #expect(relClose(opt.n, bestN, 0.01))
        }
        // A different constant k shifts the budget only through C/k.
        let a = ChinchillaFit.computeOptimal(law, budget: 1e15, k: 2)
        let b = ChinchillaFit.computeOptimal(law, budget: 3e15, k: 6)
        #expect(relClose(a.n, b.n, 1e-9))
        #expect(ChinchillaFit.computeOptimal(.failure(.chinchilla, "x", nPoints: 0, options: FitOptions()), budget: 1e15).n.isNaN)
    }

    @Test func huberDeltaMattersForOutliers() {
        var data = SyntheticChinchilla.make(seed: 22, noise: 0.005)
        for i in stride(from: 0, to: data.count, by: 7) { data.y[i] *= 3 }  // gross outliers
        let robust = Laws.fit(.chinchilla, data, options: FitOptions(huberDelta: 1e-3))
        let squared = Laws.fit(.chinchilla, data, options: FitOptions(huberDelta: 10))
        #expect(robust.isOK && squared.isOK, "\(robust.status) | \(squared.status)")
        let t = SyntheticChinchilla.truth
        #expect(abs(robust.value("alpha") - t[2]) < abs(squared.value("alpha") - t[2]) + 0.02)
        #expect(relClose(robust.value("E"), t[0], 0.15))
    }
}
