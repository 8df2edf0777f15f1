import COpenBLAS
import Foundation
import RLCommon

/// Throughput of the engine on this machine, as ratios to the sgemm peak measured in the
/// same run (model FLOPs utilisation, MFU). Used by `rlscale bench`.
public enum EngineBenchmark {
    public struct Case: Sendable {
        public var name: String
        public var config: ModelConfig
        public var batch: Int
        public init(name: String, config: ModelConfig, batch: Int) {
            self.name = name
            self.config = config
            self.batch = batch
        }
    }

    public struct Result: Codable, Sendable {
        public var name: String
        public var dModel: Int
        public var layers: Int
        public var heads: Int
        public var vocab: Int
        public var params: Int
        public var nonEmbeddingParams: Int
        public var batch: Int
        public var context: Int
        public var trainTokensPerS: Double
        public var sampleTokensPerS: Double
        public var trainGflops: Double
        public var sampleGflops: Double
        public var trainMfu: Double
        public var sampleMfu: Double

        enum CodingKeys: String, CodingKey {
            case name, params, batch, context, layers, heads, vocab
            case dModel = "d_model"
            case nonEmbeddingParams = "non_embedding_params"
            case trainTokensPerS = "train_tokens_per_s", sampleTokensPerS = "sample_tokens_per_s"
            case trainGflops = "train_gflops", sampleGflops = "sample_gflops"
            case trainMfu = "train_mfu", sampleMfu = "sample_mfu"
        }
    }

    public struct Report: Codable, Sendable {
        public var sgemmPeakGflops: Double
        public var threads: Int
        /// The OpenBLAS core the figures were measured with, and the CPU.
        public var blasCore: String
        public var cpuModel: String
        /// The SIMD level of the engine's kernels.
        public var simdLevel: String
        public var configs: [Result]
        public init(sgemmPeakGflops: Double, threads: Int, configs: [Result]) {
            self.sgemmPeakGflops = sgemmPeakGflops
            self.threads = threads
            self.configs = configs
            blasCore = BLASCore.current
            cpuModel = BLASCore.cpuModel()
            simdLevel = SIMDLevel.active.rawValue
        }
        enum CodingKeys: String, CodingKey {
            case sgemmPeakGflops = "sgemm_peak_gflops", threads, configs
            case blasCore = "blas_core", cpuModel = "cpu_model", simdLevel = "simd_level"
        }
    }

    /// The base ladder's shapes as cells use them (`xs`, `s`, `m`, `l`: vocabulary 23),
    /// then three wider engine configs (`tiny`, `small`, `large`: vocabulary 48, the largest
    /// d_model 256 with 4 layers); all at context 64 and batch 64 sequences.
    public static let defaultCases: [Case] = ladderCases + [
        Case(name: "tiny", config: ModelConfig(vocab: 48, context: 64, dModel: 64, layers: 2, heads: 2), batch: 64),
        Case(name: "small", config: ModelConfig(vocab: 48, context: 64, dModel: 128, layers: 4, heads: 4), batch: 64),
        Case(name: "large", config: ModelConfig(vocab: 48, context: 64, dModel: 256, layers: 4, heads: 4), batch: 64),
    ]

    /// One case per size of the base ladder (`BaseLadder` in BasePolicies, mirrored here:
    /// the engine sits below the task layer), vocabulary 23, context 64, batch 64.
    public static let ladderCases: [Case] = [("xs", 16, 2, 2), ("s", 32, 2, 2), ("m", 64, 2, 2), ("l", 96, 3, 3)].map {
        Case(name: $0.0, config: ModelConfig(vocab: 23, context: 64, dModel: $0.1, layers: $0.2, heads: $0.3), batch: 64)
    }

    /// Best achieved GFLOP/s of square `cblas_sgemm` products (sizes 256–1024) at the
    /// current BLAS thread count.
    public static func sgemmPeak(minSeconds: Double = 0.3) -> Double {
        var best = 0.0
        for n in [256, 512, 1024] {
            let a = FloatBuffer(n * n), b = FloatBuffer(n * n), c = FloatBuffer(n * n)
            var rng = SeededRNG(seed: UInt64(n))
            for i in 0..<(n * n) {
                a.base[i] = Float(rng.uniform() - 0.5)
                b.base[i] = Float(rng.uniform() - 0.5)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a.base, Int32(n), b.base, Int32(n), 0, c.base, Int32(n))  // warm-up
            var reps = 0
            let t0 = monotonicSeconds()
            var t1 = t0
            repeat {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a.base, Int32(n), b.base, Int32(n), 0, c.base, Int32(n))
                reps += 1
                t1 = monotonicSeconds()
            } while t1 - t0 < minSeconds
            best = max(best, 2 * Double(n * n * n) * Double(reps) / (t1 - t0) / 1e9)
        }
        return best
    }

    /// Measures one case: training (forward, backward, AdamW) and KV-cache sampling.
    public static func measure(_ c: Case, peak: Double, minSeconds: Double = 1.0) throws(ModelError) -> Result {
        let cfg = c.config, B = c.batch, T = cfg.context
        let model = try Transformer(config: cfg, seed: 1)
        let opt = AdamW(for: model)
        var rng = SeededRNG(seed: 2)
        var tokens = [Int32](repeating: 0, count: B * T)
        var targets = [Int32](repeating: 0, count: B * T)
        for i in 0..<(B * T) { tokens[i] = Int32(rng.below(cfg.vocab)) }
        for i in 0..<(B * T) { targets[i] = (i + 1) % T == 0 ? -1 : tokens[i + 1] }
        let weights = [Float](repeating: 1 / Float(B * T), count: B * T)
        func trainStep() throws(ModelError) {
            try model.forward(tokens: tokens, batch: B, length: T)
            model.zeroGradients()
            try model.setWeightedNLLGradient(targets: targets, weights: weights)
            model.backward()
            opt.step(model, learningRate: 1e-4)
        }
        try trainStep()  // warm-up: allocates activations
        var steps = 0
        var t0 = monotonicSeconds(), t1 = t0
        repeat {
            try trainStep()
            steps += 1
            t1 = monotonicSeconds()
        } while t1 - t0 < minSeconds
        let trainSeconds = t1 - t0
        let trainTokens = Double(steps * B * T)
        let trainFlops = Double(steps * B) * FLOPs.trainSequence(cfg, length: T)

        // Sampling: B rows from a BOS-like first token to the end of the context.
        let prompts = (0..<B).map { _ in [Int32(0)] }
        let opts = SamplingOptions(temperature: 1, topP: 1, maxNewTokens: T, eos: nil)
        _ = try model.sample(prompts: prompts, options: opts, rng: &rng)
        var processed = 0
        var sampleFlops = 0.0
        t0 = monotonicSeconds()
        repeat {
            let r = try model.sample(prompts: prompts, options: opts, rng: &rng)
            processed += r.processedTokens
            sampleFlops += r.forwardFLOPs
            t1 = monotonicSeconds()
        } while t1 - t0 < minSeconds
        let sampleSeconds = t1 - t0
        return Result(
            name: c.name, dModel: cfg.dModel, layers: cfg.layers, heads: cfg.heads, vocab: cfg.vocab,
            params: cfg.parameterCount, nonEmbeddingParams: cfg.nonEmbeddingParameterCount,
            batch: B, context: T,
            trainTokensPerS: trainTokens / trainSeconds, sampleTokensPerS: Double(processed) / sampleSeconds,
            trainGflops: trainFlops / trainSeconds / 1e9, sampleGflops: sampleFlops / sampleSeconds / 1e9,
            trainMfu: trainFlops / trainSeconds / 1e9 / peak, sampleMfu: sampleFlops / sampleSeconds / 1e9 / peak)
    }
}
