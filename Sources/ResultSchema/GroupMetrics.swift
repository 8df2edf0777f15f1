/// Metrics of one group of problems (a family × difficulty level, or a family × pass bucket).
public struct GroupMetrics: Codable, Sendable, Hashable {
    public var family: String
    /// "d3" for a difficulty level, a `PassBucket` name, or "all".
    public var group: String
    public var problems: Int
    public var greedy: Double
    /// avg@k, best@k and worst@k keyed by k.
    public var avg: [String: Double]
    public var best: [String: Double]
    public var worst: [String: Double]
    /// Standard error of each metric of the group, keyed `greedy`, `avg@k`, `best@k`,
    /// `worst@k`, `p_ref`, `logp_ref`: the standard deviation of the per-problem values over
    /// the group's problems divided by √problems. Each per-problem value carries its own
    /// sampling noise, so this covers both which problems were drawn and which samples.
    public var se: [String: Double]? = nil
    /// Sampling-only standard error of the sampled metrics with the problems held fixed
    /// (what another evaluation seed would move): √(Σ per-problem jackknife variances) /
    /// problems. Exact in expectation for avg@k; conservative for best@k and worst@k (about
    /// +12% at n = 8, k = 4: the jackknife overestimates the variance of non-linear
    /// estimators). Greedy decoding and `p_ref` have none.
    public var seSampling: [String: Double]? = nil
    /// Mean probability of the reference solution (+EOS) given the prompt, and mean of its
    /// log (per problem), over `refProblems` problems (which may be more than `problems`:
    /// this exact metric costs one forward per problem).
    public var pRef: Double? = nil
    public var logpRef: Double? = nil
    public var refProblems: Int? = nil

    /// A group's metrics (standard errors and `p_ref` are set afterwards, when known).
    public init(
        family: String, group: String, problems: Int, greedy: Double, avg: [String: Double], best: [String: Double],
        worst: [String: Double]
    ) {
        self.family = family; self.group = group; self.problems = problems; self.greedy = greedy
        self.avg = avg; self.best = best; self.worst = worst
    }
}
