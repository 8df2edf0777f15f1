import Foundation
import Laws
import RLCommon
import Testing

/// log-spaced values from 10^lo to 10^hi.
func logSpace(_ lo: Double, _ hi: Double, _ count: Int) -> [Double] {
    (0..<count).map { pow(10, lo + (hi - lo) * Double($0) / Double(count - 1)) }
}

func relClose(_ a: Double, _ b: Double, _ tol: Double) -> Bool { abs(a - b) <= tol * abs(b) }

@Suite("Recovery of known parameters")
struct FormRecoveryTests {
    @Test func scaleRLRecoversAsymptoteMidpointAndExponent() {
        var rng = SeededRNG(seed: 11)
        let c = logSpace(9, 13, 40)
        let (r0, a, b, cmid) = (0.1, 0.72, 1.3, 3e11)
        let y = c.map { r0 + (a - r0) / (1 + pow(cmid / $0, b)) + 0.005 * rng.gaussian() }
        let fit = Laws.fit(.scaleRL, LawData(x: c, y: y), options: FitOptions(r0: r0, asymptoteMax: 1))
        #expect(fit.isOK, "\(fit.status)")
        #expect(fit.value("R0") == r0)
        #expect(relClose(fit.value("A"), a, 0.02))
        #expect(relClose(fit.value("B"), b, 0.1))
        #expect(relClose(fit.value("C_mid"), cmid, 0.15))
        #expect(fit.r2 > 0.99)
    }

    @Test func scaleRLWindowDropsEarlyPoints() {
        let c = logSpace(9, 13, 20)
        var y = c.map { 0.1 + 0.6 / (1 + pow(1e11 / $0, 1.0)) }
        y[0] = 0.9; y[1] = 0.9  // junk at the start, outside the window
        let fit = Laws.fit(.scaleRL, LawData(x: c, y: y), options: FitOptions(r0: 0.1, asymptoteMax: 1, minX: c[2]))
        #expect(fit.isOK)
        #expect(fit.nPoints == 18)
        #expect(relClose(fit.value("A"), 0.7, 1e-3))
    }

    @Test func powerOffsetRecovers() {
        var rng = SeededRNG(seed: 12)
        let x = logSpace(3, 7, 30)
        let (e, a, al) = (0.2, 50.0, 0.4)
        let y = x.map { e + a * pow($0, -al) + 0.002 * rng.gaussian() }
        let fit = Laws.fit(.powerOffset, LawData(x: x, y: y))
        #expect(fit.isOK, "\(fit.status)")
        #expect(abs(fit.value("E") - e) < 0.02)
        #expect(relClose(fit.value("alpha"), al, 0.08))
        #expect(relClose(fit.value("A"), a, 0.5))
    }

    @Test func log2SigmoidRecovers() {
        var rng = SeededRNG(seed: 13)
        let c = logSpace(9, 14, 30)
        let (lo, hi, k, x0) = (2.0, 5.0, 1.5, log(1e11))
        let y = c.map { exp2(lo + (hi - lo) / (1 + exp(-k * (log($0) - x0))) + 0.03 * rng.gaussian()) }
        let fit = Laws.fit(.log2Sigmoid, LawData(x: c, y: y))
        #expect(fit.isOK, "\(fit.status)")
        #expect(abs(fit.value("lo") - lo) < 0.1)
        #expect(abs(fit.value("hi") - hi) < 0.1)
        #expect(relClose(fit.value("k"), k, 0.25))
        #expect(abs(fit.value("x0") - x0) < 0.2)
    }

    @Test func powerLawRecoversWithWeights() {
        var rng = SeededRNG(seed: 14)
        let x = logSpace(10, 14, 25)
        let (a, b) = (3e-4, 0.55)
        var y = x.map { a * pow($0, b) * exp(0.05 * rng.gaussian()) }
        var w = [Double](repeating: 1, count: x.count)
        y[3] *= 100; w[3] = 0  // an outlier with zero weight must not matter
        let fit = Laws.fit(.powerLaw, LawData(x: x, y: y, weights: w))
        #expect(fit.isOK)
        #expect(abs(fit.value("b") - b) < 0.02)
        #expect(relClose(fit.value("a"), a, 0.6))
        let unweighted = Laws.fit(.powerLaw, LawData(x: x, y: y))
        #expect(abs(unweighted.value("b") - b) > abs(fit.value("b") - b))
    }

    @Test func chinchillaRecovers() {
        let data = SyntheticChinchilla.make(seed: 15, noise: 0.01)
        let fit = Laws.fit(.chinchilla, data, options: FitOptions(huberDelta: 1e-3))
        #expect(fit.isOK, "\(fit.status)")
        let t = SyntheticChinchilla.truth
        #expect(relClose(fit.value("E"), t[0], 0.1))
        #expect(relClose(fit.value("alpha"), t[2], 0.15))
        #expect(relClose(fit.value("beta"), t[4], 0.15))
        // The allocation exponent β/(α+β) is what matters downstream.
        let ratio = fit.value("beta") / (fit.value("alpha") + fit.value("beta"))
        #expect(abs(ratio - t[4] / (t[2] + t[4])) < 0.05)
    }
}

/// Synthetic Chinchilla data on a grid of N × D with multiplicative noise.
enum SyntheticChinchilla {
    /// (E, A, α, B, β)
    static let truth = [0.15, 40.0, 0.45, 25.0, 0.35]

    static func make(seed: UInt64, noise: Double, nN: Int = 6, nD: Int = 8) -> LawData {
        var rng = SeededRNG(seed: seed)
        var n: [Double] = [], d: [Double] = [], l: [Double] = []
        let t = truth
        for nv in logSpace(4, 6.5, nN) {
            for dv in logSpace(2, 5.5, nD) {
                n.append(nv); d.append(dv)
                l.append((t[0] + t[1] / pow(nv, t[2]) + t[3] / pow(dv, t[4])) * exp(noise * rng.gaussian()))
            }
        }
        return LawData(x: n, x2: d, y: l)
    }
}
