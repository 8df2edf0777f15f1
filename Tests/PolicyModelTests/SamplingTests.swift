import Foundation
import PolicyModel
import RLCommon
import Testing

@Suite struct SamplingTests {
    /// Log-probabilities of `seq[1...]` from one full forward pass at temperature `temp`.
    func fullForwardLogProbs(_ m: Transformer, _ seq: [Int32], temperature: Float) throws -> [Float] {
        let T = seq.count - 1
        try m.forward(tokens: Array(seq.prefix(T)), batch: 1, length: T)
        let V = m.config.vocab
        let z = m.logits
        return (0..<T).map { t in
            var mx = -Float.infinity
            for v in 0..<V { mx = max(mx, z[t * V + v] / temperature) }
            var s: Double = 0
            for v in 0..<V { s += exp(Double(z[t * V + v] / temperature - mx)) }
            return z[t * V + Int(seq[t + 1])] / temperature - mx - Float(log(s))
        }
    }

    @Test(arguments: [(NormKind.layerNorm, Float(1)), (.rmsNorm, 1), (.layerNorm, 0.7)])
    func kvCacheMatchesFullForward(norm: NormKind, temperature: Float) throws {
        let cfg = ModelConfig(vocab: 11, context: 16, dModel: 16, layers: 2, heads: 4, norm: norm)
        let m = try Transformer(config: cfg, seed: 7)
        randomise(m, seed: 8)
        let prompts: [[Int32]] = [[1], [1, 4, 5], [1, 2, 3, 4, 5, 6], [1, 9]]
        var rng = SeededRNG(seed: 9)
        let r = try m.sample(
            prompts: prompts, options: SamplingOptions(temperature: temperature, maxNewTokens: 8, eos: 10), rng: &rng)
        var total = 0
        for (i, c) in r.completions.enumerated() {
            #expect(!c.tokens.isEmpty)
            #expect(c.tokens.count == c.logProbs.count)
            #expect(c.stoppedAtEOS == (c.tokens.last == 10))
            let seq = prompts[i] + c.tokens
            let full = try fullForwardLogProbs(m, seq, temperature: temperature)
            for (j, lp) in c.logProbs.enumerated() {
                let ref = full[prompts[i].count - 1 + j]
                #expect(abs(lp - ref) < 1e-4, "row \(i) token \(j): cached \(lp) vs full \(ref)")
            }
            total += seq.count - 1
        }
        // Every processed position is accounted by the FLOP formula.
        #expect(r.processedTokens == total)
        let expected = r.completions.enumerated().reduce(0.0) {
            $0 + FLOPs.forwardSequence(cfg, length: prompts[$1.offset].count + $1.element.tokens.count - 1)
        }
        #expect(abs(r.forwardFLOPs - expected) <= 1e-9 * expected)
    }

    @Test func topPKeepsOnlyTheNucleus() throws {
        let cfg = ModelConfig(vocab: 9, context: 8, dModel: 8, layers: 1, heads: 2)
        let m = try Transformer(config: cfg, seed: 1)
        randomise(m, seed: 2, scale: 1.0)
        // The nucleus of the first position's distribution, computed from a full forward.
        try m.forward(tokens: [3], batch: 1, length: 1)
        let z = Array(m.logits)
        let p = z.map { exp(Double($0 - z.max()!)) }
        let total = p.reduce(0, +)
        let order = p.indices.sorted { p[$0] > p[$1] }
        var nucleus = Set<Int>(), cum = 0.0
        for i in order {
            nucleus.insert(i)
            cum += p[i]
            if cum >= 0.6 * total { break }
        }
        #expect(nucleus.count < cfg.vocab)
        let nucleusMass = nucleus.reduce(0.0) { $0 + p[$1] }
        var rng = SeededRNG(seed: 3)
        let prompts = Array(repeating: [Int32(3)], count: 200)
        let r = try m.sample(prompts: prompts, options: SamplingOptions(topP: 0.6, maxNewTokens: 1, eos: nil), rng: &rng)
        for c in r.completions {
            let tok = Int(c.tokens[0])
            #expect(nucleus.contains(tok))
            #expect(abs(Double(c.logProbs[0]) - log(p[tok] / nucleusMass)) < 1e-4)
        }
    }

    @Test func samplingIsDeterministicPerSeed() throws {
        let m = try Transformer(config: ModelConfig(vocab: 11, context: 12, dModel: 16, layers: 2, heads: 2), seed: 4)
        randomise(m, seed: 5)
        let prompts: [[Int32]] = [[1, 2], [1], [1, 2, 3]]
        let opts = SamplingOptions(maxNewTokens: 9, eos: 10)
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42)
        let x = try m.sample(prompts: prompts, options: opts, rng: &a)
        let y = try m.sample(prompts: prompts, options: opts, rng: &b)
        #expect(x.completions == y.completions)
    }

    @Test func badPromptsAreErrors() throws {
        let m = try Transformer(config: ModelConfig(vocab: 5, context: 4, dModel: 8, layers: 1, heads: 2), seed: 1)
        var rng = SeededRNG(seed: 1)
        let opts = SamplingOptions(maxNewTokens: 2, eos: 4)
        #expect(throws: ModelError.emptyPrompt(index: 1)) { try m.sample(prompts: [[1], []], options: opts, rng: &rng) }
        #expect(throws: ModelError.tokenOutOfRange(token: 7, vocab: 5)) {
            try m.sample(prompts: [[1, 7]], options: opts, rng: &rng)
        }
        #expect(throws: ModelError.sequenceTooLong(length: 5, context: 4)) {
            try m.sample(prompts: [[1, 2, 3, 4]], options: opts, rng: &rng)
        }
    }
}
