import Foundation

/// A 64-bit FNV-1a hash that is stable across processes, machines and Swift versions
/// (unlike `Hasher`, which is randomly seeded per process). Used for cache keys, cell
/// identities and deriving RNG sub-streams.
public struct StableHash: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    public mutating func combine(bytes: some Sequence<UInt8>) {
        for b in bytes {
            value ^= UInt64(b)
            value &*= 0x0000_0100_0000_01B3
        }
    }

    public mutating func combine(_ x: UInt64) {
        withUnsafeBytes(of: x.littleEndian) { combine(bytes: $0) }
    }

    public mutating func combine(_ s: String) {
        combine(UInt64(s.utf8.count))
        combine(bytes: s.utf8)
    }

    /// Hex digest of `prefix` followed by `value` encoded as JSON with sorted keys (or by
    /// `fallback` if it cannot be encoded): the identity of a configuration, stable across
    /// processes and machines (base keys, cell ids, pool keys).
    public static func hex(_ prefix: String, json value: some Encodable, fallback: String = "") -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return hex(prefix + ((try? enc.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? fallback))
    }

    /// Hex digest of a string's hash, 16 characters.
    public static func hex(_ s: String) -> String {
        var h = StableHash()
        h.combine(s)
        let hex = String(h.value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
