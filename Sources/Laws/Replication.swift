import Foundation

/// One seed's refit of a law: the same quantity and form, fitted by the whole group analysis
/// rerun on that seed's cells alone.
public struct SeedFit: Sendable, Hashable {
    public var seed: UInt64
    /// Parameter values, in `form.parameterNames` order.
    public var values: [Double]
    /// The seed's own 95% bootstrap intervals (over that seed's cells), same order.
    public var intervals: [Interval]
    /// The configuration envelope only: the seed's own envelope at the pooled law's budgets
    /// (NaN where none of its configurations competes); empty for every other law.
    public var band: [Double]
    /// Creates a seed's refit.
    public init(seed: UInt64, values: [Double], intervals: [Interval], band: [Double] = []) {
        self.seed = seed; self.values = values; self.intervals = intervals; self.band = band
    }
}

/// Replication by seed: per-seed refits of a group's laws and the seed-to-seed noise floor of
/// its frontier.
public enum Replication {
    /// Most bootstrap resamples of a per-seed analysis (the pooled analysis keeps its own
    /// count; per-seed intervals are reported, not graded on).
    public static let maxSeedResamples = 100

    /// The options of a per-seed analysis: `options` with at most `maxSeedResamples` resamples.
    public static func seedOptions(_ options: AnalysisOptions) -> AnalysisOptions {
        var o = options
        o.bootstrap.resamples = min(o.bootstrap.resamples, maxSeedResamples)
        return o
    }

    /// Relative tolerance of an agreement check: the least-squares fits converge to about
    /// this, so a seed's own fit and the pooled bootstrap resample made of that seed's cells
    /// alone (the same data) can differ by this much.
    public static let numericalTolerance = 1e-6

    /// Whether `value` lies inside the pooled interval (inclusive), widened on each side by
    /// the fits' numerical tolerance (relative) and by `resolution` (absolute: for a
    /// score-valued parameter, the score's typical standard error — two ceilings closer than
    /// the measurement resolves are not in disagreement); nil when either is unknown.
    public static func agrees(_ value: Double, _ pooled: Interval, resolution: Double = 0) -> Bool? {
        guard value.isFinite, pooled.low.isFinite, pooled.high.isFinite else { return nil }
        let slack = numericalTolerance * max(abs(pooled.low), abs(pooled.high)) + (resolution.isFinite ? max(0, resolution) : 0)
        return value >= pooled.low - slack && value <= pooled.high + slack
    }

    /// The absolute resolution of parameter `name` of a law in `form` (see `agrees`): the
    /// typical score SE for score-valued parameters (a ScaleRL law's A and R0, the envelope's
    /// value), 0 otherwise.
    public static func resolution(_ form: LawForm, _ name: String, typicalSE: Double) -> Double {
        guard typicalSE.isFinite, typicalSE > 0 else { return 0 }
        switch form {
        case .scaleRL: return name == "A" || name == "R0" ? typicalSE : 0
        case .envelope: return typicalSE
        default: return 0
        }
    }

    /// The seed-to-seed standard deviation of the score at each of `computes`: for every seed,
    /// the empirical frontier of that seed's cells alone at C (best score at compute ≤ C), then
    /// the sample standard deviation (n − 1) over the seeds where it is defined. NaN at a
    /// compute where fewer than two seeds have a value, and everywhere when `cells` hold fewer
    /// than two distinct seeds.
    public static func seedSD(cells: [Cell], at computes: [Double]) -> [Double] {
        let seeds = Array(Set(cells.map(\.seed))).sorted()
        guard seeds.count >= 2 else { return computes.map { _ in .nan } }
        let frontiers = seeds.map { s in
            Frontier.empirical(cells.filter { $0.seed == s }.flatMap { c in
                c.curve.map { (compute: $0.compute, score: $0.score, se: $0.se, cellID: c.id) }
            })
        }
        return computes.map { c in
            let v = frontiers.map { Frontier.value($0, at: c) }.filter(\.isFinite)
            guard v.count >= 2 else { return .nan }
            let mean = v.reduce(0, +) / Double(v.count)
            return (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
        }
    }
}

extension LawQuality {
    /// The parameters the seeds gate compares: `A` and `C_mid` for ScaleRL score laws, none
    /// for the envelope (its count of configurations is fixed; its value at the largest budget
    /// is compared instead), every parameter of other forms.
    public static func headlineParameters(_ form: LawForm) -> [String] {
        switch form {
        case .scaleRL: ["A", "C_mid"]
        case .envelope: []
        default: form.parameterNames
        }
    }
}

extension LawResult {
    /// Seeds whose value of a headline parameter (`LawQuality.headlineParameters`) lies
    /// outside the pooled 95% interval of that parameter (comparisons with an unknown value or
    /// interval, and parameters the pooled fit held fixed, are skipped). For the configuration
    /// envelope: seeds whose own envelope, at the largest budget where both it and the pooled
    /// band's interval are known, lies outside that interval. Empty for groups with one seed.
    public var disagreeingSeeds: [UInt64] {
        let f = estimate.fit
        if f.form == .envelope {
            return seedFits.filter { s in
                let known = band.indices.filter { $0 < s.band.count && s.band[$0].isFinite && band[$0].interval.low.isFinite }
                return known.last.map {
                    Replication.agrees(s.band[$0], band[$0].interval, resolution: Replication.resolution(f.form, "", typicalSE: typicalSE))
                        == false
                } ?? false
            }.map(\.seed)
        }
        let idx = LawQuality.headlineParameters(f.form).filter { !f.fixed.contains($0) }
            .compactMap { f.form.parameterNames.firstIndex(of: $0) }
        return seedFits.filter { s in
            idx.contains { i in
                i < s.values.count && i < estimate.intervals.count
                    && Replication.agrees(
                        s.values[i], estimate.intervals[i],
                        resolution: Replication.resolution(f.form, f.form.parameterNames[i], typicalSE: typicalSE)) == false
            }
        }.map(\.seed)
    }
}
