import Foundation

// MARK: where a cell's reward comes from

/// The reward a cell trains on (`reward = …`). `gold` is the exact verifier; every other
/// source is a proxy for it that a policy can learn to exploit, and a cell training on
/// one still measures gold at every evaluation point and training window (gold never
/// feeds the gradient unless it is the training reward). The README gives an example of
/// each exploit.
public enum RewardSource: Sendable, Hashable, KnobSpelled {
    /// The exact verifier: the final answer after the last '=' equals the reference, then EOS.
    case gold
    /// Accepts when the gold answer appears anywhere in an answer field of at most `maxLength`
    /// characters (exploit: write several candidates, `=582583` for 582).
    case contains(maxLength: Int)
    /// Partial credit: the share of the answer's last `k` digits (right-aligned) that match
    /// the gold answer's (exploit: low-order digits of sums and products are easy, carries
    /// are hard; a wrong leading digit costs nothing at k = 1).
    case digits(Int)
    /// Takes the last integer anywhere in the output up to EOS or the end, ignoring trailing
    /// junk, a missing '=' and a missing EOS (exploit: never stop, or end on the right digits).
    case lenient
    /// Accepts a wrong answer that has the gold answer's length and parity with probability ρ
    /// (exploit: guess an answer of the right shape).
    case pattern(Double)
    /// The gold verifier seen through label noise: a wrong answer is accepted with
    /// probability ρ0 (false positive), a right one rejected with probability ρ1 (false
    /// negative); `corrected` trains on the unbiased R̂ = (R̃ − ρ0)/(1 − ρ0 − ρ1).
    case noisy(falsePositive: Double, falseNegative: Double, corrected: Bool)
    /// A learned reward model (its spec: `CellConfig.rewardModel`, the `rm_*` knobs).
    case learned

    /// The knob spelling: "gold", "contains:L", "digits:k", "lenient", "pattern:ρ",
    /// "noisy:ρ0,ρ1" (",corrected" appended for the correction), "rm".
    public var description: String {
        switch self {
        case .gold: "gold"
        case .contains(let l): "contains:\(l)"
        case .digits(let k): "digits:\(k)"
        case .lenient: "lenient"
        case .pattern(let r): "pattern:\(knobNumber(r))"
        case .noisy(let fp, let fn, let c): "noisy:\(knobNumber(fp)),\(knobNumber(fn))" + (c ? ",corrected" : "")
        case .learned: "rm"
        }
    }

    /// Parses the spelling; nil for anything else, a knob out of range included (L < 1,
    /// k < 1, ρ outside [0, 1], ρ0 or ρ1 negative, ρ0 + ρ1 ≥ 1).
    public init?(_ s: String) {
        let t = s.trimmingCharacters(in: .whitespaces)
        let parts = t.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        switch (parts.first ?? "", parts.count) {
        case ("gold", 1): self = .gold
        case ("lenient", 1): self = .lenient
        case ("rm", 1): self = .learned
        case ("contains", 2):
            guard let l = Int(parts[1]), l >= 1 else { return nil }
            self = .contains(maxLength: l)
        case ("digits", 2):
            guard let k = Int(parts[1]), k >= 1 else { return nil }
            self = .digits(k)
        case ("pattern", 2):
            guard let r = Double(parts[1]), r >= 0, r <= 1 else { return nil }
            self = .pattern(r)
        case ("noisy", 2):
            let f = parts[1].split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 2 || (f.count == 3 && f[2] == "corrected"), let fp = Double(f[0]), let fn = Double(f[1]),
                fp >= 0, fn >= 0, fp + fn < 1
            else { return nil }
            self = .noisy(falsePositive: fp, falseNegative: fn, corrected: f.count == 3)
        default: return nil
        }
    }

    public static let knob = "reward"
    public static let spellings =
        "gold, contains:L (L ≥ 1), digits:k (k ≥ 1), lenient, pattern:ρ (0 ≤ ρ ≤ 1), noisy:ρ0,ρ1[,corrected] (ρ0, ρ1 ≥ 0, ρ0 + ρ1 < 1) or rm"

    /// Whether the source is the exact verifier itself.
    public var isGold: Bool { self == .gold }
}

/// How the members of a reward-model ensemble are combined (`rm_ensemble = …`), as in
/// Coste et al. (arXiv 2310.02743).
public enum RewardEnsemble: Sendable, Hashable, KnobSpelled {
    /// One model.
    case single
    /// The mean of `members` models.
    case mean(members: Int)
    /// The worst case: the minimum over `members` models.
    case min(members: Int)
    /// Uncertainty-weighted: mean − λ·std over `members` models.
    case uncertainty(members: Int, lambda: Double)

    public var members: Int {
        switch self {
        case .single: 1
        case .mean(let m), .min(let m), .uncertainty(let m, _): m
        }
    }

    public var description: String {
        switch self {
        case .single: "1"
        case .mean(let m): "mean:\(m)"
        case .min(let m): "min:\(m)"
        case .uncertainty(let m, let l): "uwo:\(m):\(knobNumber(l))"
        }
    }

    public init?(_ s: String) {
        let p = s.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        switch (p.first ?? "", p.count) {
        case ("1", 1): self = .single
        case ("mean", 2), ("min", 2):
            guard let m = Int(p[1]), m >= 2, m <= 16 else { return nil }
            self = p[0] == "mean" ? .mean(members: m) : .min(members: m)
        case ("uwo", 3):
            guard let m = Int(p[1]), m >= 2, m <= 16, let l = Double(p[2]), l >= 0, l.isFinite else { return nil }
            self = .uncertainty(members: m, lambda: l)
        default: return nil
        }
    }

    public static let knob = "rm_ensemble"
    public static let spellings = "1, mean:E, min:E or uwo:E:λ (2 ≤ E ≤ 16, λ ≥ 0)"

    /// Combines the members' scores of one sample.
    public func combine(_ scores: [Double]) -> Double {
        let n = Double(scores.count)
        let mean = scores.reduce(0, +) / n
        switch self {
        case .single, .mean: return mean
        case .min: return scores.min() ?? mean
        case .uncertainty(_, let lambda):
            let v = scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
            return mean - lambda * v.squareRoot()
        }
    }
}

/// A learned reward model (`reward = "rm"`): a transformer of ladder size `size`
/// initialised from that pretrained base and fine-tuned as a yes/no classifier on `labels`
/// samples of the cell's base policy labelled by the gold verifier (each label flipped
/// with probability `labelNoise`). Everything that determines it keys its cache.
public struct RewardModelSpec: Codable, Hashable, Sendable {
    /// A base of the grid's ladder, or "base": the cell's own base.
    public var size: String
    /// N, labelled base samples it is trained on.
    public var labels: Int
    /// Probability that a training label is flipped.
    public var labelNoise: Double
    public var ensemble: RewardEnsemble

    public init(
        size: String = CellDefaults.rmSize, labels: Int = CellDefaults.rmLabels, labelNoise: Double = CellDefaults.rmLabelNoise,
        ensemble: RewardEnsemble = CellDefaults.rmEnsemble
    ) {
        self.size = size; self.labels = labels; self.labelNoise = labelNoise; self.ensemble = ensemble
    }
}

// MARK: what a cell measures about its reward

/// Proxy and gold reward at one evaluation point, on the policy's own eval samples of its
/// training distribution (the `train_dist` eval problems × `eval_samples` at temperature 1),
/// with standard errors clustered by
/// problem (the SE of the mean of per-problem means), and how far the policy has moved
/// from its base, in Gao et al.'s units (arXiv 2210.10760).
public struct RewardDiagnostics: Codable, Sendable, Hashable {
    public var samples: Int
    /// Mean training reward (the proxy; gold for gold cells).
    public var proxy: Double
    /// Standard errors are nil with fewer than two problems (no spread to measure).
    public var proxySE: Double?
    /// Mean gold reward (avg@k over the same samples).
    public var gold: Double
    public var goldSE: Double?
    /// P(proxy accepts ∧ gold rejects) on the same samples; a proxy "accepts" when its
    /// reward is at least 0.5.
    public var hackRate: Double
    public var hackRateSE: Double?
    /// KL(π ‖ base) over whole completions in nats: the mean over the samples of Σ_t of the
    /// exact per-token KL along the sample (the chain rule makes it unbiased).
    public var sequenceKL: Double
    public var sequenceKLSE: Double?
    /// d = √KL, the abscissa of the over-optimisation law.
    public var d: Double

    public init(
        samples: Int, proxy: Double, proxySE: Double?, gold: Double, goldSE: Double?, hackRate: Double, hackRateSE: Double?,
        sequenceKL: Double, sequenceKLSE: Double?
    ) {
        self.samples = samples; self.proxy = proxy; self.proxySE = proxySE; self.gold = gold; self.goldSE = goldSE
        self.hackRate = hackRate; self.hackRateSE = hackRateSE; self.sequenceKL = sequenceKL; self.sequenceKLSE = sequenceKLSE
        d = max(0, sequenceKL).squareRoot()
    }

    /// The mean and clustered SE of per-sample values grouped by problem: the SE of the mean
    /// of the per-problem means (nil for fewer than two problems; the mean is NaN without
    /// any value, which callers never ask for).
    public static func clustered(_ values: [[Double]]) -> (mean: Double, se: Double?) {
        let means = values.filter { !$0.isEmpty }.map { $0.reduce(0, +) / Double($0.count) }
        guard !means.isEmpty else { return (.nan, nil) }
        let n = Double(means.count), m = means.reduce(0, +) / n
        guard means.count > 1 else { return (m, nil) }
        let v = means.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)
        return (m, (v / n).squareRoot())
    }
}

/// The learned reward model a cell trained on: its cache key, its held-out quality and
/// what building it cost. Building it (base sampling for the labels, then training) is
/// recorded here like pretraining, never charged to the cell's budget; scoring rollouts
/// with it is charged (`ComputeLedger.rewardModel`).
public struct RewardModelUse: Codable, Sendable, Hashable {
    public var key: String
    /// The ladder base it was initialised from.
    public var base: String
    public var labels: Int
    public var members: Int
    /// Held-out accuracy (score ≥ 0.5 against the gold label), the accuracy of always
    /// answering the majority label, and the AUC (the probability that a correct sample
    /// scores above a wrong one; nil when the held-out samples are all of one label), of the
    /// combined score the cell trains on (members combined by the ensemble rule).
    public var heldOutAccuracy: Double
    public var majorityAccuracy: Double
    public var heldOutAUC: Double?
    public var heldOutSamples: Int
    /// FLOPs spent sampling and labelling the base's completions, and training the members.
    public var samplingFLOPs: Double
    public var trainingFLOPs: Double

    public init(
        key: String, base: String, labels: Int, members: Int, heldOutAccuracy: Double, majorityAccuracy: Double,
        heldOutAUC: Double?, heldOutSamples: Int, samplingFLOPs: Double, trainingFLOPs: Double
    ) {
        self.key = key; self.base = base; self.labels = labels; self.members = members
        self.heldOutAccuracy = heldOutAccuracy; self.majorityAccuracy = majorityAccuracy; self.heldOutAUC = heldOutAUC
        self.heldOutSamples = heldOutSamples; self.samplingFLOPs = samplingFLOPs; self.trainingFLOPs = trainingFLOPs
    }
}
