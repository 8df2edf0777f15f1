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
    /// Nominal coverage of the percentile intervals.
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
        guard units > 0, options.resamples > 0 else { return ([], []) }
        var rng = SeededRNG(seed: options.seed).derived("bootstrap")
        var draws: [[Double]] = []
        draws.reserveCapacity(options.resamples)
        var idx = [Int](repeating: 0, count: units)
        var width = -1
        for _ in 0..<options.resamples {
            for i in 0..<units { idx[i] = rng.below(units) }
            idx.sort()
            let s = statistic(idx)
            if width < 0 { width = s.count }
            draws.append(s.count == width ? s : [Double](repeating: .nan, count: max(width, 0)))
        }
        guard width > 0 else { return ([], []) }
        let need = max(10, options.resamples / 2)
        let lo = (1 - options.level) / 2, hi = 1 - lo
        var intervals: [Interval] = [], finite: [Int] = []
        var column = [Double]()
        for j in 0..<width {
            column.removeAll(keepingCapacity: true)
            for d in draws where d[j].isFinite { column.append(d[j]) }
            finite.append(column.count)
            if column.count < need { intervals.append(.unknown); continue }
            column.sort()
            intervals.append(Interval(low: quantile(sorted: column, lo), high: quantile(sorted: column, hi)))
        }
        return (intervals, finite)
    }
}

/// A fitted law with its bootstrap intervals and its extrapolation check.
public struct LawEstimate: Sendable {
    /// The fit on all the data.
    public var fit: LawFit
    /// Percentile interval per parameter (`fit.form.parameterNames` order).
    public var intervals: [Interval]
    /// Mean |prediction − observation| / |observation| on the points of the top compute
    /// decade when the law is refitted without them; NaN when not computable (see notes).
    public var holdoutRelError: Double
    /// Remarks on the bootstrap and holdout (empty when both went through).
    public var notes: [String]

    /// `fit.status`, with the notes appended in parentheses: "ok", "ok (holdout: …)", or
    /// the reason there is no fit.
    public var status: String {
        notes.isEmpty || !fit.isOK ? fit.status : fit.status + " (" + notes.joined(separator: "; ") + ")"
    }
}

/// Extrapolation check shared by every law.
public enum Holdout {
    /// Refits `form` on the points whose `key` (compute, or N·D for Chinchilla; defaults to
    /// x) is at most a tenth of the largest key, and returns the mean relative error of
    /// the refit's predictions on the held-out top decade, or a reason why it cannot.
    public static func relativeError(
        _ form: LawForm, _ data: LawData, options: FitOptions, key: [Double]? = nil
    ) -> Result<Double, HoldoutUnavailable> {
        let k = key ?? data.x
        guard k.count == data.count, let top = k.filter(\.isFinite).max(), top > 0 else {
            return .failure(HoldoutUnavailable(reason: "no positive compute"))
        }
        let cut = top / 10
        let train = (0..<data.count).filter { k[$0] <= cut }
        let test = (0..<data.count).filter { k[$0] > cut }
        guard !test.isEmpty, !train.isEmpty else { return .failure(HoldoutUnavailable(reason: "data span less than a decade")) }
        var o = options
        o.warmStart = nil
        let refit = Laws.fit(form, data.subset(train), options: o)
        guard refit.isOK else { return .failure(HoldoutUnavailable(reason: "refit below the top decade: \(refit.status)")) }
        var sum = 0.0, count = 0
        for i in test {
            let p = refit.predict(data.x[i], data.x2?[i] ?? .nan)
            let obs = data.y[i]
            guard p.isFinite, obs != 0 else { continue }
            sum += abs(p - obs) / abs(obs); count += 1
        }
        guard count > 0 else { return .failure(HoldoutUnavailable(reason: "no finite prediction in the top decade")) }
        return .success(sum / Double(count))
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
    /// Chinchilla).
    public static func estimate(
        _ form: LawForm, _ data: LawData, options: FitOptions = FitOptions(),
        bootstrap: BootstrapOptions = BootstrapOptions(), units: [Int]? = nil, holdoutKey: [Double]? = nil
    ) -> LawEstimate {
        let fit = Laws.fit(form, data, options: options)
        let p = form.parameterNames.count
        guard fit.isOK else {
            return LawEstimate(fit: fit, intervals: [Interval](repeating: .unknown, count: p), holdoutRelError: .nan, notes: [])
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
        switch Holdout.relativeError(form, data, options: options, key: key) {
        case .success(let e): holdout = e
        case .failure(let f): notes.append("holdout: " + f.reason)
        }
        return LawEstimate(fit: fit, intervals: intervals, holdoutRelError: holdout, notes: notes)
    }
}
