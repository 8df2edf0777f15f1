import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Tasks

/// What pretraining a base cost and produced. Pretraining compute is recorded here and
/// never charged to RL cells.
public struct BaseRecord: Codable, Sendable {
    public var spec: BaseSpec
    public var key: String
    public var parameters: Int
    public var nonEmbeddingParameters: Int
    public var steps: Int
    /// Completion tokens trained on.
    public var tokens: Int
    /// Training FLOPs (forward + backward over every padded position of every batch).
    public var trainFLOPs: Double
    public var wallSeconds: Double
    /// (step, mean loss over the preceding window).
    public var lossCurve: [[Double]]
    public var evaluation: BaseEvaluation?
    /// The OpenBLAS core the base was trained with (`BLASCore.current`).
    public var blasCore: String?
    /// The SIMD level of the engine's kernels it was trained with (`SIMDLevel.active`).
    public var simd: String?

    public init(
        spec: BaseSpec, steps: Int = 0, tokens: Int = 0, trainFLOPs: Double = 0, wallSeconds: Double = 0,
        lossCurve: [[Double]] = [], evaluation: BaseEvaluation? = nil
    ) {
        self.spec = spec
        key = spec.key
        parameters = spec.model.parameterCount
        nonEmbeddingParameters = spec.model.nonEmbeddingParameterCount
        self.steps = steps
        self.tokens = tokens
        self.trainFLOPs = trainFLOPs
        self.wallSeconds = wallSeconds
        self.lossCurve = lossCurve
        self.evaluation = evaluation
        blasCore = BLASCore.current
        simd = SIMDLevel.active.rawValue
    }
}

/// The base's held-out evaluation: per-problem outcomes (which fix every problem's pass
/// bucket for every cell trained from this base) and their summary.
public struct BaseEvaluation: Codable, Sendable {
    public var set: EvalSetSpec
    public var options: EvalOptions
    public var outcomes: [ProblemOutcome]
    public var summary: [GroupMetrics]
    public var cost: EvalCost
    public var wallSeconds: Double
    /// The hint uplift per family and base pass bucket: the same problems and samples with
    /// the reference solution shown in the prompt (its cost is in `cost`). Absent in older
    /// records.
    public var hintUplift: [HintUplift]?

    public init(
        set: EvalSetSpec, options: EvalOptions, outcomes: [ProblemOutcome], summary: [GroupMetrics], cost: EvalCost,
        wallSeconds: Double, hintUplift: [HintUplift]? = nil
    ) {
        self.set = set
        self.options = options
        self.outcomes = outcomes
        self.summary = summary
        self.cost = cost
        self.wallSeconds = wallSeconds
        self.hintUplift = hintUplift
    }

    /// The uplift row of a family ("all" for every family) and bucket ("all" for every bucket).
    public func uplift(family: String = "all", bucket: String = "all") -> HintUplift? {
        hintUplift?.first { $0.family == family && $0.bucket == bucket }
    }
}

/// How the held-out evaluation set is drawn.
public struct EvalSetSpec: Codable, Hashable, Sendable {
    public var problemsPerLevel: Int
    public var seed: UInt64
    public init(problemsPerLevel: Int = 16, seed: UInt64 = 1234) {
        self.problemsPerLevel = problemsPerLevel
        self.seed = seed
    }
    public func build(_ families: [any TaskFamily]) -> EvalSet {
        EvalSet(families: families, problemsPerLevel: problemsPerLevel, seed: seed)
    }
}

public enum Pretraining {
    /// Pretrains `spec` from scratch on its noisy-solver corpus until the token budget is
    /// spent (AdamW, linear warmup then cosine decay to 10%). `progress` receives
    /// (fraction done, recent loss).
    public static func run(
        _ spec: BaseSpec, progress: ((Double, Double) -> Void)? = nil
    ) throws(ModelError) -> (Transformer, BaseRecord) {
        let t0 = Date()
        let model = try Transformer(config: spec.model, seed: spec.seed)
        let opt = AdamW(for: model)
        var rng = SeededRNG(seed: spec.seed).derived("corpus")
        // Estimate completion tokens per example to size the cosine schedule.
        var probe = SeededRNG(seed: spec.seed).derived("probe")
        var probeTokens = 0
        for _ in 0..<256 { probeTokens += spec.corpus.example(&probe).completion.count }
        let perStep = max(1, Double(probeTokens) / 256 * Double(spec.batch))
        let budget = spec.tokenBudget
        let estSteps = max(spec.warmupSteps + 1, Int((Double(budget) / perStep).rounded(.up)))
        let schedule = LRSchedule(kind: .cosine, peak: spec.learningRate, warmupSteps: spec.warmupSteps, totalSteps: estSteps)
        var tokens = 0, steps = 0
        var flops = 0.0
        var curve: [[Double]] = []
        var window = 0.0, windowN = 0
        let every = max(1, estSteps / 50)
        while tokens < budget {
            let batch = SequenceBatch((0..<spec.batch).map { _ in spec.corpus.example(&rng) })
            try batch.forward(model)
            model.zeroGradients()
            let w = batch.targets.map { $0 >= 0 ? 1 / Float(batch.targetCount) : 0 }
            let loss = try model.setWeightedNLLGradient(targets: batch.targets, weights: w)
            model.backward()
            opt.step(model, learningRate: schedule.rate(at: steps))
            steps += 1
            tokens += batch.targetCount
            flops += batch.trainFLOPs(spec.model)
            window += loss
            windowN += 1
            if steps % every == 0 || tokens >= budget {
                curve.append([Double(steps), window / Double(windowN)])
                progress?(min(1, Double(tokens) / Double(budget)), window / Double(windowN))
                window = 0
                windowN = 0
            }
        }
        let record = BaseRecord(
            spec: spec, steps: steps, tokens: tokens, trainFLOPs: flops, wallSeconds: Date().timeIntervalSince(t0),
            lossCurve: curve)
        return (model, record)
    }

    /// Evaluates a base on the held-out set with K samples per problem (and greedily), and
    /// again with the privileged prompt for its hint uplift.
    public static func evaluate(
        _ model: Transformer, spec: BaseSpec, set: EvalSetSpec, options: EvalOptions
    ) throws(ModelError) -> BaseEvaluation {
        let t0 = Date()
        let evalSet = set.build(spec.corpus.mixture.families)
        let (outcomes, cost) = try Evaluator.run(model, on: evalSet, options: options, seed: set.seed)
        let buckets = Metrics.buckets(from: outcomes)
        let summary = Metrics.summarize(outcomes, set: evalSet, ks: [1, 4], buckets: buckets)
        var hintOptions = options
        hintOptions.greedy = false
        let (hinted, hintCost) = try Evaluator.run(
            model, on: evalSet, options: hintOptions, seed: set.seed, rendering: .privileged)
        var total = cost
        total.forwardFLOPs += hintCost.forwardFLOPs
        total.processedTokens += hintCost.processedTokens
        total.generatedTokens += hintCost.generatedTokens
        return BaseEvaluation(
            set: set, options: options, outcomes: outcomes, summary: summary, cost: total,
            wallSeconds: Date().timeIntervalSince(t0),
            hintUplift: Metrics.hintUplift(plain: outcomes, hinted: hinted, set: evalSet, buckets: buckets))
    }
}
