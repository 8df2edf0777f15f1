import PolicyModel
import RLCommon
import Testing

@Suite struct SIMDLevelTests {
    /// The three kernel builds compute the same bits: a packed forward (logits), its
    /// backward (every gradient), an AdamW step (every parameter) and KV-cache sampling
    /// (tokens and log-probabilities), on every level this CPU runs, against the portable
    /// build. (On a CPU without AVX-512 the check covers the levels it has.)
    @Test func everyLevelComputesTheSameBits() throws {
        let cfg = ModelConfig(vocab: 13, context: 40, dModel: 48, layers: 2, heads: 3)
        func run(_ level: SIMDLevel) throws -> [[UInt32]] {
            let m = try Transformer(config: cfg, seed: 1, simd: level)
            randomise(m, seed: 2)
            var rng = SeededRNG(seed: 3)
            let lengths = [9, 1, 40, 17]
            let tokens = lengths.flatMap { l in (0..<l).map { _ in Int32(rng.below(cfg.vocab)) } }
            try m.forward(tokens: tokens, lengths: lengths)
            let logits = m.logits.map(\.bitPattern)
            let targets = tokens.indices.map { $0 + 1 < tokens.count ? tokens[$0 + 1] : -1 }
            let weights = tokens.indices.map { Float(($0 % 5) - 2) / 10 }
            m.zeroGradients()
            try m.setWeightedNLLGradient(targets: targets, weights: weights)
            m.backward()
            let grads = m.gradients.map(\.bitPattern)
            AdamW(for: m).step(m, learningRate: 1e-2)
            let params = m.parameters.map(\.bitPattern)
            var srng = SeededRNG(seed: 4)
            let s = try m.sample(
                prompts: [[1, 4, 5], [1], [1, 7, 8, 9, 3]], options: SamplingOptions(maxNewTokens: 20, eos: 2), rng: &srng)
            let sampled = s.completions.flatMap { $0.tokens.map { UInt32(bitPattern: $0) } + $0.logProbs.map(\.bitPattern) }
            return [logits, grads, params, sampled]
        }
        let reference = try run(.portable)
        let levels = SIMDLevel.supported()
        #expect(levels.contains(.portable))
        for level in levels where level != .portable {
            let got = try run(level)
            for (what, (a, b)) in zip(["logits", "gradients", "parameters", "samples"], zip(got, reference)) {
                #expect(a == b, "\(level) \(what) differ from the portable build's")
            }
        }
    }

    /// A level is chosen from the CPU's flags in preference order (AVX2 before AVX-512:
    /// equally fast where measured, and on more CPUs); one the CPU cannot run is refused
    /// with the features it lacks, and an unknown name with the levels there are.
    @Test func levelsFollowTheCPUFeatures() {
        let avx2: Set<String> = ["sse2", "avx", "avx2", "fma"]
        let avx512 = avx2.union(["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"])
        #expect(SIMDLevel.best(flags: avx512) == .avx2)
        #expect(SIMDLevel.supported(flags: avx512) == [.avx2, .avx512, .portable])
        #expect(SIMDLevel.best(flags: avx2) == .avx2)
        #expect(SIMDLevel.best(flags: ["sse2"]) == .portable)
        #expect(SIMDLevel.supported(flags: avx2) == [.avx2, .portable])
        #expect(throws: SIMDLevel.Failure.self) { try SIMDLevel.checked("avx512", flags: avx2) }
        do {
            _ = try SIMDLevel.checked("avx512", flags: avx2.union(["avx512f"]))
            Issue.record("accepted a level the CPU lacks")
        } catch {
            guard case .unsupported(let level, let missing, _) = error else { Issue.record("\(error)"); return }
            #expect(level == .avx512 && missing == ["avx512bw", "avx512dq", "avx512vl", "avx512cd"])
            #expect(error.description.contains("avx512bw, avx512dq, avx512vl, avx512cd"))
        }
        #expect((try? SIMDLevel.checked("AVX2", flags: avx2)) == .avx2)
        #expect(throws: SIMDLevel.Failure.unknown("sse9")) { try SIMDLevel.checked("sse9", flags: avx512) }
    }
}
