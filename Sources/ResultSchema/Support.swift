import Foundation

// MARK: support expansion (the "invisible leash")

/// One held-out problem of the support measurement: its base pass bucket (from the base's
/// own held-out evaluation, `bucketSamples` samples), and its successes out of K in the
/// measurement's independent samples from the base (step 0) and the policy (the end).
public struct SupportProblem: Codable, Sendable, Hashable {
    /// Index into the base's held-out set.
    public var index: Int
    public var family: String
    public var difficulty: Int
    public var bucket: PassBucket
    /// Whether the problem is of the cell's training distribution (`train_dist`: its
    /// families at its training difficulties), or of a level RL never trained on.
    public var trainDistribution: Bool
    /// Successes and samples of the base evaluation that defined the bucket.
    public var bucketSuccesses: Int
    public var bucketSamples: Int
    /// Successes out of K: the base at step 0, the policy at the end.
    public var base: Int
    public var policy: Int
    /// For a problem with 0 of K from the base: the probability that a policy identical to
    /// the base solves it at least once in K (its term of `expectedFalseDiscoveries`); nil
    /// for the others.
    public var falseDiscoveryProbability: Double?

    public init(
        index: Int, family: String, difficulty: Int, bucket: PassBucket, trainDistribution: Bool, bucketSuccesses: Int,
        bucketSamples: Int, base: Int, policy: Int, falseDiscoveryProbability: Double? = nil
    ) {
        self.index = index; self.family = family; self.difficulty = difficulty; self.bucket = bucket
        self.trainDistribution = trainDistribution
        self.bucketSuccesses = bucketSuccesses; self.bucketSamples = bucketSamples; self.base = base; self.policy = policy
        self.falseDiscoveryProbability = falseDiscoveryProbability
    }
}

/// Unbiased pass@k of the base and of the policy on the measured problems, with standard
/// errors over problems (the SE of the mean of per-problem estimates).
public struct SupportPassAtK: Codable, Sendable, Hashable {
    public var k: Int
    public var base: Double
    public var baseSE: Double?
    public var policy: Double
    public var policySE: Double?

    public init(k: Int, base: Double, baseSE: Double?, policy: Double, policySE: Double?) {
        self.k = k; self.base = base; self.baseSE = baseSE; self.policy = policy; self.policySE = policySE
    }
}

/// The support-expansion measurement of one cell (`support_samples = K`): K samples per
/// held-out `unsolved` and `hard` problem (buckets from the base's own evaluation; the
/// measurement's samples are drawn with other seeds, so the selection is not on their
/// noise) from the base at step 0 and from the policy at the end of training.
///
/// **New support** counts problems with no success in the base's K samples and at least
/// one in the policy's. Even a policy identical to the base "discovers" problems this way
/// (a problem of pass rate p shows 0 of K with probability (1 − p)^K, then ≥ 1 of K the
/// second time); `expectedFalseDiscoveries` is that count's expectation under the base's
/// own estimated pass rates (an empirical-Bayes Beta prior per family and difficulty,
/// updated with the problem's base counts), reported beside it.
public struct SupportMeasurement: Codable, Sendable {
    /// K, samples per problem and model.
    public var samples: Int
    /// The update (step) at which the policy was measured.
    public var step: Int
    public var problems: [SupportProblem]
    public var passAtK: [SupportPassAtK]
    /// Problems with 0 of K from the base.
    public var baseZero: Int
    /// Of those, problems the policy solved at least once.
    public var newSupport: Int
    /// The expected `newSupport` of a policy that is the base.
    public var expectedFalseDiscoveries: Double
    /// Problems the base solved at least once and the policy never (support lost).
    public var lostSupport: Int
    /// Forward FLOPs of both measurements (evaluation: recorded, never charged).
    public var flops: Double

    public init(
        samples: Int, step: Int, problems: [SupportProblem], passAtK: [SupportPassAtK], baseZero: Int, newSupport: Int,
        expectedFalseDiscoveries: Double, lostSupport: Int, flops: Double
    ) {
        self.samples = samples; self.step = step; self.problems = problems; self.passAtK = passAtK; self.baseZero = baseZero
        self.newSupport = newSupport; self.expectedFalseDiscoveries = expectedFalseDiscoveries; self.lostSupport = lostSupport
        self.flops = flops
    }

    /// The k of the pass@k curve for K samples: 1, 4, 16, 64, 256, … up to K, and K.
    public static func ks(samples K: Int) -> [Int] {
        var ks: [Int] = []
        var k = 1
        while k <= K { ks.append(k); k *= 4 }
        if ks.last != K { ks.append(K) }
        return ks
    }
}

/// Multi-turn evaluation at one point (`eval_turns` > 1): one episode of up to `turns`
/// attempts per sample of each held-out problem of the training distribution, at
/// temperature 1, with the cell's feedback. Standard errors are clustered by problem.
public struct MultiTurnMetrics: Codable, Sendable, Hashable {
    public var turns: Int
    public var problems: Int
    public var episodes: Int
    /// Share of episodes solved within t turns, t = 1 … turns (the first is the single-turn
    /// score under the episode's turn limit).
    public var solvedWithin: [Double]
    public var solvedWithinSE: [Double?]
    /// Mean attempts per episode.
    public var meanTurns: Double
    public var meanTurnsSE: Double?
    /// Episodes that reached a second attempt, and the share of those whose second attempt
    /// writes the same text as the first (nil when none did).
    public var secondAttempts: Int
    public var repeatShare: Double?
    public var repeatShareSE: Double?
    /// Mean tokens per episode after the prompt (attempts and feedback), and the forward
    /// FLOPs of sampling one episode.
    public var tokensPerEpisode: Double
    public var flopsPerEpisode: Double

    public init(
        turns: Int, problems: Int, episodes: Int, solvedWithin: [Double], solvedWithinSE: [Double?], meanTurns: Double,
        meanTurnsSE: Double?, secondAttempts: Int, repeatShare: Double?, repeatShareSE: Double?, tokensPerEpisode: Double,
        flopsPerEpisode: Double
    ) {
        self.turns = turns; self.problems = problems; self.episodes = episodes; self.solvedWithin = solvedWithin
        self.solvedWithinSE = solvedWithinSE; self.meanTurns = meanTurns; self.meanTurnsSE = meanTurnsSE
        self.secondAttempts = secondAttempts; self.repeatShare = repeatShare; self.repeatShareSE = repeatShareSE
        self.tokensPerEpisode = tokensPerEpisode; self.flopsPerEpisode = flopsPerEpisode
    }
}
