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
    /// The seed's share of the group's runs (NaN when unknown): how far a seed's own law may
    /// stray from the pooled one by run-to-run spread alone (`Replication.agreementInterval`).
    public var share: Double = .nan
    /// Creates a seed's refit.
    public init(seed: UInt64, values: [Double], intervals: [Interval], band: [Double] = []) {
        self.seed = seed; self.values = values; self.intervals = intervals; self.band = band
    }
}

/// Replication by seed: per-seed refits of a group's laws and the seed-to-seed noise floor of
/// its frontier.
public enum Replication {
    /// The options of a per-seed analysis: no bootstrap (a seed holds one run per
    /// configuration, and the run bootstrap measures run-to-run spread, which one run cannot
    /// show) and no replication of its own.
    public static func seedOptions(_ options: AnalysisOptions) -> AnalysisOptions {
        var o = options
        o.bootstrap.resamples = 0
        o.replicate = false
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

    /// The interval a seed's own estimate is checked against: the pooled 95% interval of the
    /// mean law, widened about the pooled estimate `center` by √(1/share − 1), where `share`
    /// is the seed's share of the runs. A seed's estimate differs from the pooled one, of which
    /// its runs are a part, with variance σ²(1/r − 1/R) for r of R runs, against the pooled
    /// SE² = σ²/R: the widened interval is a 95% agreement interval for one seed, whatever
    /// the run count (with two seeds of equal size the factor is 1). `logScale` widens ln x
    /// (C_mid); an unknown share keeps the interval as it is.
    public static func agreementInterval(_ pooled: Interval, center: Double, share: Double, logScale: Bool = false) -> Interval {
        guard share.isFinite, share > 0, share < 1, center.isFinite, pooled.low.isFinite, pooled.high.isFinite else { return pooled }
        let f = (1 / share - 1).squareRoot()
        if logScale, center > 0, pooled.low > 0 {
            return Interval(low: center * pow(pooled.low / center, f), high: center * pow(pooled.high / center, f))
        }
        return Interval(low: center - (center - pooled.low) * f, high: center + (pooled.high - center) * f)
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
    /// outside its agreement interval (`seedAgrees`: the pooled 95% interval widened for the seed; comparisons with an unknown value or
    /// interval, and parameters the pooled fit held fixed, are skipped). For the configuration
    /// envelope: seeds whose own envelope, at the largest budget where both it and the pooled
    /// band's interval are known, lies outside that interval. Empty for groups with one seed.
    public var disagreeingSeeds: [UInt64] {
        let f = estimate.fit
        if f.form == .envelope {
            return seedFits.filter { s in
                let known = band.indices.filter { $0 < s.band.count && s.band[$0].isFinite && band[$0].interval.low.isFinite }
                return known.last.map {
                    let iv = Replication.agreementInterval(band[$0].interval, center: band[$0].value, share: s.share)
                    return Replication.agrees(s.band[$0], iv, resolution: Replication.resolution(f.form, "", typicalSE: typicalSE)) == false
                } ?? false
            }.map(\.seed)
        }
        let idx = LawQuality.headlineParameters(f.form).filter { !f.fixed.contains($0) }
            .compactMap { f.form.parameterNames.firstIndex(of: $0) }
        return seedFits.filter { s in idx.contains { seedAgrees(s, parameter: $0) == false } }.map(\.seed)
    }

    /// Whether seed fit `s`'s value of parameter `i` lies in its agreement interval
    /// (`Replication.agreementInterval` about the pooled fit); nil when either is unknown.
    public func seedAgrees(_ s: SeedFit, parameter i: Int) -> Bool? {
        let f = estimate.fit
        guard i < s.values.count, i < estimate.intervals.count, i < f.values.count else { return nil }
        let name = f.form.parameterNames[i]
        let iv = Replication.agreementInterval(estimate.intervals[i], center: f.values[i], share: s.share, logScale: name == "C_mid")
        return Replication.agrees(s.values[i], iv, resolution: Replication.resolution(f.form, name, typicalSE: typicalSE))
    }
}
