import Foundation
import RLCommon
import ResultSchema

// MARK: - Data

/// One measurement for the reward over-optimisation laws: the gold reward at distance
/// d = √KL(π ‖ base) from the base, and how much of it was gained since the base. An RL
/// run gives one per evaluation point that carries reward diagnostics (`EvalPoint.reward`);
/// a best-of-n table gives one per (n, unit) row.
public struct OverOptimisationPoint: Sendable, Hashable {
    /// d = √KL(π ‖ base) in √nats; 0 at step 0 (best-of-n: at n = 1).
    public var d: Double
    /// The gold reward gained since the base: gold − the same run's gold at step 0
    /// (best-of-n: − the unit's best-of-1 gold). The laws' y.
    public var gain: Double
    /// Mean gold reward and its standard error (clustered by problem).
    public var gold: Double
    public var goldSE: Double
    /// Mean proxy (training) reward and hack rate; NaN when unknown (best-of-n tables).
    public var proxy: Double
    public var hackRate: Double
    /// The bootstrap unit: the run's index within its arm (best-of-n: the caller's unit).
    public var unit: Int
    /// The run's seed (`CellConfig.seed`; 0 for best-of-n rows).
    public var seed: UInt64
    /// The run's budget in FLOPs (best-of-n: n).
    public var budget: Double
    /// Whether the point is its run's last evaluation with reward diagnostics (best-of-n: a
    /// row at the largest n).
    public var isFinal: Bool

    /// Creates a point.
    public init(d: Double, gain: Double, gold: Double, goldSE: Double = .nan, proxy: Double = .nan, hackRate: Double = .nan,
                unit: Int, seed: UInt64 = 0, budget: Double = 0, isFinal: Bool = false) {
        self.d = d; self.gain = gain; self.gold = gold; self.goldSE = goldSE; self.proxy = proxy; self.hackRate = hackRate
        self.unit = unit; self.seed = seed; self.budget = budget; self.isFinal = isFinal
    }
}

/// What makes an arm of the over-optimisation analysis: the method (its law-fitter label,
/// knobs included), the training reward (its knob spelling, and the reward model's spec
/// when it is `rm`), the policy's base and the rollouts per problem. Cells that differ only
/// in seed or budget are runs of one arm.
public struct OverOptimisationArmKey: Sendable, Hashable, Comparable {
    /// `CellConfig.methodLabel`, e.g. "grpo[reward=contains:8]".
    public var method: String
    /// `RewardSource.description`: "gold", "contains:8", "rm", …
    public var reward: String
    /// The learned reward model (`reward` = "rm" only; nil otherwise).
    public var rewardModel: RewardModelSpec?
    /// The base's ladder name and non-embedding parameter count.
    public var base: String
    public var parameters: Int
    /// n, rollouts per problem (best-of-n tables: whatever the caller sets, e.g. the largest n).
    public var rolloutsPerProblem: Int
    /// Everything else that sets the runs apart except seed and budget (`setting(of:)`): task
    /// mix and pool, difficulties, learning rate, Bp, lag, curriculum.
    public var setting: String

    /// Creates a key.
    public init(method: String, reward: String, rewardModel: RewardModelSpec? = nil, base: String, parameters: Int,
                rolloutsPerProblem: Int, setting: String = "") {
        self.method = method; self.reward = reward; self.rewardModel = rewardModel; self.base = base
        self.parameters = parameters; self.rolloutsPerProblem = rolloutsPerProblem; self.setting = setting
    }

    /// The part of a config that is neither the arm's own columns nor seed and budget:
    /// runs that differ in it are different arms.
    public static func setting(of c: CellConfig) -> String {
        "\(c.lawGroupLabel) levels=\(c.minDifficulty)-\(c.maxDifficulty.map(String.init) ?? "base") lr=\(compactNumber(Double(c.learningRate)))"
            + " bp=\(c.problemsPerBatch) lag=\(c.policyLag) curriculum=\(c.curriculum)"
    }

    /// The arm of a cell document. A reward-model spec is part of the key only when the
    /// cell trains on the reward model (otherwise it changes nothing the cell does).
    public init(_ r: CellResult) {
        let source = r.config.rewardSource
        self.init(method: r.config.methodLabel, reward: source.description,
                  rewardModel: source == .learned ? (r.config.rewardModel ?? RewardModelSpec()) : nil,
                  base: r.baseName, parameters: r.baseParameters, rolloutsPerProblem: r.config.rolloutsPerProblem,
                  setting: Self.setting(of: r.config))
    }

    /// The reward model as "size/labels/label_noise/ensemble" (empty without one).
    public var rewardModelLabel: String {
        rewardModel.map { "\($0.size)/\($0.labels)/\(knobNumber($0.labelNoise))/\($0.ensemble.description)" } ?? ""
    }

    /// "grpo, reward contains:8, base xs, n=8" (plot titles, notes).
    public var label: String {
        "\(method), reward \(reward)" + (rewardModel == nil ? "" : " [\(rewardModelLabel)]") + ", base \(base), n=\(rolloutsPerProblem)"
    }

    public static func < (a: Self, b: Self) -> Bool {
        let x = (a.method, a.reward, a.rewardModelLabel, a.parameters, a.base), y = (b.method, b.reward, b.rewardModelLabel, b.parameters, b.base)
        return x != y ? x < y : (a.rolloutsPerProblem, a.setting) < (b.rolloutsPerProblem, b.setting)
    }
}

/// Knobs of the over-optimisation analysis.
public struct OverOptimisationOptions: Sendable {
    /// Bootstrap over runs (units): resamples, seed, level.
    public var bootstrap: BootstrapOptions
    /// The forms fitted to each RL arm (Gao forms only; others are dropped, and an empty list
    /// means `[.gaoRL]`). Best-of-n tables are always fitted with `gaoBoN`.
    public var forms: [LawForm]
    /// Read a result store whose cells mix numerics versions (`CellStore.load`'s rule).
    public var allowMixedNumerics: Bool

    /// Defaults: 200 resamples (seed 0, 95%), `gao_rl`, one numerics version.
    public init(bootstrap: BootstrapOptions = BootstrapOptions(), forms: [LawForm] = [.gaoRL], allowMixedNumerics: Bool = false) {
        self.bootstrap = bootstrap
        self.forms = forms
        self.allowMixedNumerics = allowMixedNumerics
    }

    /// `forms` as fitted: the Gao forms among them, once each, or `[.gaoRL]`.
    var rlForms: [LawForm] {
        var out: [LawForm] = []
        for f in forms where f.isOverOptimisation && !out.contains(f) { out.append(f) }
        return out.isEmpty ? [.gaoRL] : out
    }
}

// MARK: - Results

/// One Gao law fitted to one arm.
public struct OverOptimisationLaw: Sendable {
    /// The law: quantity `gold_gain`; its estimate (fit on all the arm's points, 95% bootstrap
    /// intervals of α and β over runs, the upper-quartile-of-d holdout error in units of the
    /// largest gold gain, notes), derived `d_star` and `r_star` with their bootstrap
    /// intervals, the data (x = d, y = gold gain, d = 0 rows included but not fitted), the
    /// typical gold SE and the per-seed refits. `law.quality` is its grade.
    public var law: LawResult

    /// The fitted form (`gao_rl` or `gao_bon`).
    public var form: LawForm { law.estimate.fit.form }
    /// The fit on all the arm's points.
    public var fit: LawFit { law.estimate.fit }
    /// The fitted law's peak (NaN when it has none).
    public var peak: GaoPeak { GaoPeak(fit) }
    /// The quality grade: `pass`, or the first gate it fails (`no_fit`, `no_peak`,
    /// `holdout>10%`, `seeds_disagree`; see `LawQuality`).
    public var quality: LawQuality { law.quality }
    /// "ok", "ok (notes)" or why there is no fit.
    public var status: String { law.estimate.status }

    /// A parameter (`alpha`, `beta`) or derived quantity (`d_star`, `r_star`); NaN if unknown.
    public func value(_ name: String) -> Double {
        if let d = law.derived.first(where: { $0.name == name }) { return d.value }
        return fit.value(name)
    }

    /// The 95% bootstrap interval of `value(name)` (unknown when not estimable).
    public func interval(_ name: String) -> Interval {
        if let d = law.derived.first(where: { $0.name == name }) { return d.interval }
        guard let i = form.parameterNames.firstIndex(of: name), i < law.estimate.intervals.count else { return .unknown }
        return law.estimate.intervals[i]
    }
}

/// One arm: its runs' points, its laws and what the data show without a law.
public struct OverOptimisationArm: Sendable {
    public var key: OverOptimisationArmKey
    /// The runs (units) in unit order: cell ids (best-of-n: the caller's unit numbers).
    public var runs: [String]
    /// Every point, the d = 0 ones (step 0, best-of-1) included.
    public var points: [OverOptimisationPoint]
    /// One law per fitted form.
    public var laws: [OverOptimisationLaw]
    /// The distinct seeds of the runs, ascending.
    public var seeds: [UInt64]
    /// The median of the points' finite positive gold SEs (NaN when none is known).
    public var typicalGoldSE: Double
    /// Whether the data themselves show over-optimisation (rise, then fall), without any law:
    /// the largest gain is reached at a d strictly below the largest d, and the final gain
    /// (the mean over the last evaluations of the arm's largest-budget runs; best-of-n: the
    /// mean at the largest n) is lower than that largest gain by more than 2 × the typical
    /// gold SE (more than 0 when no SE is known). RL arms compare per-point gains;
    /// best-of-n arms compare the per-n means (see `OverOptimisation.fitBoN`).
    public var peakObserved: Bool
    /// Means over the final points (the last evaluations of the largest-budget runs, which
    /// reach the largest d; best-of-n: the rows at the largest n) of the proxy reward, the
    /// gold reward and the hack rate (NaN when unknown).
    public var finalProxy: Double
    public var finalGold: Double
    public var finalHackRate: Double

    /// The largest d measured.
    public var dMax: Double { points.map(\.d).filter(\.isFinite).max() ?? .nan }
    /// Points with d > 0 (the ones the laws are fitted to).
    public var fittedPoints: Int { points.filter { $0.d > 0 }.count }
    /// Mean gold reward at d = 0 (the base's), NaN without such a point.
    public var baseGold: Double { OverOptimisation.mean(points.filter { $0.d == 0 }.map(\.gold)) }
    /// The law of `form`, if fitted.
    public func law(_ form: LawForm) -> OverOptimisationLaw? { laws.first { $0.form == form } }
}

/// The over-optimisation analysis of a result store (or of cell documents, or best-of-n
/// tables added by the caller).
public struct OverOptimisationReport: Sendable {
    /// Arms sorted by key.
    public var arms: [OverOptimisationArm]
    /// Cells left out and why (failed, unreadable, no reward diagnostics at step 0).
    public var skipped: [(id: String, reason: String)]

    /// Creates a report (e.g. to add best-of-n arms from `OverOptimisation.fitBoN`).
    public init(arms: [OverOptimisationArm], skipped: [(id: String, reason: String)] = []) {
        self.arms = arms
        self.skipped = skipped
    }
}

// MARK: - Analysis

/// Reward over-optimisation (Gao et al., arXiv 2210.10760): how the gold reward gained by a
/// policy trained on a proxy reward depends on how far it moved from its base,
/// d = √KL(π ‖ base), fitted with the Gao laws (`LawForm.gaoRL`, `LawForm.gaoBoN`).
///
/// Arms: cells are grouped by `OverOptimisationArmKey` (method label, reward source and
/// reward-model spec, base, n). An arm's points are every evaluation point with reward
/// diagnostics of every done cell of the arm: x = d, y = gold − the same cell's gold at step
/// 0; the unit is the cell (run).
///
/// Per arm and form (`OverOptimisationLaw`):
/// - the law fitted on all points (robust linear regression; convex, one minimum);
/// - 95% percentile intervals of α, β, d*, R* from `bootstrap.resamples` resamples of the
///   arm's runs with replacement (seeded; none with fewer than two runs). Intervals of d*
///   and R* are over the resamples whose law has a peak, and missing when fewer than half do;
/// - a leak-free holdout: the cut is the 75th percentile of the arm's d > 0 (from the data
///   alone), the law is refitted at or below it and its mean |prediction − observation| above
///   it is divided by the largest |gain| of the arm (`Holdout.upperQuantileError`; NaN with
///   a note when fewer than 3 points are held out or the refit fails);
/// - per-seed refits when the arm has at least two seeds: a seed disagrees when its α or β
///   lies outside the pooled 95% interval (`LawResult.disagreeingSeeds`);
/// - the grade (`LawQuality`): `no_fit`, `no_peak`, `holdout>10%`, `seeds_disagree` or `pass`.
///
/// Per arm without a law: `peakObserved`, and the final proxy, gold and hack rate.
public enum OverOptimisation {
    /// The quantity name of the Gao laws (`LawResult.quantity`).
    public static let quantity = "gold_gain"

    /// Reads every `RESULTS/cells/*.json` (as `CellStore.load` does: the current schema only,
    /// one numerics version unless `options.allowMixedNumerics`) and analyses the done cells.
    /// Throws when the folder is not a result store or mixes numerics versions; a document
    /// that cannot be read is skipped with its reason.
    public static func analyse(results: String, options: OverOptimisationOptions = OverOptimisationOptions()) throws(LawError)
        -> OverOptimisationReport
    {
        let (ids, docs, skipped) = try CellDocuments.load(results: results, allowMixedNumerics: options.allowMixedNumerics)
        var report = analyse(cells: docs, ids: ids, options: options)
        report.skipped = skipped + report.skipped
        return report
    }

    /// Analyses cell documents (`ids[i]` names `cells[i]`; default "run<i>"). Cells that are
    /// not done, or have no finite reward diagnostics at step 0 (older documents, gold
    /// baseline unknown), are skipped with the reason.
    public static func analyse(cells: [CellResult], ids: [String]? = nil, options: OverOptimisationOptions = OverOptimisationOptions())
        -> OverOptimisationReport
    {
        var skipped: [(id: String, reason: String)] = []
        var byKey: [OverOptimisationArmKey: [(id: String, cell: CellResult)]] = [:]
        for (i, c) in cells.enumerated() {
            let id = ids.flatMap { i < $0.count ? $0[i] : nil } ?? "run\(i)"
            guard c.status == "done" else { skipped.append((id, "status \(c.status)")); continue }
            guard let base = c.curve.first(where: { $0.step == 0 })?.reward, base.gold.isFinite else {
                skipped.append((id, "no reward diagnostics at step 0 (the gold baseline)")); continue
            }
            byKey[OverOptimisationArmKey(c), default: []].append((id, c))
        }
        let forms = options.rlForms
        let arms = byKey.keys.sorted().map { key -> OverOptimisationArm in
            let runs = (byKey[key] ?? []).sorted { $0.id < $1.id }
            var points: [OverOptimisationPoint] = []
            for (unit, run) in runs.enumerated() {
                let c = run.cell
                let base = c.curve.first(where: { $0.step == 0 })?.reward?.gold ?? .nan
                let measured = c.curve.compactMap(\.reward).filter { $0.d.isFinite && $0.d >= 0 && $0.gold.isFinite }
                for (j, r) in measured.enumerated() {
                    points.append(OverOptimisationPoint(
                        d: r.d, gain: r.gold - base, gold: r.gold, goldSE: r.goldSE ?? .nan, proxy: r.proxy, hackRate: r.hackRate,
                        unit: unit, seed: c.config.seed, budget: c.config.budgetFLOPs, isFinal: j == measured.count - 1))
                }
            }
            return analyseArm(key: key, runs: runs.map(\.id), points: points, forms: forms, bootstrap: options.bootstrap)
        }
        return OverOptimisationReport(arms: arms, skipped: skipped)
    }

    /// Fits `forms` (Gao forms; others are dropped, none means `gao_rl`) to one arm's points
    /// and measures the arm: the shared core of `analyse` and `fitBoN`, public so that points
    /// built elsewhere go through the same code. `runs[u]` names unit u (for the report);
    /// points with a non-finite or negative d, or a non-finite gain, are left out.
    public static func analyseArm(
        key: OverOptimisationArmKey, runs: [String], points: [OverOptimisationPoint], forms: [LawForm] = [.gaoRL],
        bootstrap: BootstrapOptions = BootstrapOptions()
    ) -> OverOptimisationArm {
        let pts = points.filter { $0.d.isFinite && $0.d >= 0 && $0.gain.isFinite }
        let typicalSE = median(pts.map(\.goldSE).filter { $0.isFinite && $0 > 0 })
        let finals = finalPoints(pts)
        let finalGain = mean(finals.map(\.gain))
        let curve = pts.map { (d: $0.d, gain: $0.gain) }
        let fitted = OverOptimisationOptions(forms: forms).rlForms
        let laws = fitted.map { fitLaw($0, pts, typicalSE: typicalSE, bootstrap: bootstrap, notes: []) }
        return OverOptimisationArm(
            key: key, runs: runs, points: pts, laws: laws, seeds: Array(Set(pts.map(\.seed))).sorted(), typicalGoldSE: typicalSE,
            peakObserved: peakObserved(curve, finalGain: finalGain, margin: 2 * typicalSE),
            finalProxy: mean(finals.map(\.proxy)), finalGold: mean(finals.map(\.gold)), finalHackRate: mean(finals.map(\.hackRate)))
    }

    /// d = √KL of best-of-n sampling against the base, √(ln n − (n − 1)/n) (Gao et al.'s
    /// analytic KL of best-of-n); NaN for n < 1.
    public static func bonDistance(n: Int) -> Double {
        guard n >= 1 else { return .nan }
        let x = Double(n)
        return max(0, log(x) - (x - 1) / x).squareRoot()
    }

    /// Fits `gao_bon` to a best-of-n table with the same code as the RL arms. Each row is one
    /// unit's (a problem's, or a group's: the caller decides) gold reward at n, with d from n
    /// (e.g. `bonDistance(n:)`). The gain of a row is its gold − the best-of-1 gold of the same
    /// unit (the mean over the unit's n = 1 rows; a unit without one is compared with the
    /// mean over all n = 1 rows). Rows with n < 1 or a non-finite d or gold are dropped (noted
    /// in the status). Bootstrap intervals resample units; the holdout refits at or below the
    /// 75th percentile of d and checks the largest d values. `peakObserved` compares the mean
    /// gain per n: the largest at an n below the largest n, and the mean at the largest n
    /// lower by more than 2 × the median over n of √(Σ goldSE²) / rows (the SE of each mean;
    /// without per-row SEs, the standard deviation over the units / √units).
    /// Final gold: the mean at the largest n (proxy and hack rate are unknown).
    /// `options.forms` is not used: the form is `gao_bon`.
    public static func fitBoN(
        points rows: [(n: Int, d: Double, gold: Double, goldSE: Double, unit: Int)], key: OverOptimisationArmKey,
        options: OverOptimisationOptions = OverOptimisationOptions()
    ) -> OverOptimisationArm {
        let good = rows.filter { $0.n >= 1 && $0.d.isFinite && $0.d >= 0 && $0.gold.isFinite }
        var notes: [String] = []
        if good.count < rows.count { notes.append("\(rows.count - good.count) row(s) dropped: n < 1, or d or gold not finite") }
        let units = Array(Set(good.map(\.unit))).sorted()
        let ones = good.filter { $0.n == 1 }
        let pooled = mean(ones.map(\.gold))
        var baseOf: [Int: Double] = [:]
        for u in units {
            let own = ones.filter { $0.unit == u }.map(\.gold)
            baseOf[u] = own.isEmpty ? pooled : mean(own)
        }
        let maxN = good.map(\.n).max() ?? 0
        let points = good.map { r in
            OverOptimisationPoint(d: r.d, gain: r.gold - (baseOf[r.unit] ?? .nan), gold: r.gold, goldSE: r.goldSE, unit: r.unit,
                                  budget: Double(r.n), isFinal: r.n == maxN)
        }
        let typicalSE = median(points.map(\.goldSE).filter { $0.isFinite && $0 > 0 })
        let law: OverOptimisationLaw
        if pooled.isNaN {
            var fit = LawFit.failure(.gaoBoN, "no best-of-1 row: the gold gain needs the n = 1 baseline", nPoints: 0, options: FitOptions())
            fit.nPoints = points.filter { $0.d > 0 }.count
            law = OverOptimisationLaw(law: LawResult(
                quantity: quantity, estimate: LawEstimate(fit: fit, intervals: [.unknown, .unknown], holdoutError: .nan, notes: notes),
                nPoints: fit.nPoints, derived: [("d_star", .nan, .unknown), ("r_star", .nan, .unknown)],
                data: LawData(x: points.map(\.d), y: points.map(\.gain)), band: [], typicalSE: typicalSE))
        } else {
            law = fitLaw(.gaoBoN, points, typicalSE: typicalSE, bootstrap: options.bootstrap, notes: notes)
        }
        // Per-n means and the SE of each mean.
        var curve: [(d: Double, gain: Double)] = [], meanSEs: [Double] = []
        for n in Set(points.map(\.budget)).sorted() {
            let at = points.filter { $0.budget == n }
            curve.append((d: mean(at.map(\.d)), gain: mean(at.map(\.gain))))
            let se2 = at.map { $0.goldSE * $0.goldSE }
            if se2.allSatisfy({ $0.isFinite }) {
                meanSEs.append(se2.reduce(0, +).squareRoot() / Double(at.count))
            } else if at.count > 1 {
                // No per-row SE (one expectation per problem): the spread over the units.
                let g = at.map(\.gain), m = mean(g)
                meanSEs.append((g.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(at.count - 1) / Double(at.count)).squareRoot())
            }
        }
        let finals = finalPoints(points)
        return OverOptimisationArm(
            key: key, runs: units.map(String.init), points: points, laws: [law], seeds: [0], typicalGoldSE: typicalSE,
            peakObserved: peakObserved(curve, finalGain: mean(finals.map(\.gain)), margin: 2 * median(meanSEs)),
            finalProxy: .nan, finalGold: mean(finals.map(\.gold)), finalHackRate: .nan)
    }

    // MARK: Internals

    /// The law of `form` on `points`: the fit, the bootstrap over units, the holdout and the
    /// per-seed refits.
    static func fitLaw(_ form: LawForm, _ points: [OverOptimisationPoint], typicalSE: Double, bootstrap: BootstrapOptions,
                       notes extra: [String]) -> OverOptimisationLaw {
        let data = LawData(x: points.map(\.d), y: points.map(\.gain))
        let fit = Laws.fit(form, data)
        var notes = extra
        var intervals = [Interval](repeating: .unknown, count: 4)
        var holdoutError = Double.nan
        var seedFits: [SeedFit] = []
        /// α, β, d*, R* of a fit (NaN when it failed; d*, R* NaN when it has no peak).
        func statistic(_ f: LawFit) -> [Double] {
            guard f.isOK else { return [Double](repeating: .nan, count: 4) }
            let p = GaoPeak(f)
            return [f.value("alpha"), f.value("beta"), p.d, p.gain]
        }
        if fit.isOK {
            var rowsOf: [Int: [Int]] = [:]
            for (row, p) in points.enumerated() { rowsOf[p.unit, default: []].append(row) }
            let units = rowsOf.keys.sorted()
            if bootstrap.resamples > 0 {
                if units.count >= 2 {
                    let draws = Bootstrap.draws(units: units.count, options: bootstrap) { draw in
                        var rows: [Int] = []
                        for i in draw { rows += rowsOf[units[i]] ?? [] }
                        return statistic(Laws.fit(form, data.subset(rows)))
                    }
                    let r = Bootstrap.percentile(draws, options: bootstrap)
                    if r.intervals.count == 4 { intervals = r.intervals }
                    let refitted = r.finite.prefix(2).min() ?? 0
                    if refitted < bootstrap.resamples { notes.append("bootstrap: \(refitted)/\(bootstrap.resamples) resamples fitted") }
                    if r.finite.count == 4, r.finite[2] < bootstrap.resamples {
                        notes.append("bootstrap: a peak in \(r.finite[2])/\(bootstrap.resamples) resamples")
                    }
                } else {
                    notes.append("bootstrap: one run, no interval")
                }
            }
            switch Holdout.upperQuantileError(form, data) {
            case .success(let e): holdoutError = e
            case .failure(let f): notes.append("holdout: " + f.reason)
            }
            let seeds = Array(Set(points.map(\.seed))).sorted()
            if seeds.count >= 2 {
                for s in seeds {
                    let own = Laws.fit(form, data.subset(points.indices.filter { points[$0].seed == s }))
                    if own.isOK { seedFits.append(SeedFit(seed: s, values: own.values, intervals: [.unknown, .unknown])) }
                }
            }
        }
        let peak = statistic(fit)
        let estimate = LawEstimate(fit: fit, intervals: Array(intervals.prefix(2)), holdoutError: holdoutError, notes: notes)
        return OverOptimisationLaw(law: LawResult(
            quantity: quantity, estimate: estimate, nPoints: fit.nPoints,
            derived: [("d_star", peak[2], intervals[2]), ("r_star", peak[3], intervals[3])],
            data: data, band: [], typicalSE: typicalSE, seedFits: seedFits))
    }

    /// The final points: those marked final whose budget is the largest among them.
    static func finalPoints(_ points: [OverOptimisationPoint]) -> [OverOptimisationPoint] {
        let finals = points.filter(\.isFinal)
        guard let top = finals.map(\.budget).max() else { return [] }
        return finals.filter { $0.budget == top }
    }

    /// Rise then fall: the largest gain of `curve` lies at a d below the largest d, and
    /// exceeds `finalGain` by more than `margin` (0 when the margin is unknown).
    static func peakObserved(_ curve: [(d: Double, gain: Double)], finalGain: Double, margin: Double) -> Bool {
        guard let top = curve.max(by: { $0.gain < $1.gain }), let dMax = curve.map(\.d).max(), finalGain.isFinite else { return false }
        return top.d < dMax && top.gain - finalGain > (margin.isFinite ? max(0, margin) : 0)
    }

    /// Mean of the finite values (NaN when there are none).
    static func mean(_ v: [Double]) -> Double {
        let f = v.filter(\.isFinite)
        return f.isEmpty ? .nan : f.reduce(0, +) / Double(f.count)
    }

    /// Median of the finite values (NaN when there are none).
    static func median(_ v: [Double]) -> Double { quantile(sorted: v.filter(\.isFinite).sorted(), 0.5) }
}

// MARK: - Output

extension OverOptimisationReport {
    /// The columns of `overoptimisation.csv`.
    public static let columns = [
        "method", "reward", "rm_size", "rm_labels", "rm_label_noise", "rm_ensemble", "base", "params", "n", "setting", "runs", "points", "form",
        "alpha", "alpha_lo", "alpha_hi", "beta", "beta_lo", "beta_hi", "d_star", "d_star_lo", "d_star_hi",
        "r_star", "r_star_lo", "r_star_hi", "d_max", "peak_observed", "holdout_error", "quality",
        "final_proxy", "final_gold", "final_hack_rate", "status",
    ]

    /// `overoptimisation.csv`, one row per (arm, form):
    ///
    /// - `method`, `reward`: the method label and the reward source spelling; `rm_size`,
    ///   `rm_labels`, `rm_label_noise`, `rm_ensemble`: the reward model (empty unless `rm`);
    ///   `base`, `params`: the policy's base and its non-embedding parameters; `n`: rollouts
    ///   per problem; `setting`: the rest that sets arms apart (`OverOptimisationArmKey.setting`).
    /// - `runs`: runs (units) in the arm; `points`: points with d > 0 (the fitted ones).
    /// - `form`: `gao_rl` (d (α − β ln d)) or `gao_bon` (d (α − β d)); `alpha`, `beta` with
    ///   95% bootstrap intervals over runs (`_lo`, `_hi`); `d_star`, `r_star`: the law's peak
    ///   (√KL where the gold gain is largest, and that gain) with their intervals; empty
    ///   when there is no fit, no peak or no interval.
    /// - `d_max`: the largest d measured; `peak_observed`: `true` when the data themselves
    ///   rise then fall (`OverOptimisationArm.peakObserved`).
    /// - `holdout_error`: mean |prediction − observation| on the points above the 75th
    ///   percentile of d of the law refitted below it, over the largest gold gain (empty when
    ///   not computable; the reason is in `status`).
    /// - `quality`: `pass`, `no_fit`, `no_peak`, `holdout>10%` or `seeds_disagree` (`LawQuality`).
    /// - `final_proxy`, `final_gold`, `final_hack_rate`: means at the largest d (the last
    ///   evaluations of the largest-budget runs).
    /// - `status`: "ok", "ok (notes)" or why there is no fit.
    public func table() -> CSVTable {
        var t = CSVTable(header: Self.columns)
        for a in arms {
            let k = a.key, rm = k.rewardModel
            let head = [k.method, k.reward, rm?.size ?? "", rm.map { String($0.labels) } ?? "", rm.map { knobNumber($0.labelNoise) } ?? "",
                        rm?.ensemble.description ?? "", k.base, String(k.parameters), String(k.rolloutsPerProblem), k.setting,
                        String(a.runs.count), String(a.fittedPoints)]
            for l in a.laws {
                var row = head + [l.form.rawValue]
                for name in ["alpha", "beta", "d_star", "r_star"] {
                    let iv = l.interval(name)
                    row += [csvNumber(l.value(name)), csvNumber(iv.low), csvNumber(iv.high)]
                }
                row += [csvNumber(a.dMax), a.peakObserved ? "true" : "false", csvNumber(l.law.estimate.holdoutError), l.quality.rawValue,
                        csvNumber(a.finalProxy), csvNumber(a.finalGold), csvNumber(a.finalHackRate), l.status]
                t.rows.append(row)
            }
        }
        return t
    }

    /// One plot per arm, `overopt_<slug>.svg` (slug from the arm's key; a repeated slug gets
    /// "-2", "-3", …): gold and proxy reward of every point against d (step 0 at d = 0), and
    /// each fitted law drawn through gold (the arm's mean gold at d = 0 plus the law's gain),
    /// out to the largest d or the law's peak if that is within 1.5 × the largest d.
    public func plots() -> [(name: String, plot: SVGPlot)] {
        var out: [(name: String, plot: SVGPlot)] = []
        var used: [String: Int] = [:]
        for a in arms {
            let k = a.key
            let parts = [k.method, k.reward] + (k.rewardModel == nil ? [] : [k.rewardModelLabel]) + [k.base, "n\(k.rolloutsPerProblem)"]
            var slug = ReportPlots.slug(parts.joined(separator: "-"))
            used[slug, default: 0] += 1
            if let c = used[slug], c > 1 { slug += "-\(c)" }
            var plot = SVGPlot(title: "Over-optimisation: \(k.label)", xLabel: "d = sqrt(KL(policy || base))",
                               yLabel: "reward (mean on eval samples)", xLog: false, yLog: false)
            plot.series.append(.init(name: "gold", points: a.points.map { (x: $0.d, y: $0.gold) }, style: .markers, color: 0))
            let proxy = a.points.filter { $0.proxy.isFinite }.map { (x: $0.d, y: $0.proxy) }
            if !proxy.isEmpty { plot.series.append(.init(name: "proxy", points: proxy, style: .markers, color: 1)) }
            let base = a.baseGold, dMax = a.dMax
            if base.isFinite, dMax.isFinite, dMax > 0 {
                for (i, l) in a.laws.enumerated() where l.fit.isOK {
                    let peak = l.peak.d
                    let end = peak.isFinite && peak > dMax && peak <= LawQuality.maxPeakExtrapolation * dMax ? peak : dMax
                    let xs = (0...80).map { end * Double($0) / 80 }
                    plot.series.append(.init(name: "\(l.form.rawValue) law (gold)", points: xs.map { (x: $0, y: base + l.fit.predict($0)) },
                                             style: i == 0 ? .line : .dashed, color: 2 + i))
                }
            }
            out.append(("overopt_\(slug).svg", plot))
        }
        return out
    }

    /// Writes the table (`overoptimisation.csv`) and the plots (`overopt_<arm>.svg`; another
    /// `plotPrefix` replaces `overopt_`) into `dir` (created if needed), each file atomically.
    /// Returns the paths written.
    @discardableResult
    public func write(to dir: String, table name: String = "overoptimisation.csv", plotPrefix: String = "overopt_") throws(LawError) -> [String] {
        var out = try OutputFolder(dir)
        try out.put(name, table().render())
        for (file, plot) in plots() { try out.put(plotPrefix + file.dropFirst("overopt_".count), plot.render()) }
        return out.written
    }
}
