import Foundation
import PolicyModel
import RLCommon
import Tasks

/// Everything that determines a base policy. Two specs that encode to the same JSON are
/// the same base: `key` hashes that encoding, and the cache reuses a base across cells and
/// grids whenever the key matches.
public struct BaseSpec: Codable, Hashable, Sendable {
    /// Bumped whenever pretraining code changes what a spec produces.
    /// Version 2: privileged examples are written with the solution they show (error-free),
    /// and rollouts are capped at `Problem.completionLimit`.
    public static let schemaVersion = 2

    public var name: String
    public var model: ModelConfig
    public var corpus: CorpusConfig
    /// Token budget: max(minTokens, tokensPerParameter × non-embedding parameters).
    public var tokensPerParameter: Double
    public var minTokens: Int
    public var batch: Int
    public var learningRate: Float
    public var warmupSteps: Int
    public var seed: UInt64

    public init(
        name: String, model: ModelConfig, corpus: CorpusConfig = CorpusConfig(), tokensPerParameter: Double = 8,
        minTokens: Int = 2_000_000, batch: Int = 32, learningRate: Float = 2e-3, warmupSteps: Int = 100, seed: UInt64 = 0
    ) {
        self.name = name
        self.model = model
        self.corpus = corpus
        self.tokensPerParameter = tokensPerParameter
        self.minTokens = minTokens
        self.batch = batch
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.seed = seed
    }

    /// Completion tokens (the ones the loss is on) to pretrain on.
    public var tokenBudget: Int {
        max(minTokens, Int(tokensPerParameter * Double(model.nonEmbeddingParameterCount)))
    }

    /// Stable 16-hex-digit identity of this spec.
    public var key: String {
        StableHash.hex("base-v\(Self.schemaVersion):n\(Numerics.version):", json: self, fallback: name)
    }

    /// A policy shape for the task vocabulary and context.
    public static func shape(dModel: Int, layers: Int, heads: Int) -> ModelConfig {
        ModelConfig(vocab: Vocabulary.size, context: taskContext, dModel: dModel, layers: layers, heads: heads)
    }
}

/// The default base ladder: four sizes spanning 51× in non-embedding parameters
/// (6.6K, 25K, 100K and 336K).
public enum BaseLadder {
    public static let sizes: [(name: String, dModel: Int, layers: Int, heads: Int)] = [
        ("xs", 16, 2, 2), ("s", 32, 2, 2), ("m", 64, 2, 2), ("l", 96, 3, 3),
    ]

    public static func spec(
        _ name: String, corpus: CorpusConfig = CorpusConfig(), tokensPerParameter: Double = 8,
        minTokens: Int = 2_000_000, seed: UInt64 = 0
    ) -> BaseSpec? {
        guard let s = sizes.first(where: { $0.name == name }) else { return nil }
        return BaseSpec(
            name: s.name, model: BaseSpec.shape(dModel: s.dModel, layers: s.layers, heads: s.heads), corpus: corpus,
            tokensPerParameter: tokensPerParameter, minTokens: minTokens, seed: seed)
    }
}
