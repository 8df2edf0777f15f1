import Foundation
import PolicyModel
import RLCommon
import Testing

/// Multi-turn sampling: a continuation's forced tokens are read like a prompt, in the same
/// KV cache, and charged like every other processed position.
@Suite struct ContinuationTests {
    let config = ModelConfig(vocab: 12, context: 40, dModel: 16, layers: 2, heads: 2)
    let eos: Int32 = 2

    @Test func forcedTokensAreReadLikeAPromptAndCharged() throws {
        setBLASThreads(1)
        let m = try Transformer(config: config, seed: 3)
        randomise(m, seed: 4, scale: 0.5)
        let prompt: [Int32] = [1, 5, 6, 3]
        let forced: [Int32] = [7, 3]
        let opts = SamplingOptions(temperature: 1, maxNewTokens: 9, eos: eos)
        // Two turns: the first (limit 5) gets the forced tokens and a second turn of up to 6.
        var calls: [[Int32]] = []
        var rng = SeededRNG(seed: 11)
        let r = try m.sample(prompts: [prompt], options: opts, limits: [5], rng: &rng) { row, generated in
            calls.append(generated.tokens)
            return calls.count == 1 ? TurnContinuation(forced: forced, limit: 6) : nil
        }
        #expect(calls.count == 2)
        let c = r.completions[0]
        let first = calls[0]
        #expect(first.count <= 5 && (first.count == 5 || first.last == eos))
        #expect(Array(c.tokens.prefix(first.count + forced.count)) == first + forced)
        let second = Array(c.tokens[(first.count + forced.count)...])
        #expect(second.count >= 1 && second.count <= 6)
        #expect(c.logProbs[first.count..<(first.count + forced.count)].allSatisfy { $0 == 0 })
        // Every position but the last sampled token's is processed once, forced ones included.
        let length = prompt.count + c.tokens.count - 1
        #expect(r.processedTokens == length)
        var flops = 0.0
        for t in 0..<length { flops += FLOPs.forwardToken(config, position: t) }
        #expect(r.forwardFLOPs == flops)
        // The same draws without a continuation: the first turn alone, then the second turn
        // as a plain sample whose prompt is everything before it, continuing the generator.
        var again = SeededRNG(seed: 11)
        let a = try m.sample(prompts: [prompt], options: opts, limits: [5], rng: &again).completions[0]
        #expect(a.tokens == first && a.logProbs == Array(c.logProbs.prefix(first.count)))
        let b = try m.sample(prompts: [prompt + first + forced], options: opts, limits: [6], rng: &again).completions[0]
        #expect(b.tokens == second, "forced tokens must be read exactly like prompt tokens")
        #expect(b.logProbs == Array(c.logProbs.suffix(second.count)))
        #expect(b.stoppedAtEOS == c.stoppedAtEOS)
    }

    /// A continuation that ends every row at once draws exactly what no continuation draws.
    @Test func aContinuationThatStopsChangesNothing() throws {
        let m = try Transformer(config: config, seed: 5)
        randomise(m, seed: 6, scale: 0.5)
        let prompts: [[Int32]] = [[1, 4, 3], [1, 8, 9, 10, 3], [1, 3]]
        let opts = SamplingOptions(temperature: 1, maxNewTokens: 12, eos: eos)
        var r1 = SeededRNG(seed: 2), r2 = SeededRNG(seed: 2)
        let plain = try m.sample(prompts: prompts, options: opts, limits: [12, 4, 7], rng: &r1)
        var asked = 0
        let cont = try m.sample(prompts: prompts, options: opts, limits: [12, 4, 7], rng: &r2) { _, _ in
            asked += 1
            return nil
        }
        #expect(plain.completions == cont.completions && plain.forwardFLOPs == cont.forwardFLOPs)
        #expect(asked == prompts.count)
        #expect(r1.uniform() == r2.uniform())
    }
}
