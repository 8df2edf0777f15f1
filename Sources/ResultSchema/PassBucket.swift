/// Pass-rate buckets of held-out problems under a reference base policy (the IsoCompute
/// study's definitions, with K samples per problem).
public enum PassBucket: String, Codable, Sendable, CaseIterable, Comparable {
    /// No success in K samples.
    case unsolved
    /// pass@1 in (0, 0.0625].
    case hard
    /// pass@1 in (0.0625, 0.3).
    case medium
    /// pass@1 in [0.3, 0.6].
    case easy
    /// pass@1 above 0.6.
    case solved

    public static func of(successes c: Int, samples K: Int) -> PassBucket {
        let r = Double(c) / Double(K)
        if c == 0 { return .unsolved }
        if r <= 0.0625 { return .hard }
        if r < 0.3 { return .medium }
        if r <= 0.6 { return .easy }
        return .solved
    }

    /// Position from unsolved (0) to solved (4): the order of `<` and of tables.
    public var rank: Int {
        switch self {
        case .unsolved: 0
        case .hard: 1
        case .medium: 2
        case .easy: 3
        case .solved: 4
        }
    }

    public static func < (a: PassBucket, b: PassBucket) -> Bool { a.rank < b.rank }
}
