/// How a cell picks the difficulty of its training problems.
public enum Curriculum: Codable, Hashable, Sendable, CustomStringConvertible {
    /// Difficulty uniform over the training range.
    case uniform
    /// The upper end of the range grows linearly with the budget spent.
    case easyToHard
    /// Prefer (family, difficulty) cells whose running pass-rate estimate lies in
    /// [low, high]; others keep a small weight so estimates stay fresh.
    case passRate(low: Double, high: Double)

    public var description: String {
        switch self {
        case .uniform: "uniform"
        case .easyToHard: "easy_to_hard"
        case .passRate(let lo, let hi): "pass_rate:\(lo)-\(hi)"
        }
    }

    /// Parses `uniform`, `easy_to_hard` or `pass_rate[:low-high]` (default 0.2–0.8).
    public static func parse(_ s: String) -> Curriculum? {
        switch s {
        case "uniform": return .uniform
        case "easy_to_hard": return .easyToHard
        case "pass_rate": return .passRate(low: 0.2, high: 0.8)
        default:
            guard s.hasPrefix("pass_rate:") else { return nil }
            let r = s.dropFirst("pass_rate:".count).split(separator: "-")
            guard r.count == 2, let lo = Double(r[0]), let hi = Double(r[1]), lo >= 0, lo < hi, hi <= 1 else { return nil }
            return .passRate(low: lo, high: hi)
        }
    }
}
