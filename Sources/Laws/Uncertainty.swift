@preconcurrency import CGSL
import Foundation
import RLCommon

/// A two-sided confidence interval; both ends NaN when it could not be estimated.
public struct Interval: Sendable, Hashable {
    public var low: Double
    public var high: Double
    /// Creates an interval.
    public init(low: Double, high: Double) { self.low = low; self.high = high }
    /// The interval with no estimate.
    public static let unknown = Interval(low: .nan, high: .nan)
    /// Whether `x` lies inside (inclusive).
    public func contains(_ x: Double) -> Bool { x >= low && x <= high }
}

/// How to bootstrap.
public struct BootstrapOptions: Sendable {
    /// Number of resamples (0 turns the bootstrap off).
    public var resamples: Int
    /// Seed of the resampling stream (`SeededRNG`).
    public var seed: UInt64
    /// Nominal coverage of the intervals (percentile intervals, or the run bootstrap's t·SE intervals).
    public var level: Double

    /// Defaults: 200 resamples, seed 0, 95% intervals.
    public init(resamples: Int = 200, seed: UInt64 = 0, level: Double = 0.95) {
        self.resamples = resamples
        self.seed = seed
        self.level = level
    }
}

/// The nonparametric bootstrap over independent units (cells, or CSV rows).
public enum Bootstrap {
    /// Percentile intervals of a vector statistic: draws `units` unit indices with
    /// replacement `options.resamples` times, evaluates `statistic` on each draw, and takes
    /// the (1 − level)/2 and (1 + level)/2 quantiles of each component over the draws where
    /// it is finite. A component finite in fewer than max(10, resamples/2) draws gets no
    /// interval. Returns the intervals and, per component, the number of finite draws.
    public static func percentile(
        units: Int, options: BootstrapOptions, statistic: ([Int]) -> [Double]
    ) -> (intervals: [Interval], finite: [Int]) {
        percentile(draws(units: units, options: options, statistic: statistic), options: options)
    }

    /// The statistic on each resample: draws `units` unit indices with replacement
    /// `options.resamples` times (seeded) and evaluates `statistic` on each draw (sorted
    /// indices). A draw whose vector has a different width than the first is all NaN. Empty
    /// when there are no units or no resamples.
    public static func draws(units: Int, options: BootstrapOptions, statistic: ([Int]) -> [Double]) -> [[Double]] {
        draws(strata: [Array(0..<units)], options: options, stream: "bootstrap", statistic: statistic)
    }

    /// Fewest finite draws a component needs for an interval (or a frequency): max(10, resamples/2).
    public static func minimumFinite(resamples: Int) -> Int { max(10, resamples / 2) }

    /// Percentile intervals (at `options.level`) of each component of `draws` over the draws
    /// where it is finite, and the number of those draws; no interval for a component finite
    /// in fewer than `minimumFinite` draws.
    public static func percentile(_ draws: [[Double]], options: BootstrapOptions) -> (intervals: [Interval], finite: [Int]) {
        guard let width = draws.first?.count, width > 0 else { return ([], []) }
        let need = minimumFinite(resamples: options.resamples)
        let lo = (1 - options.level) / 2, hi = 1 - lo
        var intervals: [Interval] = [], finite: [Int] = []
        var column = [Double]()
        for j in 0..<width {
            column.removeAll(keepingCapacity: true)
            for d in draws where j < d.count && d[j].isFinite { column.append(d[j]) }
            finite.append(column.count)
            if column.count < need { intervals.append(.unknown); continue }
            column.sort()
            intervals.append(Interval(low: quantile(sorted: column, lo), high: quantile(sorted: column, hi)))
        }
        return (intervals, finite)
    }

    /// The fraction of draws, among those where component `column` is finite, in which it
    /// equals `value`; NaN when `value` is not finite or fewer than `minimumFinite` draws have
    /// the component.
    public static func frequency(_ draws: [[Double]], column: Int, equalTo value: Double, options: BootstrapOptions) -> Double {
        guard value.isFinite else { return .nan }
        var finite = 0, equal = 0
        for d in draws where column < d.count && d[column].isFinite {
            finite += 1
            if d[column] == value { equal += 1 }
        }
        return finite >= minimumFinite(resamples: options.resamples) ? Double(equal) / Double(finite) : .nan
    }
}

/// The independent runs behind an estimate: how many, in how many configurations (the
/// strata of the run bootstrap), and the fewest in any one configuration.
public struct RunCount: Sendable, Hashable {
    public var runs: Int
    public var strata: Int
    public var fewestPerConfiguration: Int

    /// Creates a count.
    public init(runs: Int, strata: Int, fewestPerConfiguration: Int) {
        self.runs = runs; self.strata = strata; self.fewestPerConfiguration = fewestPerConfiguration
    }

    /// The count of `cells` (each an independent run), stratified by configuration (N, n, Bp).
    public init(_ cells: [Cell]) {
        let per = Dictionary(grouping: cells, by: Configuration.init(of:)).values.map(\.count)
        self.init(runs: cells.count, strata: per.count, fewestPerConfiguration: per.min() ?? 0)
    }

    /// Degrees of freedom of the run-to-run spread: runs − configurations.
    public var degreesOfFreedom: Int { runs - strata }

    /// The same design with `k` runs in every configuration.
    public func with(runsPerConfiguration k: Int) -> RunCount { RunCount(runs: k * strata, strata: strata, fewestPerConfiguration: k) }

    /// The factor that turns a run bootstrap's standard deviation into a standard error: the
    /// bootstrap's variance within a stratum of k runs is (k − 1)/k of the sampling variance,
    /// so SE = SD·√(runs / (runs − strata)). NaN without degrees of freedom.
    public var seInflation: Double { degreesOfFreedom > 0 ? (Double(runs) / Double(degreesOfFreedom)).squareRoot() : .nan }

    /// Student's t quantile for a two-sided interval at `level` with these degrees of freedom
    /// (NaN without any).
    public func tQuantile(level: Double) -> Double {
        degreesOfFreedom > 0 ? gsl_cdf_tdist_Pinv((1 + level) / 2, Double(degreesOfFreedom)) : .nan
    }
}

extension Bootstrap {
    /// The run bootstrap: each resample draws, in every stratum (configuration) separately,
    /// as many runs with replacement as the stratum has, so that no configuration drops out of
    /// a resample; `statistic` gets the drawn unit indices, sorted. Empty when there are no
    /// units or no resamples. `stream` names the seeded random stream (one stratum of all the
    /// units on the "bootstrap" stream is `draws(units:)`).
    public static func draws(strata: [[Int]], options: BootstrapOptions, stream: String = "run-bootstrap",
                             statistic: ([Int]) -> [Double]) -> [[Double]] {
        let units = strata.reduce(0) { $0 + $1.count }
        guard units > 0, options.resamples > 0 else { return [] }
        var rng = SeededRNG(seed: options.seed).derived(stream)
        var draws: [[Double]] = []
        draws.reserveCapacity(options.resamples)
        var idx: [Int] = []
        idx.reserveCapacity(units)
        var width = -1
        for _ in 0..<options.resamples {
            idx.removeAll(keepingCapacity: true)
            for s in strata where !s.isEmpty {
                for _ in 0..<s.count { idx.append(s[rng.below(s.count)]) }
            }
            idx.sort()
            let v = statistic(idx)
            if width < 0 { width = v.count }
            draws.append(v.count == width ? v : [Double](repeating: .nan, count: max(width, 0)))
        }
        return draws
    }

    /// The interval of one component of run-bootstrap `draws`: the full-data estimate
    /// `center` ± t·SE, where SE is the standard deviation of the component's finite draws
    /// times `runs.seInflation` and t is Student's quantile at `level` with `runs`' degrees of
    /// freedom. With `logScale` the interval is built on ln x (for positive scales such as
    /// C_mid) and mapped back. Unknown when `center` is not finite (or not positive on a log
    /// scale), the component is finite in fewer than `minimumFinite` draws, or there are no
    /// degrees of freedom (one run per configuration: the run-to-run spread is not measured).
    public static func runInterval(_ draws: [[Double]], column j: Int, center: Double, runs: RunCount, level: Double,
                                   logScale: Bool = false) -> Interval {
        guard center.isFinite, !logScale || center > 0, runs.degreesOfFreedom > 0 else { return .unknown }
        var v: [Double] = []
        v.reserveCapacity(draws.count)
        for d in draws where j < d.count && d[j].isFinite && (!logScale || d[j] > 0) { v.append(logScale ? log(d[j]) : d[j]) }
        guard v.count >= minimumFinite(resamples: draws.count), v.count >= 2 else { return .unknown }
        let mean = v.reduce(0, +) / Double(v.count)
        let sd = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot()
        let half = runs.tQuantile(level: level) * sd * runs.seInflation
        guard half.isFinite else { return .unknown }
        let c = logScale ? log(center) : center
        return logScale ? Interval(low: exp(c - half), high: exp(c + half)) : Interval(low: c - half, high: c + half)
    }

    /// Finite draws of component `j`.
    public static func finiteCount(_ draws: [[Double]], column j: Int) -> Int {
        draws.reduce(0) { $0 + (j < $1.count && $1[j].isFinite ? 1 : 0) }
    }
}

/// A fitted law with its bootstrap intervals and its extrapolation check.
public struct LawEstimate: Sendable {
    /// The fit on all the data.
    public var fit: LawFit
    /// Percentile interval per parameter (`fit.form.parameterNames` order).
    public var intervals: [Interval]
    /// Top-decade extrapolation error in `holdoutMetric` units: the law refitted without the
    /// top compute decade, its predictions there against the observations there (see
    /// `Holdout` and, for grids, `GridAnalysis.analyse`); for the Gao over-optimisation forms
    /// the law refitted without the top quarter of d instead (`Holdout.upperQuantileError`).
    /// NaN when not computable (see notes).
    public var holdoutError: Double
    /// Remarks on the bootstrap and holdout (empty when both went through).
    public var notes: [String]

    /// How `holdoutError` is measured: `gain` for ScaleRL score laws, `relative` otherwise.
    public var holdoutMetric: HoldoutMetric { HoldoutMetric(fit.form) }

    /// `fit.status`, with the notes appended in parentheses: "ok", "ok (holdout: …)", or
    /// the reason there is no fit.
    public var status: String {
        notes.isEmpty || !fit.isOK ? fit.status : fit.status + " (" + notes.joined(separator: "; ") + ")"
    }
}

/// The unit of a holdout error.
public enum HoldoutMetric: String, Sendable, CaseIterable {
    /// Mean |prediction − observation| / (A − R0), the gain of the law checked. For bounded
    /// scores (the ScaleRL form): a score near 0.02 makes a relative error meaningless, while
    /// the gain is the range the law actually describes.
    case gain
    /// Mean |prediction − observation| / |observation|, for unbounded positive quantities
    /// (n*, N*, Bp*, steps*, errors 1 − score).
    case relative
    /// Mean |prediction − observation| / max |y|, the largest gold gain measured, for the Gao
    /// over-optimisation laws: their y is a gain that starts at 0 (a relative error is
    /// meaningless near d = 0), and their own peak gain R* may be unresolved.
    case maxGain = "max_gain"

    /// The metric of a form: `gain` for score laws (`scaleRL` and the configuration
    /// `envelope`), `maxGain` for the Gao over-optimisation forms, `relative` for every other form.
    public init(_ form: LawForm) {
        self = form == .scaleRL || form == .envelope ? .gain : form.isOverOptimisation ? .maxGain : .relative
    }
}

/// Extrapolation check shared by every law: hold out the top decade of compute (points
/// whose compute, or key, exceeds a tenth of the largest), fit below it, and measure the
/// fit's predictions on the held-out points.
public enum Holdout {
    /// Points with a key above `cutFraction` × the largest key are held out.
    public static let cutFraction = 0.1

    /// The gain A − R0 of a ScaleRL fit (the `gain` metric's unit); NaN for other forms.
    public static func gain(of fit: LawFit) -> Double {
        fit.form == .scaleRL ? fit.value("A") - fit.value("R0") : .nan
    }

    /// Mean error of `predicted` against `observed` in `metric` units (`gain` and `maxGain`
    /// divide the mean absolute error by `gain`). Pairs with a non-finite prediction, and for
    /// the relative metric pairs observed at 0, are skipped.
    public static func meanError(
        predicted: [Double], observed: [Double], metric: HoldoutMetric, gain: Double = .nan
    ) -> Result<Double, HoldoutUnavailable> {
        if metric != .relative, !(gain.isFinite && gain > 0) {
            let what = metric == .gain ? "gain A - R0" : "largest gold gain"
            return .failure(HoldoutUnavailable(reason: "\(what) is not positive (\(fmt(gain)))"))
        }
        var sum = 0.0, count = 0
        for (p, obs) in zip(predicted, observed) where p.isFinite && obs.isFinite {
            switch metric {
            case .gain, .maxGain: sum += abs(p - obs)
            case .relative:
                guard obs != 0 else { continue }
                sum += abs(p - obs) / abs(obs)
            }
            count += 1
        }
        guard count > 0 else {
            return .failure(HoldoutUnavailable(reason: "no finite prediction " + (metric == .maxGain ? "above the cut" : "in the top decade")))
        }
        return .success(metric == .relative ? sum / Double(count) : sum / Double(count) / gain)
    }

    /// Refits `form` on the points whose `key` (compute, or N·D for Chinchilla; defaults to
    /// x) is at most a tenth of the largest key, and returns the mean error of the refit's
    /// predictions on the held-out top decade in the form's metric (`HoldoutMetric(form)`),
    /// or a reason why it cannot. `gain` is the unit of the gain metric: A − R0 of the law
    /// being checked (its fit on all of `data`); nil fits that law here. (The `maxGain` unit
    /// of the Gao forms is the largest |y| of `data`; `Laws.estimate` checks those forms with
    /// `upperQuantileError` instead.)
    ///
    /// This is leak-free for one data set whose rows are observations (fit-csv). A grid's
    /// laws are checked by rerunning the whole analysis on truncated cells instead
    /// (`GridAnalysis.analyse`), because their data (envelope argmax series) are themselves
    /// built from fits that saw the top decade.
    public static func error(
        _ form: LawForm, _ data: LawData, options: FitOptions, key: [Double]? = nil, gain: Double? = nil
    ) -> Result<Double, HoldoutUnavailable> {
        let k = key ?? data.x
        guard k.count == data.count, let top = k.filter(\.isFinite).max(), top > 0 else {
            return .failure(HoldoutUnavailable(reason: "no positive compute"))
        }
        let cut = top * cutFraction
        let train = (0..<data.count).filter { k[$0] <= cut }
        let test = (0..<data.count).filter { k[$0] > cut }
        guard !test.isEmpty, !train.isEmpty else { return .failure(HoldoutUnavailable(reason: "data span less than a decade")) }
        var o = options
        o.warmStart = nil
        let refit = Laws.fit(form, data.subset(train), options: o)
        guard refit.isOK else { return .failure(HoldoutUnavailable(reason: "refit below the top decade: \(refit.status)")) }
        let metric = HoldoutMetric(form)
        let unit = switch metric {
        case .gain: gain ?? Holdout.gain(of: Laws.fit(form, data, options: o))
        case .maxGain: data.y.map { abs($0) }.max() ?? .nan
        case .relative: Double.nan
        }
        return meanError(predicted: test.map { refit.predict(data.x[$0], data.x2?[$0] ?? .nan) },
                         observed: test.map { data.y[$0] }, metric: metric, gain: unit)
    }
}

extension Holdout {
    /// The Gao over-optimisation laws are refitted on the points whose d is at or below this
    /// quantile of d (the top quarter is held out).
    public static let overOptimisationQuantile = 0.75
    /// Fewest held-out points for an over-optimisation holdout error.
    public static let minimumHeldOut = 3

    /// The extrapolation check of the Gao over-optimisation forms (`gao_rl`, `gao_bon`): the
    /// cut is the `quantile` of d over the rows with d > 0 (the rows the law is fitted to),
    /// computed from the data alone before any fit; the law is refitted on the rows with d at
    /// or below it, and its mean |prediction − observation| on the rows above it is divided
    /// by the largest |y| over all rows (`HoldoutMetric.maxGain`). Nothing the refit sees lies
    /// above the cut. Unavailable with fewer than `minimumHeldOut` held-out rows, or when the
    /// refit fails (too few rows below the cut among them).
    public static func upperQuantileError(
        _ form: LawForm, _ data: LawData, quantile q: Double = overOptimisationQuantile
    ) -> Result<Double, HoldoutUnavailable> {
        let rows = data.x.indices.filter { data.x[$0] > 0 && data.x[$0].isFinite && data.y[$0].isFinite }
        guard !rows.isEmpty else { return .failure(HoldoutUnavailable(reason: "no point with d > 0")) }
        let cut = quantile(sorted: rows.map { data.x[$0] }.sorted(), q)
        let train = rows.filter { data.x[$0] <= cut }, test = rows.filter { data.x[$0] > cut }
        let percent = Int((100 * q).rounded())
        guard test.count >= minimumHeldOut else {
            return .failure(HoldoutUnavailable(
                reason: "\(test.count) point(s) above the \(percent)th percentile of d (d > \(fmt(cut))), need \(minimumHeldOut)"))
        }
        let refit = Laws.fit(form, data.subset(train))
        guard refit.isOK else {
            return .failure(HoldoutUnavailable(reason: "refit at d <= \(fmt(cut)) (\(percent)th percentile): \(refit.status)"))
        }
        let scale = rows.map { abs(data.y[$0]) }.max() ?? .nan
        return meanError(predicted: test.map { refit.predict(data.x[$0]) }, observed: test.map { data.y[$0] },
                         metric: .maxGain, gain: scale)
    }
}

/// Why there is no holdout error.
public struct HoldoutUnavailable: Error, Sendable {
    /// The reason, as written into `status`.
    public var reason: String
}

extension Laws {
    /// Fits `form` to `data`, bootstraps parameter intervals by resampling units (`units[i]`
    /// is the unit of row i, e.g. the cell it came from; nil = every row is its own unit),
    /// and runs the top-decade holdout check (`holdoutKey` defaults to x, or N·D for
    /// Chinchilla); the Gao over-optimisation forms get the upper-quartile-of-d check
    /// instead (`Holdout.upperQuantileError`; `holdoutKey` is not used).
    public static func estimate(
        _ form: LawForm, _ data: LawData, options: FitOptions = FitOptions(),
        bootstrap: BootstrapOptions = BootstrapOptions(), units: [Int]? = nil, holdoutKey: [Double]? = nil
    ) -> LawEstimate {
        let fit = Laws.fit(form, data, options: options)
        let p = form.parameterNames.count
        guard fit.isOK else {
            return LawEstimate(fit: fit, intervals: [Interval](repeating: .unknown, count: p), holdoutError: .nan, notes: [])
        }
        var notes: [String] = []
        // Bootstrap over units.
        let unitOf = units ?? Array(0..<data.count)
        var rowsOf: [Int: [Int]] = [:]
        for (row, u) in unitOf.enumerated() { rowsOf[u, default: []].append(row) }
        let unitIDs = rowsOf.keys.sorted()
        var intervals = [Interval](repeating: .unknown, count: p)
        if bootstrap.resamples > 0 {
            var quick = options
            quick.quick = true
            quick.warmStart = fit.values
            let r = Bootstrap.percentile(units: unitIDs.count, options: bootstrap) { draw in
                var rows: [Int] = []
                for d in draw { rows.append(contentsOf: rowsOf[unitIDs[d]] ?? []) }
                let f = Laws.fit(form, data.subset(rows), options: quick)
                return f.isOK ? f.values : [Double](repeating: .nan, count: p)
            }
            if r.intervals.count == p { intervals = r.intervals }
            let fitted = r.finite.min() ?? 0
            if fitted < bootstrap.resamples { notes.append("bootstrap: \(fitted)/\(bootstrap.resamples) resamples fitted") }
        }
        for name in fit.fixed {
            if let i = form.parameterNames.firstIndex(of: name) { intervals[i] = Interval(low: fit.values[i], high: fit.values[i]) }
        }
        let key = holdoutKey ?? (form == .chinchilla ? zip(data.x, data.x2 ?? data.x).map { $0 * $1 } : nil)
        var holdout = Double.nan
        let check = form.isOverOptimisation ? Holdout.upperQuantileError(form, data)
            : Holdout.error(form, data, options: options, key: key, gain: Holdout.gain(of: fit))
        switch check {
        case .success(let e): holdout = e
        case .failure(let f): notes.append("holdout: " + f.reason)
        }
        return LawEstimate(fit: fit, intervals: intervals, holdoutError: holdout, notes: notes)
    }
}
