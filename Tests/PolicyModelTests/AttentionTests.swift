import Foundation
import KernelsPortable
import PolicyModel
import RLCommon
import Testing

/// The packed causal attention (`Kernels.attentionForward`/`attentionBackward`) against
/// the simple form: dense per-sequence attention in Double with a causal mask.
@Suite struct AttentionTests {
    /// q, k, v of every position (`[N, 3C]`), probabilities, output; and the gradients of
    /// q, k, v for an output gradient `dout`, all in Double, sequence by sequence.
    static func reference(
        qkv: [Float], dout: [Float], lengths: [Int], C: Int, NH: Int
    ) -> (out: [Double], dqkv: [Double]) {
        let hs = C / NH, scale = 1 / Double(hs).squareRoot(), C3 = 3 * C
        let N = lengths.reduce(0, +)
        var out = [Double](repeating: 0, count: N * C), dqkv = [Double](repeating: 0, count: N * C3)
        var s0 = 0
        for T in lengths {
            for h in 0..<NH {
                func q(_ t: Int, _ i: Int) -> Double { Double(qkv[(s0 + t) * C3 + h * hs + i]) }
                func k(_ t: Int, _ i: Int) -> Double { Double(qkv[(s0 + t) * C3 + C + h * hs + i]) }
                func v(_ t: Int, _ i: Int) -> Double { Double(qkv[(s0 + t) * C3 + 2 * C + h * hs + i]) }
                func d(_ t: Int, _ i: Int) -> Double { Double(dout[(s0 + t) * C + h * hs + i]) }
                for t in 0..<T {
                    var p = (0...t).map { j in scale * (0..<hs).reduce(0.0) { $0 + q(t, $1) * k(j, $1) } }
                    let m = p.max()!
                    p = p.map { exp($0 - m) }
                    let z = p.reduce(0, +)
                    p = p.map { $0 / z }
                    for i in 0..<hs { out[(s0 + t) * C + h * hs + i] = (0...t).reduce(0.0) { $0 + p[$1] * v($1, i) } }
                    let dA = (0...t).map { j in (0..<hs).reduce(0.0) { $0 + d(t, $1) * v(j, $1) } }
                    let pdA = zip(p, dA).reduce(0.0) { $0 + $1.0 * $1.1 }
                    for j in 0...t {
                        let dS = p[j] * (dA[j] - pdA)
                        for i in 0..<hs {
                            dqkv[(s0 + t) * C3 + h * hs + i] += scale * dS * k(j, i)
                            dqkv[(s0 + j) * C3 + C + h * hs + i] += scale * dS * q(t, i)
                            dqkv[(s0 + j) * C3 + 2 * C + h * hs + i] += p[j] * d(t, i)
                        }
                    }
                }
            }
            s0 += T
        }
        return (out, dqkv)
    }

    /// Sequences of different lengths packed end to end (one of length 1, lengths across a
    /// multiple of 8), at head sizes 8, 12 (a scalar tail) and 16: every output and every
    /// q, k, v gradient within 2e-5 of the Double reference, so no position reads another
    /// sequence's keys and none reads a key after itself.
    @Test(arguments: [(2, 8), (3, 12), (2, 16)])
    func packedAttentionMatchesDenseDoubleAttention(heads: Int, hs: Int) {
        let C = heads * hs, lengths = [5, 1, 9, 17, 8]
        let layout = PackedLayout(lengths: lengths, heads: heads)
        let N = layout.positions
        var rng = SeededRNG(seed: 11)
        let qkv = (0..<(N * 3 * C)).map { _ in Float(rng.gaussian()) }
        let dout = (0..<(N * C)).map { _ in Float(rng.gaussian()) }
        var out = [Float](repeating: .nan, count: N * C), att = [Float](repeating: .nan, count: layout.attentionFloats)
        var dqkv = [Float](repeating: .nan, count: N * 3 * C), scratch = [Float](repeating: 0, count: 64)
        Kernels.attentionForward(&out, &att, qkv, layout: layout, C: C, NH: heads)
        Kernels.attentionBackward(&dqkv, &scratch, dout, qkv, att, layout: layout, C: C, NH: heads)
        let ref = Self.reference(qkv: qkv, dout: dout, lengths: lengths, C: C, NH: heads)
        for n in 0..<(N * C) { #expect(abs(Double(out[n]) - ref.out[n]) < 2e-5, "out[\(n)]: \(out[n]) vs \(ref.out[n])") }
        for n in 0..<(N * 3 * C) {
            #expect(abs(Double(dqkv[n]) - ref.dqkv[n]) < 2e-5 * max(1, abs(ref.dqkv[n])), "dqkv[\(n)]: \(dqkv[n]) vs \(ref.dqkv[n])")
        }
    }

    /// A packed forward gives each sequence the logits it gets alone (no padding, no
    /// attention across sequences): within 1e-5, since the weight products see other
    /// row counts.
    @Test func packedForwardIsEachSequenceAlone() throws {
        let cfg = ModelConfig(vocab: 11, context: 24, dModel: 16, layers: 2, heads: 2)
        let m = try Transformer(config: cfg, seed: 1)
        randomise(m, seed: 2)
        var rng = SeededRNG(seed: 3)
        let lengths = [7, 1, 24, 12]
        let seqs = lengths.map { l in (0..<l).map { _ in Int32(rng.below(cfg.vocab)) } }
        try m.forward(tokens: seqs.flatMap { $0 }, lengths: lengths)
        let packed = Array(m.logits)
        var at = 0
        for s in seqs {
            try m.forward(tokens: s, batch: 1, length: s.count)
            let alone = Array(m.logits)
            for i in alone.indices { #expect(abs(alone[i] - packed[at + i]) < 1e-5) }
            at += alone.count
        }
        #expect(at == packed.count)
    }
}
