import RLCommon
import Tasks

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

/// The running state of a curriculum: pass-rate estimates per family and difficulty.
struct CurriculumState {
    var curriculum: Curriculum
    var mixture: TaskMixture
    var range: [String: ClosedRange<Int>]
    /// Exponential moving average of group mean reward (starts at 0.5).
    var passRate: [String: Double] = [:]

    func key(_ f: String, _ d: Int) -> String { "\(f)/\(d)" }

    mutating func record(_ g: RolloutGroup) {
        let k = key(g.problem.family, g.problem.difficulty)
        passRate[k] = 0.8 * (passRate[k] ?? 0.5) + 0.2 * mean(g.rewards)
    }

    func pick(progress: Double, rng: inout SeededRNG) -> (any TaskFamily, Int) {
        let f = mixture.draw(&rng)
        let r = range[f.name] ?? 1...f.maxDifficulty
        switch curriculum {
        case .uniform:
            return (f, r.lowerBound + rng.below(r.count))
        case .easyToHard:
            let top = r.lowerBound + Int((Double(r.count - 1) * min(1, progress)).rounded())
            return (f, r.lowerBound + rng.below(top - r.lowerBound + 1))
        case .passRate(let lo, let hi):
            let weights = r.map { d -> Double in
                let p = passRate[key(f.name, d)] ?? 0.5
                return p >= lo && p <= hi ? 1 : 0.1
            }
            var u = rng.uniform() * weights.reduce(0, +)
            for (i, w) in weights.enumerated() {
                u -= w
                if u < 0 { return (f, r.lowerBound + i) }
            }
            return (f, r.upperBound)
        }
    }
}
