import Foundation

/// A law's quality grade: `pass`, or the first gate it fails. Gates are checked in this
/// order (the first failure wins):
///
/// 1. `no_fit`: the law's status is not ok.
/// 2. `too_few_arms`: an allocation law (`n_star`, `N_star`, `Bp_star`) rests on fewer than
///    3 distinct arm values (`n_points` < 3).
/// 3. `edge`: an allocation law (`n_star`, `N_star`, `Bp_star`) whose optimum is at the edge
///    of the grid (`OptimumStatus.atEdge`) at more than half of its series' budgets.
/// 4. `gain<10SE`: a score law (form `scalerl`) whose gain A − R0 is less than 10 × the
///    typical score SE (median SE of its data points; skipped when no SE is known).
/// 5. `saturated`: a score law (`scalerl`, or the configuration `envelope`) whose observed
///    score rises by less than 3 typical SEs across the held-out top decade
///    (`TopDecadeRise`: the holdout then tested a plateau), or (`scalerl`) whose interval of A
///    reaches the bound A was fitted under (A ≤ 1 for pass rates) with A itself within one
///    typical SE of it (an interval that is merely wide, capped at the bound, is `ci_wide`).
/// 6. `too_few_runs`: a law fitted to runs (every law of a grid analysis) whose
///    configurations hold fewer than `minimumRuns` independent runs each: below that the
///    coverage simulation (README) shows its nominal 95% intervals cover the truth in less
///    than 90% of worlds, so they are not presented as 95% intervals.
/// 7. `ci_wide`: a score law (form `scalerl`) whose 95% interval of A is wider than half the
///    gain, or whose interval of C_mid spans more than one decade, or either is missing.
/// 8. `no_peak`: a reward over-optimisation law (forms `gao_rl`, `gao_bon`) that does not
///    resolve over-optimisation: the lower end of β's 95% bootstrap interval is not above 0
///    (or β has no interval), or the fitted peak d* (`GaoPeak`) is missing or lies outside
///    [min d, 1.5 × max d] of the d > 0 points the law was fitted to (`LawResult.data`).
/// 9. `holdout>10%`: the holdout error exceeds 0.10, or is missing (top decade of compute;
///    for the over-optimisation laws the top quarter of d, as a share of the largest gold
///    gain measured).
/// 10. `seeds_disagree`: in a group with at least two seeds, some seed's own fit of the law
///    puts a headline parameter (`A` and `C_mid` for score laws, every parameter otherwise —
///    α and β for the over-optimisation laws; for the envelope its value at the largest
///    budget) outside its agreement interval: the pooled 95% interval widened about the
///    pooled estimate by √(1/share − 1) for the seed's share of the runs
///    (`Replication.agreementInterval`, `LawResult.disagreeingSeeds`). Laws of one-seed
///    groups are not graded on it.
///
/// The configuration envelope (form `envelope`) has no A of its own: gates 4 and 7 apply to
/// the configuration laws it is built from, and it is graded on 1, 5, 6, 9 and 10. The
/// over-optimisation laws are graded on 1, 8, 9 and 10.
public enum LawQuality: String, Sendable, CaseIterable {
    case pass = "pass"
    case noFit = "no_fit"
    case tooFewArms = "too_few_arms"
    case edge = "edge"
    case gainBelow10SE = "gain<10SE"
    case saturated = "saturated"
    case tooFewRuns = "too_few_runs"
    case ciWide = "ci_wide"
    case noPeak = "no_peak"
    case holdoutAbove10Percent = "holdout>10%"
    case seedsDisagree = "seeds_disagree"

    /// Quantities whose data are argmax arm values (their `n_points` counts distinct arms).
    public static let armQuantities: Set<String> = Set(ArmDimension.allCases.map(\.starQuantity))
    /// Fewest distinct arm values an allocation law needs.
    public static let minimumArms = 3
    /// The gain must be at least this many typical score SEs.
    public static let gainInSE = 10.0
    /// Widest acceptable 95% interval of A, as a fraction of the gain.
    public static let maxCIWidthOfGain = 0.5
    /// Widest acceptable 95% interval of C_mid, in decades (high / low ≤ 10).
    public static let maxCMidDecades = 1.0
    /// A score that rises by less than this many typical SEs across the held-out top decade
    /// is a plateau.
    public static let saturationInSE = 3.0
    /// Fewest independent runs per configuration for intervals presented as 95%: the
    /// smallest run count at which the coverage simulation (`CoverageSimulation`, README)
    /// measured at least 90% coverage of A and C_mid.
    public static let minimumRuns = 2
    /// Largest acceptable holdout error (gain-normalised or relative).
    public static let maxHoldoutError = 0.10
    /// Largest acceptable fraction of an allocation law's budgets with the optimum at the edge.
    public static let maxEdgeFraction = 0.5
    /// An over-optimisation law's peak d* must lie at or below this multiple of the largest
    /// measured d (a modest extrapolation), and at or above the smallest.
    public static let maxPeakExtrapolation = 1.5

    /// Grades a law.
    public static func grade(_ l: LawResult) -> LawQuality {
        let e = l.estimate, f = e.fit
        guard f.isOK else { return .noFit }
        if armQuantities.contains(l.quantity) {
            if l.nPoints < minimumArms { return .tooFewArms }
            let edges = l.optimumStatuses.filter { $0 == .atEdge }.count
            if Double(edges) > maxEdgeFraction * Double(l.optimumStatuses.count) { return .edge }
        }
        let gain = f.value("A") - f.value("R0")
        if f.form == .scaleRL, l.typicalSE.isFinite, l.typicalSE > 0, !(gain >= gainInSE * l.typicalSE) { return .gainBelow10SE }
        if f.form == .scaleRL || f.form == .envelope, isSaturated(l) { return .saturated }
        if let r = l.runs, r.fewestPerConfiguration < minimumRuns { return .tooFewRuns }
        if f.form == .scaleRL {
            let a = interval(l, "A"), c = interval(l, "C_mid")
            guard a.low.isFinite, a.high.isFinite, a.high - a.low <= maxCIWidthOfGain * gain,
                  c.low > 0, c.high.isFinite, log10(c.high / c.low) <= maxCMidDecades else { return .ciWide }
        }
        if f.form.isOverOptimisation, !peakResolved(l) { return .noPeak }
        guard e.holdoutError.isFinite, e.holdoutError <= maxHoldoutError else { return .holdoutAbove10Percent }
        if !l.disagreeingSeeds.isEmpty { return .seedsDisagree }
        return .pass
    }

    /// The law's interval of parameter `name` (unknown when it has none).
    static func interval(_ l: LawResult, _ name: String) -> Interval {
        guard let i = l.estimate.fit.form.parameterNames.firstIndex(of: name), i < l.estimate.intervals.count else { return .unknown }
        return l.estimate.intervals[i]
    }

    /// Gate 5: the score rises by less than `saturationInSE` typical SEs across the held-out
    /// top decade, or A's interval reaches the bound A was fitted under while A itself lies
    /// within one typical SE of it (a merely wide interval, capped at the bound, is `ci_wide`).
    static func isSaturated(_ l: LawResult) -> Bool {
        if l.typicalSE.isFinite, l.typicalSE > 0, l.topDecadeRise.isFinite, l.topDecadeRise < saturationInSE * l.typicalSE {
            return true
        }
        guard l.estimate.fit.form == .scaleRL, let bound = l.asymptoteMax else { return false }
        let a = interval(l, "A"), estimate = l.estimate.fit.value("A")
        let near = l.typicalSE.isFinite && l.typicalSE > 0 ? l.typicalSE : bound * 1e-9
        return a.high.isFinite && a.high >= bound * (1 - 1e-9) && estimate >= bound - near
    }

    /// Gate 8: β's 95% interval lies above 0 and the fitted peak d* lies within
    /// [min d, `maxPeakExtrapolation` × max d] of the law's d > 0 data.
    static func peakResolved(_ l: LawResult) -> Bool {
        let f = l.estimate.fit
        let i = f.form.parameterNames.firstIndex(of: "beta") ?? 1
        let beta = i < l.estimate.intervals.count ? l.estimate.intervals[i] : .unknown
        guard beta.low.isFinite, beta.high.isFinite, beta.low > 0 else { return false }
        let d = l.data.x.filter { $0 > 0 && $0.isFinite }
        guard let lo = d.min(), let hi = d.max() else { return false }
        let peak = GaoPeak(f).d
        return peak.isFinite && peak >= lo && peak <= maxPeakExtrapolation * hi
    }

    /// The grade in words, for report.md.
    public var words: String {
        switch self {
        case .pass: "quality: pass"
        case .noFit: "quality: fails — no fit"
        case .tooFewArms: "quality: fails — fewer than 3 distinct arm values"
        case .edge: "quality: fails — the optimum is at the edge of the swept values at more than half of the budgets"
        case .gainBelow10SE: "quality: fails — gain is less than 10 standard errors of the score"
        case .saturated:
            "quality: fails — saturated: the score rises by less than 3 standard errors across the held-out top decade, or A's interval reaches its bound (the holdout tested a plateau)"
        case .tooFewRuns:
            "quality: fails — too few independent runs per configuration (fewer than \(LawQuality.minimumRuns)) for intervals that cover"
        case .ciWide: "quality: fails — the 95% interval of A is wider than half the gain, or C_mid's spans more than a decade (or one is missing)"
        case .noPeak:
            "quality: fails — over-optimisation not resolved: the 95% interval of β includes 0 (or is missing), or the peak is outside the measured range of d"
        case .holdoutAbove10Percent: "quality: fails — holdout error above 10% (or missing)"
        case .seedsDisagree:
            "quality: fails — a seed's own fit puts a headline parameter (the envelope: its value at the largest budget) outside the pooled 95% interval widened for one seed's share of the runs"
        }
    }
}

extension LawResult {
    /// A hand-made law (tests, external fits): `fit` with its parameter `intervals`, holdout
    /// error, typical score SE, per-seed refits, (allocation laws) the optimum status at each
    /// budget of its series and (over-optimisation laws, whose `no_peak` gate reads the range
    /// of d) the data; no derived parameters or band.
    public init(quantity: String, fit: LawFit, intervals: [Interval], holdoutError: Double, nPoints: Int,
                typicalSE: Double = .nan, seedFits: [SeedFit] = [], optimumStatuses: [OptimumStatus] = [],
                data: LawData = LawData(x: [], y: [])) {
        self.init(quantity: quantity, estimate: LawEstimate(fit: fit, intervals: intervals, holdoutError: holdoutError, notes: []),
                  nPoints: nPoints, derived: [], data: data, band: [], typicalSE: typicalSE, seedFits: seedFits,
                  optimumStatuses: optimumStatuses)
    }
}
