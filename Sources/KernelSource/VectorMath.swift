// Vectorised element-wise math for the engine's hot loops: exp, max, softmax, GELU,
// dot products and axpy, on 8-wide SIMD vectors, with no libm call per element.
//
// exp uses Cody–Waite range reduction x = n·ln2 + r (|r| ≤ ln2/2), a degree-7 Taylor
// polynomial for eʳ (truncation error < 1e-8 relative) and 2ⁿ built in the exponent
// bits; the result is within a few ulp (≈ 3e-7 relative) of the exact value over the
// clamped range [−87.3, 88.7] (below it returns ≈ 1e-38, which every caller treats as 0).
// Every function is a deterministic function of its input: a tail shorter than a vector
// is padded and run through the same vector code as the body (exp, GELU) or finished
// by scalar code (max, dot, axpy).

/// Eight floats: two SSE registers on baseline x86-64, one AVX register.
public typealias Float8 = SIMD8<Float>

public enum VectorMath {
    @usableFromInline static let log2e: Float = 1.442_695_04
    @usableFromInline static let ln2hi: Float = 0.693_359_375
    @usableFromInline static let ln2lo: Float = -2.121_944_4e-4
    /// 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer, kept in the
    /// low mantissa bits.
    @usableFromInline static let roundMagic: Float = 12_582_912

    // The standard library's pointwiseMin/Max, clamped and max() are generic calls with
    // IEEE minimum/maximum semantics; a compare and a blend compile to two instructions.
    @inlinable @inline(__always)
    static func vmax(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: a .< b) }

    @inlinable @inline(__always)
    static func vmin(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: b .< a) }

    @inlinable @inline(__always)
    static func horizontalMax(_ v: Float8) -> Float {
        let lo = v.lowHalf, hi = v.highHalf
        let h = lo.replacing(with: hi, where: lo .< hi)
        return Swift.max(Swift.max(h[0], h[1]), Swift.max(h[2], h[3]))
    }

    /// eˣ lane by lane.
    @inlinable @inline(__always)
    public static func exp(_ v: Float8) -> Float8 {
        let x = vmin(vmax(v, Float8(repeating: -87.3)), Float8(repeating: 88.7))
        let t = x * log2e + roundMagic
        let n = t - roundMagic
        let r = (x - n * ln2hi) - n * ln2lo
        var p = r * (1 / 5040) + (1 / 720)
        p = p * r + (1 / 120)
        p = p * r + (1 / 24)
        p = p * r + (1 / 6)
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // t's bit pattern is 0x4B40_0000 + n; 2ⁿ has exponent bits n + 127.
        let bits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- (0x4B40_0000 - 127)
        return p * unsafeBitCast(bits &<< 23, to: Float8.self)
    }

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Float8 {
        UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
    }

    @inlinable @inline(__always)
    static func store(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
    }

    /// The first `count` (< 8) floats at `p`, the other lanes `pad`.
    @inlinable @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, pad: Float) -> Float8 {
        var v = Float8(repeating: pad)
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    @inlinable @inline(__always)
    static func storePartial(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for j in 0..<count { p[j] = v[j] }
    }

    /// Applies `f` to `count` floats from `inp` into `out` (which may alias `inp`).
    @inlinable @inline(__always)
    static func map(
        _ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ count: Int, _ f: (Float8) -> Float8
    ) {
        var i = 0
        while i + 8 <= count {
            store(f(load(inp + i)), out + i)
            i += 8
        }
        if i < count { storePartial(f(loadPartial(inp + i, count - i, pad: 0)), out + i, count - i) }
    }

    /// out[i] = exp(inp[i] − shift); returns Σ out[i] (summed in lanes, then across).
    @inlinable @discardableResult
    public static func exp(
        _ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int, shift: Float = 0
    ) -> Float {
        var acc = Float8(repeating: 0)
        var i = 0
        let s = Float8(repeating: shift)
        while i + 8 <= count {
            let e = exp(load(inp + i) - s)
            store(e, out + i)
            acc += e
            i += 8
        }
        var sum = acc.sum()
        if i < count {
            let e = exp(loadPartial(inp + i, count - i, pad: 0) - s)
            storePartial(e, out + i, count - i)
            for j in 0..<(count - i) { sum += e[j] }
        }
        return sum
    }

    /// The largest of `count` ≥ 1 floats.
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = Float8(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            m = vmax(m, load(x + i))
            i += 8
        }
        var mx = horizontalMax(m)
        while i < count {
            if x[i] > mx { mx = x[i] }
            i += 1
        }
        return mx
    }

    /// Softmax of `count` ≥ 1 floats, in place.
    @inlinable
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let mx = max(x, count: count)
        let sum = exp(x, x, count: count, shift: mx)
        scale(x, count: count, by: 1 / sum)
    }

    /// x[i] *= a.
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by a: Float) {
        let av = Float8(repeating: a)
        map(x, x, count) { $0 * av }
    }

    /// Σ a[i]·b[i].
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = Float8(repeating: 0)
        var i = 0
        while i + 8 <= count {
            acc += load(a + i) * load(b + i)
            i += 8
        }
        var s = acc.sum()
        while i < count {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// y[i] += a·x[i].
    @inlinable
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let av = Float8(repeating: a)
        var i = 0
        while i + 8 <= count {
            store(load(y + i) + av * load(x + i), y + i)
            i += 8
        }
        while i < count {
            y[i] += a * x[i]
            i += 1
        }
    }

    // MARK: GELU, tanh approximation

    /// √(2/π)
    public static let geluScale: Float = 0.797_884_56
    public static let geluCubic: Float = 0.044_715

    /// GELU-tanh and its gate: with u = √(2/π)(x + 0.044715x³),
    /// gelu(x) = ½x(1 + tanh u) = x·σ(2u), since ½(1 + tanh u) = σ(2u) = 1/(1 + e^(−2u)).
    /// Writes gelu(x) to `out` and σ(2u) to `gate` (kept for the backward pass); `out` may
    /// alias `inp`.
    @inlinable
    public static func gelu(
        _ out: UnsafeMutablePointer<Float>, gate: UnsafeMutablePointer<Float>?, _ inp: UnsafePointer<Float>, count: Int
    ) {
        @inline(__always) func body(_ x: Float8) -> (Float8, Float8) {
            let u = geluScale * (x + geluCubic * x * x * x)
            let s = 1 / (1 + exp(-2 * u))
            return (x * s, s)
        }
        var i = 0
        while i + 8 <= count {
            let (y, s) = body(load(inp + i))
            if let gate { store(s, gate + i) }
            store(y, out + i)
            i += 8
        }
        if i < count {
            let (y, s) = body(loadPartial(inp + i, count - i, pad: 0))
            if let gate { storePartial(s, gate + i, count - i) }
            storePartial(y, out + i, count - i)
        }
    }

    /// dinp = gelu'(x)·dout from the gate σ = σ(2u) saved by `gelu`:
    /// gelu'(x) = σ + x·2σ(1 − σ)·u'(x), u'(x) = √(2/π)(1 + 3·0.044715x²).
    /// `dinp` may alias `dout`.
    @inlinable
    public static func geluBackward(
        _ dinp: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, gate: UnsafePointer<Float>,
        _ dout: UnsafePointer<Float>, count: Int
    ) {
        @inline(__always) func body(_ x: Float8, _ s: Float8, _ d: Float8) -> Float8 {
            let du = geluScale * (1 + (3 * geluCubic) * x * x)
            return (s + 2 * x * s * (1 - s) * du) * d
        }
        var i = 0
        while i + 8 <= count {
            store(body(load(inp + i), load(gate + i), load(dout + i)), dinp + i)
            i += 8
        }
        if i < count {
            let r = count - i
            storePartial(body(loadPartial(inp + i, r, pad: 0), loadPartial(gate + i, r, pad: 0), loadPartial(dout + i, r, pad: 0)), dinp + i, r)
        }
    }
}
