import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import RLCommon
import ResultSchema
import Tasks

/// Why a reward model could not be built or loaded.
public enum RewardModelError: Error, CustomStringConvertible {
    case model(ModelError)
    case checkpoint(CheckpointError)
    case io(path: String, reason: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .model(let e): e.description
        case .checkpoint(let e): e.description
        case .io(let p, let r): "\(p): \(r)"
        case .invalid(let s): "reward model: \(s)"
        }
    }
}

/// Everything that determines a learned reward model: the policy base whose samples it
/// is trained on, the base it starts from, the problems (families, mixture, difficulty
/// ranges), its spec (labels, label noise, ensemble) and its training recipe. Its `key`
/// names the cached weights.
public struct RewardModelRequest: Codable, Hashable, Sendable {
    /// Bump when the recipe or the data changes meaning.
    public static let version = 1
    public var version = RewardModelRequest.version
    public var policyBaseKey: String
    public var rmBaseKey: String
    public var rmBaseName: String
    public var mixture: TaskMixture
    public var ranges: [PoolRequest.Range]
    public var spec: RewardModelSpec
    /// Held-out samples (held-out problems, gold labels, never noised) its quality is measured on.
    public var heldOut: Int = 512
    public var learningRate: Float = 1e-4
    public var batch: Int = 32
    /// Passes over the labels, with at least `minSteps` updates (small label sets overfit,
    /// as they would in practice).
    public var epochs: Int = 4
    public var minSteps: Int = 60
    public var seed: UInt64 = 5151

    public init(
        policyBaseKey: String, rmBaseKey: String, rmBaseName: String, mixture: TaskMixture,
        ranges: [String: ClosedRange<Int>], spec: RewardModelSpec
    ) {
        self.policyBaseKey = policyBaseKey; self.rmBaseKey = rmBaseKey; self.rmBaseName = rmBaseName
        self.mixture = mixture
        self.ranges = ranges.keys.sorted().compactMap { f in ranges[f].map { PoolRequest.Range(family: f, low: $0.lowerBound, high: $0.upperBound) } }
        self.spec = spec
    }

    public var key: String { StableHash.hex("rm-v\(version):", json: self) }

    /// Updates per member.
    public var steps: Int { max(minSteps, (epochs * spec.labels + batch - 1) / batch) }
}

/// A learned reward model: one or more transformers, each the pretrained base of the
/// requested size fine-tuned as a yes/no classifier. A sample `BOS problem SEP completion`
/// is scored by appending SEP and reading the next-token distribution there:
/// s = σ(z₁ − z₀), the odds of the token "1" (correct) against "0" (wrong). Members are
/// combined by the spec's ensemble rule.
public final class RewardModel {
    public let request: RewardModelRequest
    public let members: [Transformer]
    public var record: RewardModelUse

    init(request: RewardModelRequest, members: [Transformer], record: RewardModelUse) {
        self.request = request; self.members = members; self.record = record
    }

    static let yes = Vocabulary.token("1") ?? 5
    static let no = Vocabulary.token("0") ?? 4

    /// The classifier's input: the sample followed by SEP, whose next token is the verdict.
    static func input(_ p: Problem, _ completion: [Int32]) -> (prompt: [Int32], completion: [Int32]) {
        (p.promptTokens + completion + [Vocabulary.sep], [yes])
    }

    /// Scores of each sample in [0, 1] (members combined) and the forward FLOPs spent.
    public func score(_ items: [(Problem, [Int32])]) throws(ModelError) -> (scores: [Double], flops: Double) {
        var per = [[Double]](repeating: [], count: items.count)
        var flops = 0.0
        for m in members {
            let (s, f) = try Self.score(m, items)
            for i in s.indices { per[i].append(s[i]) }
            flops += f
        }
        return (per.map { request.spec.ensemble.combine($0) }, flops)
    }

    /// One member's scores: batches of 256 rows, `Transformer.passRows` per forward pass.
    static func score(_ model: Transformer, _ items: [(Problem, [Int32])]) throws(ModelError) -> ([Double], Double) {
        var out: [Double] = []
        out.reserveCapacity(items.count)
        var flops = 0.0
        var start = 0
        let V = model.config.vocab
        while start < items.count {
            let chunk = items[start..<min(items.count, start + 256)]
            start += chunk.count
            let inputs = chunk.map { input($0.0, $0.1) }
            let b = SequenceBatch(inputs)
            flops += b.forwardFLOPs(model.config)
            for pass in b.passes {
                try b.forward(model, rows: pass)
                let z = model.logits, first = b.positions(pass).lowerBound
                for row in pass {
                    let n = (b.position(row, inputs[row].prompt.count - 1) - first) * V
                    let margin = Double(z[n + Int(yes)] - z[n + Int(no)])
                    out.append(1 / (1 + exp(-margin)))
                }
            }
        }
        return (out, flops)
    }

    // MARK: building

    /// Samples one completion of the policy base per problem: `count` problems of the
    /// request's families and ranges from `split`.
    static func samples(
        _ request: RewardModelRequest, policy: Transformer, count: Int, split: Split, rng: inout SeededRNG
    ) throws(ModelError) -> (items: [(Problem, [Int32])], flops: Double) {
        var problems: [Problem] = []
        for _ in 0..<count {
            let f = request.mixture.draw(&rng)
            let r = request.ranges.first { $0.family == f.name }
            let lo = r?.low ?? 1, hi = r?.high ?? f.maxDifficulty
            problems.append(TaskFamilies.sample(f, difficulty: lo + rng.below(hi - lo + 1), split: split, rng: &rng))
        }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: maxSolutionTokens, eos: Vocabulary.eos)
        var items: [(Problem, [Int32])] = []
        var flops = 0.0
        var start = 0
        while start < problems.count {
            let chunk = Array(problems[start..<min(problems.count, start + 256)])
            start += chunk.count
            let r = try policy.sample(prompts: chunk.map(\.promptTokens), options: opts, limits: chunk.map(\.completionLimit), rng: &rng)
            flops += r.forwardFLOPs
            for (p, c) in zip(chunk, r.completions) { items.append((p, c.tokens)) }
        }
        return (items, flops)
    }

    /// Trains the reward model the request describes: labels `spec.labels` base samples by
    /// the gold verifier (each flipped with probability `labelNoise`), fine-tunes one copy
    /// of `rmBase` per member on them (members differ in data order), and measures the
    /// combined model on `heldOut` samples of held-out problems with true labels.
    public static func train(
        _ request: RewardModelRequest, policyBase: Transformer, rmBase: Transformer, log: ((String) -> Void)? = nil
    ) throws(RewardModelError) -> RewardModel {
        let spec = request.spec
        guard spec.labels >= 8 else { throw .invalid("rm_labels must be at least 8 (got \(spec.labels))") }
        guard rmBase.config.vocab == policyBase.config.vocab else { throw .invalid("the reward model's vocabulary differs from the policy's") }
        var rng = SeededRNG(seed: request.seed).derived("rm-data")
        do {
            let (train, f1) = try samples(request, policy: policyBase, count: spec.labels, split: .train, rng: &rng)
            let (held, f2) = try samples(request, policy: policyBase, count: request.heldOut, split: .heldOut, rng: &rng)
            var labels = train.map { RuleReward.gold($0.0, $0.1) }
            for i in labels.indices where spec.labelNoise > 0 && rng.uniform() < spec.labelNoise { labels[i] = 1 - labels[i] }
            var members: [Transformer] = []
            var trainFLOPs = 0.0
            for m in 0..<spec.ensemble.members {
                let model = try Transformer(config: rmBase.config, seed: 0)
                try model.copyParameters(from: rmBase)
                var order = SeededRNG(seed: request.seed).derived("rm-member-\(m)")
                trainFLOPs += try fit(model, train, labels, request: request, rng: &order)
                members.append(model)
                log?("reward model \(request.key.prefix(8)): member \(m + 1)/\(spec.ensemble.members) trained")
            }
            let rm = RewardModel(
                request: request, members: members,
                record: RewardModelUse(
                    key: request.key, base: request.rmBaseName, labels: spec.labels, members: members.count, heldOutAccuracy: 0,
                    majorityAccuracy: 0, heldOutAUC: nil, heldOutSamples: held.count, samplingFLOPs: f1 + f2,
                    trainingFLOPs: trainFLOPs))
            let (scores, evalFLOPs) = try rm.score(held)
            let truth = held.map { RuleReward.gold($0.0, $0.1) == 1 }
            let q = quality(scores: scores, truth: truth)
            rm.record.heldOutAccuracy = q.accuracy
            rm.record.majorityAccuracy = q.majority
            rm.record.heldOutAUC = q.auc
            rm.record.samplingFLOPs += evalFLOPs
            return rm
        } catch {
            throw .model(error)
        }
    }

    /// Fine-tunes `model` on the labelled samples: cross-entropy of the verdict token at the
    /// query position only, AdamW, `request.steps` minibatches drawn in seeded epochs.
    /// Returns the training FLOPs.
    static func fit(
        _ model: Transformer, _ items: [(Problem, [Int32])], _ labels: [Double], request: RewardModelRequest, rng: inout SeededRNG
    ) throws(ModelError) -> Double {
        let optimizer = AdamW(for: model, config: AdamWConfig(weightDecay: 0, gradClip: 1))
        var order: [Int] = [], cursor = 0
        var flops = 0.0
        for _ in 0..<request.steps {
            var rows: [Int] = []
            while rows.count < min(request.batch, items.count) {
                if cursor >= order.count {
                    order = Array(items.indices)
                    for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
                    cursor = 0
                }
                rows.append(order[cursor])
                cursor += 1
            }
            let b = SequenceBatch(rows.map { i in
                (items[i].0.promptTokens + items[i].1 + [Vocabulary.sep], [labels[i] == 1 ? yes : no])
            })
            try b.forward(model)
            let w = b.targets.map { $0 >= 0 ? Float(1) / Float(b.rows) : 0 }
            try model.setWeightedNLLGradient(targets: b.targets, weights: w)
            model.zeroGradients()
            model.backward()
            optimizer.step(model, learningRate: request.learningRate)
            flops += b.trainFLOPs(model.config)
        }
        return flops
    }

    /// Accuracy at 0.5, the majority-label accuracy and the AUC (ties count ½; nil when
    /// every sample has the same label).
    public static func quality(scores: [Double], truth: [Bool]) -> (accuracy: Double, majority: Double, auc: Double?) {
        let n = Double(max(1, scores.count))
        let correct = zip(scores, truth).filter { ($0.0 >= 0.5) == $0.1 }.count
        let positives = truth.filter { $0 }.count
        let majority = Double(max(positives, truth.count - positives)) / n
        let pos = zip(scores, truth).filter { $0.1 }.map(\.0), neg = zip(scores, truth).filter { !$0.1 }.map(\.0)
        var auc: Double?
        if !pos.isEmpty, !neg.isEmpty {
            let sortedNeg = neg.sorted()
            var wins = 0.0
            for s in pos {
                // Negatives below s count 1, ties ½ (binary searches over the sorted negatives).
                let below = lowerBound(sortedNeg, s), upTo = upperBound(sortedNeg, s)
                wins += Double(below) + 0.5 * Double(upTo - below)
            }
            auc = wins / Double(pos.count * neg.count)
        }
        return (Double(correct) / n, majority, auc)
    }

    static func lowerBound(_ a: [Double], _ x: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] < x { lo = m + 1 } else { hi = m } }
        return lo
    }

    static func upperBound(_ a: [Double], _ x: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] <= x { lo = m + 1 } else { hi = m } }
        return lo
    }
}

/// Learned reward models cached beside the bases: `<dir>/rm-<key>-<member>.safetensors` and
/// `<dir>/rm-<key>.json` (the request and the record), written atomically, weights first;
/// concurrent workers that need the same model build it once (a file lock).
public struct RewardModelCache: Sendable {
    public var directory: String
    public init(directory: String) { self.directory = directory }

    func weightsPath(_ key: String, _ m: Int) -> String { "\(directory)/rm-\(key)-\(m).safetensors" }
    func recordPath(_ key: String) -> String { "\(directory)/rm-\(key).json" }

    struct Stored: Codable {
        var request: RewardModelRequest
        var record: RewardModelUse
    }

    /// The cached model, or one trained (and cached) now.
    public func obtain(
        _ request: RewardModelRequest, policyBase: Transformer, rmBase: Transformer, log: ((String) -> Void)? = nil
    ) throws(RewardModelError) -> RewardModel {
        let key = request.key
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(path: directory, reason: "cannot create directory: \(error.localizedDescription)")
        }
        let lock = FileLock(path: "\(directory)/rm-\(key).lock", wait: true)
        defer { withExtendedLifetime(lock) {} }
        if let cached = try load(request) { return cached }
        log?("training reward model \(key.prefix(8)) (\(request.rmBaseName), \(request.spec.labels) labels)")
        let rm = try RewardModel.train(request, policyBase: policyBase, rmBase: rmBase, log: log)
        for (m, model) in rm.members.enumerated() {
            do { try Checkpoint.save(model, to: weightsPath(key, m), extra: ["rlscale.rm_key": key]) } catch { throw .checkpoint(error) }
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try AtomicFile.write(try enc.encode(Stored(request: request, record: rm.record)), to: recordPath(key))
        } catch {
            throw .io(path: recordPath(key), reason: "\(error)")
        }
        return rm
    }

    /// The cached model, or nil when it is not (fully) cached.
    public func load(_ request: RewardModelRequest) throws(RewardModelError) -> RewardModel? {
        let key = request.key
        guard FileManager.default.fileExists(atPath: recordPath(key)) else { return nil }
        let stored: Stored
        do {
            stored = try JSONDecoder().decode(Stored.self, from: Data(contentsOf: URL(fileURLWithPath: recordPath(key))))
        } catch {
            throw .io(path: recordPath(key), reason: "unreadable reward-model record: \(error)")
        }
        var members: [Transformer] = []
        for m in 0..<request.spec.ensemble.members {
            do { members.append(try Checkpoint.load(weightsPath(key, m)).model) } catch { throw .checkpoint(error) }
        }
        return RewardModel(request: request, members: members, record: stored.record)
    }
}
