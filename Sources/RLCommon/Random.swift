import Foundation

/// Seeded pseudo-random numbers for everything in rlscale.
///
/// All randomness in the harness flows from explicit `SeededRNG` values: no global
/// generator, no `SystemRandomNumberGenerator`. The generator is xoshiro256** seeded
/// through SplitMix64, so a 64-bit seed fully determines every stream.
public struct SeededRNG: RandomNumberGenerator, Sendable, Hashable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Creates a generator whose whole stream is a function of `seed`.
    public init(seed: UInt64) {
        var sm = seed
        s0 = SeededRNG.splitMix(&sm)
        s1 = SeededRNG.splitMix(&sm)
        s2 = SeededRNG.splitMix(&sm)
        s3 = SeededRNG.splitMix(&sm)
    }

    /// Creates an independent generator for a named sub-stream (for example one per
    /// task, or one for initialisation and one for sampling) without consuming this one.
    public func derived(_ label: String) -> SeededRNG {
        var h = StableHash()
        h.combine(s0); h.combine(s1); h.combine(s2); h.combine(s3)
        h.combine(label)
        return SeededRNG(seed: h.value)
    }

    private static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal by Box–Muller (one draw per call; the pair's second value is dropped
    /// so that the stream position depends only on the number of calls).
    public mutating func gaussian() -> Double {
        var u1 = uniform()
        while u1 <= Double.leastNormalMagnitude { u1 = uniform() }
        let u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Uniform integer in `0..<bound` (bound > 0), unbiased (Lemire's method).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }
}

