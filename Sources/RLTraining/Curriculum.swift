import RLCommon
import ResultSchema
import Tasks

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
