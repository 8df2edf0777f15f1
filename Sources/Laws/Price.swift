import Foundation

/// How much a score rises across the held-out top decade of compute, the decade the holdout
/// predicts: the mean observed score in the top half-decade (C > C_max/√10) minus the mean in
/// the decade below it (C_max/10^1.5 < C ≤ C_max/√10), which is centred on the holdout's cut
/// C_max/10. A rise of a few standard errors or less means the holdout tested a plateau
/// (the `saturated` gate).
public enum TopDecadeRise {
    /// The rise of `data` (x = compute, y = score); NaN when either band holds no finite point.
    public static func of(_ data: LawData) -> Double {
        let pts = zip(data.x, data.y).filter { $0.0 > 0 && $0.0.isFinite && $0.1.isFinite }
        guard let top = pts.map(\.0).max() else { return .nan }
        let split = top / 10.0.squareRoot(), floor = top / pow(10, 1.5)
        let upper = pts.filter { $0.0 > split }.map(\.1), lower = pts.filter { $0.0 > floor && $0.0 <= split }.map(\.1)
        guard !upper.isEmpty, !lower.isEmpty else { return .nan }
        return upper.reduce(0, +) / Double(upper.count) - lower.reduce(0, +) / Double(lower.count)
    }
}

/// What a failing score law would take to pass, from its own measured noise.
///
/// - `runs`: independent runs per configuration at which the law's intervals would pass
///   (`too_few_runs`, `ci_wide`): an interval's half-width is t·σ/√k for k runs per
///   configuration (`RunCount`), so the measured width scales by (t_{df'}/t_{df})·√(k/k');
///   the smallest k' ≥ `LawQuality.minimumRuns` at which A's interval is at most half the gain
///   and C_mid's at most one decade wide; `maxRuns` + 1 when none up to `maxRuns` does (laws.csv
///   writes ">1000", with no core-hours). Without measured widths (one run per configuration):
///   k + 1, at least `minimumRuns`. Nil when the law does not fail on these gates.
/// - `evalProblems`: for `gain<10SE`, evaluation problems per point at which the typical
///   score SE (∝ 1/√problems) would be a tenth of the gain.
/// - `coreHours`: the extra core-hours of the missing runs: (k' − k) runs in each of the law's
///   configurations at the mean wall time of its runs.
public struct PassingPrice: Sendable, Hashable {
    public var runs: Int?
    public var evalProblems: Int?
    public var coreHours: Double?

    /// Largest run count searched; a law that needs more says so.
    public static let maxRuns = 1000

    /// The price of `law` given its grade.
    public init(_ law: LawResult) {
        let grade = law.quality
        switch grade {
        case .tooFewRuns, .ciWide:
            guard let r = law.runs, law.estimate.fit.form == .scaleRL else { return }
            let k = max(1, r.fewestPerConfiguration)
            let needed = PassingPrice.runsForIntervals(law, runs: r) ?? max(LawQuality.minimumRuns, k + 1)
            runs = needed
            if law.wallSecondsPerRun.isFinite, needed > k, needed <= PassingPrice.maxRuns {
                coreHours = Double((needed - k) * r.strata) * law.wallSecondsPerRun / 3600
            }
        case .gainBelow10SE:
            let gain = law.estimate.fit.value("A") - law.estimate.fit.value("R0")
            guard law.evalProblems > 0, gain > 0, law.typicalSE.isFinite else { return }
            let ratio = LawQuality.gainInSE * law.typicalSE / gain
            // (The tolerance keeps an exact product such as 400.0000000001 at 400.)
            evalProblems = Int((Double(law.evalProblems) * ratio * ratio * (1 - 1e-12)).rounded(.up))
        default:
            return
        }
    }

    /// The smallest k' in `LawQuality.minimumRuns`…`maxRuns` (and above the current k) at
    /// which A's and C_mid's intervals, scaled from their measured widths, would pass
    /// `ci_wide`; `maxRuns` + 1 when none does; nil when a width is not measured.
    static func runsForIntervals(_ law: LawResult, runs r: RunCount) -> Int? {
        let f = law.estimate.fit
        let names = f.form.parameterNames
        guard let ia = names.firstIndex(of: "A"), let ic = names.firstIndex(of: "C_mid"), ic < law.estimate.intervals.count,
              r.degreesOfFreedom > 0 else { return nil }
        let a = law.estimate.intervals[ia], c = law.estimate.intervals[ic]
        let gain = f.value("A") - f.value("R0")
        // Uncapped widths: the interval is symmetric around the estimate before any cap.
        let widthA = 2 * max(f.value("A") - a.low, a.high - f.value("A"))
        let decades = c.low > 0 && c.high > 0 ? log10(c.high / c.low) : .nan
        guard widthA.isFinite, decades.isFinite, gain > 0 else { return nil }
        let k = r.fewestPerConfiguration, t = r.tQuantile(level: 0.95)
        guard k < maxRuns else { return maxRuns + 1 }
        for kk in max(LawQuality.minimumRuns, k + 1)...maxRuns {
            let next = r.with(runsPerConfiguration: kk)
            let scale = next.tQuantile(level: 0.95) / t * (Double(k) / Double(kk)).squareRoot()
            if widthA * scale <= LawQuality.maxCIWidthOfGain * gain && decades * scale <= LawQuality.maxCMidDecades { return kk }
        }
        return maxRuns + 1
    }

    /// One sentence for report.md ("needs about 6 runs per configuration, ≈ 3.1 core-hours"),
    /// empty when there is no price.
    public var sentence: String {
        if let runs {
            let hours = coreHours.map { ", ≈ \(fmt3($0)) more core-hours" } ?? ""
            return runs > PassingPrice.maxRuns ? "needs more than \(PassingPrice.maxRuns) runs per configuration"
                : "needs about \(runs) runs per configuration\(hours)"
        }
        if let evalProblems { return "needs about \(evalProblems) evaluation problems per point (SE ∝ 1/√problems)" }
        return ""
    }
}

extension LawResult {
    /// Records the runs behind the law, their mean wall time and their evaluation problems.
    mutating func describeRuns(_ cells: [Cell], runs: RunCount) {
        self.runs = runs
        let walls = cells.map(\.wallSeconds).filter(\.isFinite)
        wallSecondsPerRun = walls.isEmpty ? .nan : walls.reduce(0, +) / Double(walls.count)
        evalProblems = cells.map(\.evalProblems).filter { $0 > 0 }.min() ?? 0
    }

    /// What the law would take to pass (`PassingPrice`).
    public var price: PassingPrice { PassingPrice(self) }
}
