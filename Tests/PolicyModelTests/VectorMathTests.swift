import Foundation
import KernelInterface
import KernelsPortable
import PolicyModel
import RLCommon
import Testing

/// The vectorised element-wise kernels against exact (Double, libm) formulas, over the
/// whole range of inputs the engine can produce.
@Suite struct VectorMathTests {
    /// Inputs: a dense sweep of [−12, 12], log-spaced magnitudes 1e-30…1e30 of both signs,
    /// zero, and lengths that are not multiples of the vector width (tails).
    static let inputs: [Float] = {
        var x: [Float] = (0...4800).map { Float(-12 + Double($0) * 0.005) }
        for e in stride(from: -30.0, through: 30.0, by: 0.05) {
            x.append(Float(pow(10, e)))
            x.append(-Float(pow(10, e)))
        }
        x.append(0)
        x.append(-0.0)
        return x
    }()

    /// GELU-tanh in Double. ½x(1 + tanh u) is evaluated as x·σ(2u) = x/(1 + e^(−2u)), the
    /// same function: in the tanh form, 1 + tanh u cancels to 0 for u < −19 (x < −9) in
    /// Double too, while the true value is still ~1e-30.
    static func exactGelu(_ x: Double) -> Double {
        let u = (2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)
        return x / (1 + Foundation.exp(-2 * u))
    }

    /// d/dx of x·σ(2u) = σ + 2x·σ(1 − σ)·u'(x) (the tanh form's derivative, without its cancellation).
    static func exactGeluDerivative(_ x: Double) -> Double {
        let c = (2 / Double.pi).squareRoot()
        let sig = 1 / (1 + Foundation.exp(-2 * c * (x + 0.044715 * x * x * x)))
        return sig + 2 * x * sig * (1 - sig) * c * (1 + 3 * 0.044715 * x * x)
    }

    @Test func theSigmoidFormIsTheTanhFormWhereBothAreWellConditioned() {
        for x in stride(from: -8.0, through: 8.0, by: 0.01) {
            let tanhForm = 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
            #expect(abs(tanhForm - Self.exactGelu(x)) <= 1e-12 * max(1, abs(x)))
        }
    }

    /// |a − b| ≤ rel·|b|, or ≤ tiny where the exact value is below Float's normal range.
    static func close(_ a: Float, _ b: Double, rel: Double, tiny: Double = 1e-30) -> Bool {
        if !b.isFinite { return Double(a) == b }
        if abs(b) < 1e-30 { return abs(Double(a) - b) <= tiny }
        return abs(Double(a) - b) <= rel * abs(b)
    }

    @Test func expIsAccurateToAFewUlps() {
        let x = Self.inputs.filter { $0 >= -87 && $0 <= 88 } + (0..<200).map { -87 + Float($0) * 0.875 }
        var y = [Float](repeating: 0, count: x.count)
        let sum = VectorMath.exp(&y, x, count: x.count)
        var worst = 0.0, exactSum = 0.0
        for (xi, yi) in zip(x, y) {
            let e = Foundation.exp(Double(xi))
            exactSum += e
            worst = max(worst, abs(Double(yi) - e) / e)
        }
        #expect(worst < 1e-6, "worst relative error \(worst)")
        #expect(abs(Double(sum) - exactSum) <= 1e-5 * exactSum)
        // Far below the range: (near) zero, never garbage from the exponent bits.
        var low: [Float] = [-88, -100, -1e4, -.infinity, -1e30]
        VectorMath.exp(&low, low, count: low.count)
        #expect(low.allSatisfy { $0 >= 0 && $0 < 1e-37 })
    }

    /// Relative error within 2e-6 times the function's condition number |x·gelu'(x)/gelu(x)|
    /// (plus one): on |x| ≲ 3 that is ~2e-6; for x ≪ 0 the value ~x·e^(−1.6x−0.07x³) is so
    /// sensitive to x that one float rounding of the input already moves it by more
    /// (any float implementation, libm's tanhf included, shares this).
    @Test func geluMatchesTheTanhFormulaOverTheFloatRange() {
        let x = Self.inputs
        var y = [Float](repeating: .nan, count: x.count), gate = y
        VectorMath.gelu(&y, gate: &gate, x, count: x.count)
        var worstWellConditioned = 0.0
        for (xi, yi) in zip(x, y) {
            let xd = Double(xi), e = Self.exactGelu(xd)
            let cond = e == 0 ? 1 : abs(xd * Self.exactGeluDerivative(xd) / e)
            #expect(Self.close(yi, e, rel: 2e-6 * (1 + cond)), "gelu(\(xi)) = \(yi), exact \(e)")
            if abs(xd) <= 3 && e != 0 { worstWellConditioned = max(worstWellConditioned, abs(Double(yi) - e) / abs(e)) }
        }
        #expect(worstWellConditioned < 1e-6, "worst relative error on [-3, 3]: \(worstWellConditioned)")
        // In place (out aliases inp), without a gate: the same numbers.
        var inPlace = x
        VectorMath.gelu(&inPlace, gate: nil, inPlace, count: x.count)
        #expect(inPlace.map(\.bitPattern) == y.map(\.bitPattern))
    }

    @Test func geluBackwardMatchesTheExactDerivative() {
        let x = Self.inputs.filter { abs($0) < 1e6 }
        var y = [Float](repeating: 0, count: x.count), gate = y
        VectorMath.gelu(&y, gate: &gate, x, count: x.count)
        let dout = (0..<x.count).map { Float(1 + ($0 % 7)) * 0.25 }
        var dinp = [Float](repeating: 0, count: x.count)
        VectorMath.geluBackward(&dinp, x, gate: gate, dout, count: x.count)
        for i in x.indices {
            let e = Self.exactGeluDerivative(Double(x[i])) * Double(dout[i])
            // The derivative crosses zero near x ≈ −0.75: compare absolutely there.
            #expect(abs(Double(dinp[i]) - e) <= 2e-6 * max(abs(e), Double(dout[i]) * 1e-1), "x = \(x[i])")
        }
    }

    @Test func softmaxMaxAndDotMatchDoublePrecision() {
        var rng = SeededRNG(seed: 11)
        for n in [1, 3, 7, 8, 9, 23, 64, 97] {
            let x = (0..<n).map { _ in Float(rng.gaussian() * 3) }
            let mx = Double(x.max()!)
            let z = x.reduce(0.0) { $0 + Foundation.exp(Double($1) - mx) }
            var p = x
            VectorMath.softmax(&p, count: n)
            for i in 0..<n { #expect(abs(Double(p[i]) - Foundation.exp(Double(x[i]) - mx) / z) < 1e-6) }
            #expect(VectorMath.max(x, count: n) == x.max()!)
            let dot = VectorMath.dot(x, p, count: n)
            #expect(abs(Double(dot) - zip(x, p).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }) < 1e-5)
        }
    }

    /// One query's attention (`Kernels.attendRow`, sampling's and training's kernel) is the
    /// per-key formulation, bit for bit: scores by `VectorMath.dot` key by key,
    /// probabilities by `causalSoftmaxRow`, the output by `VectorMath.axpy` key by key.
    /// Head sizes cover output groups of one to four vectors (8, 16, 24, 32), several
    /// groups (40, 64, 72) and a scalar tail (12, 20); lengths cover fewer than four keys,
    /// a multiple of four and remainders; keys sit C apart (a cache) or 3C apart (qkv
    /// activations). Output and probabilities are also within 1e-5 of Double attention.
    @Test func attendRowIsThePerKeyLoopBitForBit() {
        var rng = SeededRNG(seed: 5)
        for (heads, hs) in [(2, 8), (3, 12), (2, 16), (1, 20), (2, 24), (3, 32), (2, 40), (4, 64), (1, 72)] {
            let C = heads * hs, scale = 1 / Float(hs).squareRoot()
            for (t, ld) in [(0, C), (1, 3 * C), (2, C), (3, C), (4, 3 * C), (6, C), (11, 3 * C), (31, C)] {
                let keys = (0..<((t + 1) * ld)).map { _ in Float(rng.gaussian()) }
                let values = (0..<((t + 1) * ld)).map { _ in Float(rng.gaussian()) }
                let q = (0..<C).map { _ in Float(rng.gaussian() * 2) }
                let width = attentionStride(t + 1)
                var out = [Float](repeating: .nan, count: C), probs = [Float](repeating: .nan, count: heads * width)
                Kernels.attendRow(&out, &probs, q: q, k: keys, v: values, ld: ld, t: t, C: C, NH: heads, scale: scale)
                var ref = [Float](repeating: 0, count: C), s = [Float](repeating: 0, count: width)
                for h in 0..<heads {
                    for j in 0...t {
                        s[j] = q.withUnsafeBufferPointer { qp in
                            keys.withUnsafeBufferPointer { kp in
                                scale * VectorMath.dot(qp.baseAddress! + h * hs, kp.baseAddress! + j * ld + h * hs, count: hs)
                            }
                        }
                    }
                    Kernels.causalSoftmaxRow(&s, count: t + 1, width: width)
                    #expect(probs[(h * width)..<((h + 1) * width)].map(\.bitPattern) == s.map(\.bitPattern), "hs \(hs), t \(t)")
                    ref.withUnsafeMutableBufferPointer { rp in
                        values.withUnsafeBufferPointer { vp in
                            for j in 0...t {
                                VectorMath.axpy(s[j], vp.baseAddress! + j * ld + h * hs, rp.baseAddress! + h * hs, count: hs)
                            }
                        }
                    }
                    // Double attention for this head
                    var w: [Double] = []
                    for j in 0...t {
                        var dot = 0.0
                        for i in 0..<hs { dot += Double(q[h * hs + i]) * Double(keys[j * ld + h * hs + i]) }
                        w.append(dot * Double(scale))
                    }
                    let m = w.max()!
                    w = w.map { Foundation.exp($0 - m) }
                    let z = w.reduce(0, +)
                    for j in 0...t { #expect(abs(Double(probs[h * width + j]) - w[j] / z) < 1e-6) }
                    for i in 0..<hs {
                        var exact = 0.0
                        for j in 0...t { exact += w[j] / z * Double(values[j * ld + h * hs + i]) }
                        #expect(abs(Double(out[h * hs + i]) - exact) < 1e-5, "hs \(hs), t \(t)")
                    }
                }
                #expect(out.map(\.bitPattern) == ref.map(\.bitPattern), "heads \(heads), hs \(hs), t \(t)")
            }
        }
    }

    /// A causal attention row's softmax is `VectorMath.softmax` of its first `count` scores
    /// and zeros after, bit for bit, for every count of widths 8, 16, 24 and 64 (whole and
    /// partial last vectors) and of width 13 (not a multiple of 8: the plain path), with
    /// scores spread wide enough that some exps underflow.
    @Test func causalSoftmaxRowIsSoftmaxThenZerosBitForBit() {
        var rng = SeededRNG(seed: 9)
        for width in [8, 13, 16, 24, 64] {
            for count in 1...width {
                let scores = (0..<width).map { _ in Float(rng.gaussian() * 30) }
                var row = scores, ref = scores
                Kernels.causalSoftmaxRow(&row, count: count, width: width)
                VectorMath.softmax(&ref, count: count)
                for j in count..<width { ref[j] = 0 }
                #expect(row.map(\.bitPattern) == ref.map(\.bitPattern), "width \(width), count \(count)")
            }
        }
    }
}
