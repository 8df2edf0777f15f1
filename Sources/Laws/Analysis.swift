import Foundation

/// Knobs of a grid analysis.
public struct AnalysisOptions: Sendable {
    /// The run bootstrap (resamples, seed, level).
    public var bootstrap: BootstrapOptions
    /// Number of log-spaced budgets for envelopes, allocations and bands.
    public var budgets: Int
    /// ScaleRL fit window: points below this fraction of the arm's (or frontier's) largest
    /// compute are dropped from score-vs-compute fits (0 keeps every point with C > 0).
    public var fitWindowFraction: Double
    /// Huber δ of the Chinchilla fit.
    public var huberDelta: Double
    /// Upper bound on the ScaleRL asymptote A (1 for pass rates; nil = unbounded).
    public var asymptoteMax: Double?

    /// Settings (`CellSetting` keys) pooled on purpose: runs that differ only in them share a
    /// law group (`rlscale fit --pool`).
    public var pool: Set<String>
    /// Whether groups with two or more seeds refit every law on each seed alone (`seedFits`,
    /// the `seeds_disagree` gate). The coverage simulation turns it off.
    public var replicate: Bool

    /// The grid analysis's default run bootstrap: 1,000 resamples, at which an interval's
    /// half-width moves by about 2% between bootstrap seeds (its SD is estimated to 1/√2000);
    /// at 200 the main job's C_mid ends moved by 13%.
    public static let defaultResamples = 1000

    /// Defaults: 1,000 resamples, 24 budgets, no window, δ = 1e-3, A ≤ 1, nothing pooled,
    /// per-seed replication.
    public init(bootstrap: BootstrapOptions = BootstrapOptions(resamples: AnalysisOptions.defaultResamples), budgets: Int = 24, fitWindowFraction: Double = 0,
                huberDelta: Double = 1e-3, asymptoteMax: Double? = 1, pool: Set<String> = [], replicate: Bool = true) {
        self.bootstrap = bootstrap
        self.budgets = budgets
        self.fitWindowFraction = fitWindowFraction
        self.huberDelta = huberDelta
        self.asymptoteMax = asymptoteMax
        self.pool = pool
        self.replicate = replicate
    }
}

/// One law of one (method, task mixture) group.
public struct LawResult: Sendable {
    /// What is modelled: "score_frontier", "score_envelope", "error_frontier", "score[n=8]",
    /// "score[N=25472,n=8,Bp=8]", "n_star", "N_star", "Bp_star", "steps_star", "error".
    public var quantity: String
    /// The fit, its bootstrap intervals and holdout error.
    public var estimate: LawEstimate
    /// `n_points` as reported: the points fitted, except for `n_star`, `N_star` and
    /// `Bp_star`, whose series repeat each argmax arm at many interpolated budgets: there
    /// it is the number of distinct argmax arm values in the series.
    public var nPoints: Int
    /// Parameters derived from the fit (Chinchilla: G, N_opt_exponent, D_opt_exponent, k),
    /// with bootstrap intervals.
    public var derived: [(name: String, value: Double, interval: Interval)]
    /// The data it was fitted to (x = compute or budget; Chinchilla: x = N, x2 = rollouts).
    public var data: LawData
    /// Predictions at the group's budgets with pointwise bootstrap intervals (single-input
    /// laws of compute only; empty otherwise).
    public var band: [(budget: Double, value: Double, interval: Interval)]
    /// Typical standard error of the score data the law was fitted to: the median of the
    /// points' finite positive SEs (score laws only; NaN when none is known).
    public var typicalSE: Double = .nan
    /// Per-seed refits of this law (groups with ≥ 2 seeds): one per seed whose own analysis
    /// fitted it, when the pooled law fitted too; empty otherwise (see `Replication`).
    public var seedFits: [SeedFit] = []
    /// `n_star`, `N_star`, `Bp_star`: where the optimum along the law's dimension lies at each
    /// budget of its series (`DimensionOptimum.status`), which the `edge` gate reads; empty
    /// for every other law.
    public var optimumStatuses: [OptimumStatus] = []
    /// The independent runs behind the law (nil for laws not fitted to runs: fit-csv, hand-made).
    public var runs: RunCount? = nil
    /// Score laws: the observed rise across the held-out top decade (`TopDecadeRise`), which
    /// the `saturated` gate reads; NaN when not measurable.
    public var topDecadeRise: Double = .nan
    /// Score laws: the bound A was fitted under (1 for pass rates; nil = unbounded).
    public var asymptoteMax: Double? = nil
    /// Evaluation problems behind each score point (0 when unknown): `eval_problems_needed`.
    public var evalProblems: Int = 0
    /// Mean wall seconds of one of the law's runs (NaN when unknown): `core_hours_needed`.
    public var wallSecondsPerRun: Double = .nan

    /// The law's quality grade (see `LawQuality`).
    public var quality: LawQuality { LawQuality.grade(self) }
}

/// One row of the allocation table.
public struct AllocationRow: Sendable {
    /// Budget C in FLOPs.
    public var budget: Double
    /// Rollouts the budget buys at N*: C / F_roll(N*), F_roll = median charged FLOPs per
    /// rollout of the group's cells at N*.
    public var rollouts: Double
    /// The coordinates (N, n, Bp) of the argmax configuration of the configuration laws'
    /// envelope at C (NaN when none competes).
    public var parameters: Double
    public var rolloutsPerProblem: Double
    public var problemsPerBatch: Double
    /// RL steps M* = C / (Bp*·n*·F_roll(N*)).
    public var steps: Double
    /// The envelope of the configuration laws at C, with its run-bootstrap interval (`Core.runIntervals`).
    public var score: Double
    public var interval: Interval
    /// Per dimension: the fraction of bootstrap resamples, among those whose envelope exists
    /// at C, whose argmax configuration has the same coordinate as the full data's (NaN when
    /// not estimable: no bootstrap, or too few resamples with an envelope at C).
    public var frequency: [ArmDimension: Double] = [:]
    /// Per dimension: the discrete and continuous optimum and its status (empty when no
    /// configuration competes at C).
    public var optimum: [ArmDimension: DimensionOptimum] = [:]
}

/// Everything fitted for one law group: a method label, a task mixture and one value of every
/// other setting that varies in the store and does not follow the allocation (`LawGrouping`).
public struct GroupResult: Sendable {
    public var method: String
    public var taskMix: String
    /// The group's values of the settings that vary in the store ("lag" = "4"), in registry order.
    public var settings: [(key: String, value: String)] = []
    /// The group's independent runs (cells whose prefixes were folded in, `RunMerge`).
    public var cells: [Cell]
    /// Empirical frontier points.
    public var frontier: [FrontierPoint]
    /// The empirical frontier's value at compute 0, i.e. the best step-0 score of the
    /// group's cells: R0 of the frontier law (NaN when no cell has a step-0 point).
    public var initialScore: Double
    /// Arm laws per dimension, arms sorted by value.
    public var arms: [ArmDimension: [ArmLaw]]
    /// Envelope of each dimension's arms at `budgets` (descriptive: each pools the other
    /// dimensions).
    public var envelopes: [ArmDimension: [EnvelopePoint]]
    /// One ScaleRL law per configuration (N, n, Bp) of the group, sorted by configuration.
    public var configurations: [ConfigurationLaw] = []
    /// The joint optimum at each of `budgets`: the argmax of the configuration laws' envelope.
    public var optima: [JointOptimum] = []
    public var budgets: [Double]
    public var laws: [LawResult]
    public var allocation: [AllocationRow]
    /// The distinct seeds of the group's cells, ascending.
    public var seeds: [UInt64] = []
    /// Seed-to-seed standard deviation of the score at each frontier point's compute
    /// (`Replication.seedSD`; NaN everywhere when the group has fewer than 2 seeds).
    public var seedSD: [Double] = []

    /// "grpo [lag=4, lr=5e-05]": the method label and the group's varying settings.
    public var label: String { settings.isEmpty ? method : method + " [" + settingsLabel(settings) + "]" }

    /// The law for `quantity` in `form`, if fitted.
    public func law(_ quantity: String, _ form: LawForm) -> LawResult? {
        laws.first { $0.quantity == quantity && $0.estimate.fit.form == form }
    }
}

/// A whole grid's analysis: what `rlscale fit` writes.
public struct LawsReport: Sendable {
    /// Grid name (manifest or folder).
    public var grid: String
    /// The score used ("avg@4 of all").
    public var score: String
    public var groups: [GroupResult]
    /// Cells left out and why.
    public var skipped: [(id: String, reason: String)]
    /// The stratum the cells were restricted to (`rlscale fit --within`), if any.
    public var within: Stratum? = nil
    /// Settings that vary in the store and separate groups, and those pooled on request.
    public var grouping: LawGrouping? = nil
    /// Cells folded into a longer cell of the same run (`RunMerge`): their count.
    public var mergedCells: Int = 0
}

/// The grid analysis: frontiers, arm fits, envelopes, allocation laws, Chinchilla, all with
/// run-bootstrap intervals and leak-free top-decade holdout errors.
public enum GridAnalysis {
    /// Analyses every law group of `store`'s runs: cells that are prefixes of a longer cell of
    /// the same run are folded into it first (`RunMerge`), then runs are grouped by method
    /// label, task mixture and every setting that varies among them (`LawGrouping`), except
    /// those in `options.pool`.
    public static func run(_ store: CellStore, score: ScoreSelector, options: AnalysisOptions = AnalysisOptions()) -> LawsReport {
        let runs = RunMerge.merge(store.cells)
        let grouping = LawGrouping(runs, pool: options.pool)
        var groups: [String: [Cell]] = [:]
        for c in runs { groups[grouping.key(c), default: []].append(c) }
        let results = groups.keys.sorted().compactMap { key -> GroupResult? in
            guard let cells = groups[key], let first = cells.first else { return nil }
            var g = analyse(method: first.method, taskMix: first.taskMix, cells: cells.sorted { $0.id < $1.id }, options: options)
            g.settings = grouping.settings(of: first)
            return g
        }
        return LawsReport(grid: store.grid, score: score.description, groups: results, skipped: store.skipped, within: store.within,
                          grouping: grouping, mergedCells: store.cells.count - runs.count)
    }

    /// The largest budget the group's envelopes and allocations are read at: the largest
    /// compute a cell reached, each cell's reach capped at the budget it ran to when that is
    /// known. A cell stops at the first step past its budget, so cells of one budget overshoot
    /// it by different amounts (a larger n takes larger steps); read at the largest overshoot,
    /// the envelope would hold only the arm that overshot most.
    static func topBudget(_ cells: [Cell]) -> Double {
        cells.map { c in
            let reach = c.curve.map(\.compute).max() ?? 0
            return c.budget.isFinite && c.budget > 0 ? min(reach, c.budget) : reach
        }.max() ?? 0
    }

    /// Analyses one group.
    ///
    /// Prediction: every configuration (N, n, Bp) of the group gets its own ScaleRL law; their
    /// upper envelope at each budget (each law competing up to the largest compute its cells
    /// reached) is the predicted frontier. Its argmax configuration is the allocation (N*, n*,
    /// Bp*, hence M*) and the series of the allocation laws; `score_frontier`, one ScaleRL
    /// curve through the empirical frontier, stays as a description.
    ///
    /// Bootstrap: runs are resampled within each configuration (`Bootstrap.draws(strata:)`)
    /// and everything is rebuilt; each law's intervals (`Core.runIntervals`), the
    /// envelope's interval at each budget and the win frequency of each argmax coordinate
    /// come from the same resamples.
    ///
    /// Holdout: every law's `holdoutError` comes from one rerun of the whole analysis (arm and
    /// configuration fits, envelopes, argmax series, every law) on the group's cells truncated
    /// at a tenth of the group's largest compute (`TopDecadeHoldout`). Each truncated law's
    /// predictions in the top decade are compared with what the full data show there: for
    /// score laws the observed points (arms, configurations) or the empirical frontier
    /// (`score_frontier`, and the envelope of the truncated configuration laws), for the
    /// allocation laws (n*, N*, Bp*, steps*) the full-data argmax series at the top-decade
    /// budgets, for Chinchilla the observed errors. Nothing fitted for the holdout has seen the
    /// top decade.
    ///
    /// Replication: when the cells hold at least two distinct seeds (and `options.replicate`), the whole analysis is also
    /// run on each seed's cells alone (`Replication.seedOptions`: no bootstrap) and
    /// every pooled law that fitted records each seed's fit of the same quantity and form
    /// (`LawResult.seedFits`; for the envelope, the seed's own envelope at the pooled budgets);
    /// `seedSD` is the seed-to-seed spread of the frontier.
    public static func analyse(method: String, taskMix: String, cells: [Cell], options: AnalysisOptions) -> GroupResult {
        let positive = cells.flatMap { $0.curve.map(\.compute) }.filter { $0 > 0 }
        let budgets = Frontier.logGrid(from: positive.min() ?? 0, to: topBudget(cells), count: options.budgets)
        let full = Core(cells: cells, budgets: budgets, options: options, warm: nil)
        let holdout = TopDecadeHoldout(cells: cells, options: options)
        // Bootstrap: resample runs within configurations, rebuild everything, read each slot's vector, then the joint
        // envelope's value and argmax coordinates at each budget.
        let layout = full.slots.map { s in (key: s.key, width: s.vectorWidth(budgets: budgets.count)) }
        let strata = Dictionary(grouping: cells.indices, by: { Configuration(of: cells[$0]) }).sorted { $0.key < $1.key }.map(\.value)
        let draws = Bootstrap.draws(strata: strata, options: options.bootstrap) { draw in
            let core = Core(cells: draw.map { cells[$0] }, budgets: budgets, options: options, warm: full.fits)
            var v: [Double] = []
            for (key, width) in layout {
                if let s = core.slots.first(where: { $0.key == key }), let f = core.fits[key], f.isOK {
                    v += s.vector(f, budgets: budgets)
                } else {
                    v += [Double](repeating: .nan, count: width)
                }
            }
            return v + core.optima.flatMap(Core.envelopeVector)
        }
        let boot = full.runIntervals(draws, budgets: budgets, options: options)
        var laws: [LawResult] = []
        var offset = 0
        for s in full.slots {
            let fit = full.fits[s.key] ?? .failure(s.form, "not fitted", nPoints: s.data.count, options: s.options)
            let width = s.vectorWidth(budgets: budgets.count)
            let iv = boot.intervals.count >= offset + width ? Array(boot.intervals[offset..<offset + width])
                : [Interval](repeating: .unknown, count: width)
            let fin = boot.finite.count >= offset + width ? Array(boot.finite[offset..<offset + width]) : []
            offset += width
            let p = s.form.parameterNames.count
            var intervals = Array(iv.prefix(p))
            for name in fit.fixed {
                if let i = s.form.parameterNames.firstIndex(of: name) { intervals[i] = Interval(low: fit.values[i], high: fit.values[i]) }
            }
            var notes: [String] = []
            if fit.isOK, options.bootstrap.resamples > 0 {
                let fitted = fin.prefix(p).min() ?? 0
                if fitted < options.bootstrap.resamples { notes.append("bootstrap: \(fitted)/\(options.bootstrap.resamples) resamples fitted") }
            }
            var holdoutError = Double.nan
            if fit.isOK {
                switch holdout.error(s, fit: fit) {
                case .success(let e): holdoutError = e
                case .failure(let f): notes.append("holdout: " + f.reason)
                }
            }
            let est = LawEstimate(fit: fit, intervals: intervals, holdoutError: holdoutError, notes: notes + s.notes)
            let dv = fit.isOK ? s.derived(fit) : [Double](repeating: .nan, count: s.derivedNames.count)
            let derived = s.derivedNames.indices.map { i in (name: s.derivedNames[i], value: dv[i], interval: iv[p + i]) }
            var band: [(budget: Double, value: Double, interval: Interval)] = []
            if s.band {
                band = budgets.indices.map { i in
                    (budget: budgets[i], value: fit.isOK ? fit.predict(budgets[i]) : .nan, interval: iv[p + s.derivedNames.count + i])
                }
            }
            let nPoints = s.pointsAreArms ? Set(s.data.y).count : fit.nPoints
            var law = LawResult(quantity: s.quantity, estimate: est, nPoints: nPoints, derived: derived, data: s.data, band: band,
                                typicalSE: s.typicalSE, optimumStatuses: s.optimumStatuses)
            law.describeRuns(s.cells ?? cells, runs: s.runs ?? full.runs)
            if s.form == .scaleRL {
                law.topDecadeRise = TopDecadeRise.of(s.data)
                law.asymptoteMax = options.asymptoteMax
            }
            laws.append(law)
        }
        // The envelope of the configuration laws: a law of its own, right after the single
        // descriptive frontier curve; then the allocation table.
        let envelopeDraws = EnvelopeDraws(draws: draws, intervals: boot.intervals, finite: boot.finite, offset: offset,
                                          options: options.bootstrap)
        let typicalSE = laws.first { $0.quantity == "score_frontier" }?.typicalSE ?? .nan
        laws.insert(envelopeLaw(full, cells: cells, budgets: budgets, holdout: holdout, draws: envelopeDraws, typicalSE: typicalSE),
                    at: (laws.firstIndex { $0.quantity == "score_frontier" } ?? -1) + 1)
        let allocation = full.optima.indices.map { i in allocationRow(full.optima[i], at: i, cells: cells, draws: envelopeDraws) }
        // Replication by seed.
        let seeds = Array(Set(cells.map(\.seed))).sorted()
        if seeds.count >= 2, options.replicate {
            let seedOptions = Replication.seedOptions(options)
            for seed in seeds {
                let own = analyse(method: method, taskMix: taskMix, cells: cells.filter { $0.seed == seed }, options: seedOptions)
                let ownEnvelope = Frontier.upperEnvelope(own.configurations, at: budgets).map { $0?.score ?? .nan }
                for i in laws.indices where laws[i].estimate.fit.isOK {
                    let form = laws[i].estimate.fit.form
                    guard let l = own.law(laws[i].quantity, form), l.estimate.fit.isOK else { continue }
                    var fit = SeedFit(seed: seed, values: l.estimate.fit.values, intervals: l.estimate.intervals,
                                      band: form == .envelope ? ownEnvelope : [])
                    fit.share = Double(own.cells.count) / Double(cells.count)
                    laws[i].seedFits.append(fit)
                }
            }
        }
        return GroupResult(
            method: method, taskMix: taskMix, cells: cells, frontier: full.frontier, initialScore: full.r0, arms: full.arms,
            envelopes: full.envelopes, configurations: full.configurations, optima: full.optima, budgets: budgets, laws: laws,
            allocation: allocation, seeds: seeds, seedSD: Replication.seedSD(cells: cells, at: full.frontier.map(\.compute)))
    }

    /// The `score_envelope` law: the configuration envelope's fit (`Core.envelopeFit`), its
    /// value at each budget with the bootstrap interval, and its top-decade holdout error.
    static func envelopeLaw(_ full: Core, cells: [Cell], budgets: [Double], holdout: TopDecadeHoldout, draws: EnvelopeDraws,
                            typicalSE: Double) -> LawResult {
        let fit = full.envelopeFit
        var notes: [String] = []
        if fit.isOK, draws.options.resamples > 0, let top = full.optima.lastIndex(where: { $0.configuration != nil }) {
            let reached = draws.finite(at: top)
            if reached < draws.options.resamples {
                notes.append("bootstrap: envelope at the largest budget in \(reached)/\(draws.options.resamples) resamples")
            }
        }
        var holdoutError = Double.nan
        if fit.isOK {
            switch holdout.envelopeError(full) {
            case .success(let e): holdoutError = e
            case .failure(let f): notes.append("holdout: " + f.reason)
            }
        }
        let band = full.optima.indices.map { i in (budget: budgets[i], value: full.optima[i].score, interval: draws.interval(at: i)) }
        var law = LawResult(
            quantity: Core.envelopeQuantity,
            estimate: LawEstimate(fit: fit, intervals: fit.values.map { Interval(low: $0, high: $0) }, holdoutError: holdoutError,
                                  notes: notes),
            nPoints: fit.nPoints, derived: [], data: full.frontierSamples, band: band, typicalSE: typicalSE)
        law.describeRuns(cells, runs: full.runs)
        law.topDecadeRise = TopDecadeRise.of(full.frontierSamples)
        return law
    }

    /// The allocation row of budget `i`: the joint argmax, the envelope with its interval, and
    /// how often the resamples agree on each coordinate.
    static func allocationRow(_ o: JointOptimum, at i: Int, cells: [Cell], draws: EnvelopeDraws) -> AllocationRow {
        var frequency: [ArmDimension: Double] = [:]
        for d in ArmDimension.allCases { frequency[d] = draws.frequency(at: i, d, equalTo: o.configuration?[d] ?? .nan) }
        let g = o.configuration
        return AllocationRow(
            budget: o.budget, rollouts: g.map { o.budget / Core.flopsPerRollout(cells, parameters: $0.parameters) } ?? .nan,
            parameters: g?.parameters ?? .nan, rolloutsPerProblem: g?.rolloutsPerProblem ?? .nan,
            problemsPerBatch: g?.problemsPerBatch ?? .nan, steps: g.map { Core.steps(o.budget, at: $0, cells: cells) } ?? .nan,
            score: o.score, interval: draws.interval(at: i), frequency: frequency, optimum: o.dimensions)
    }
}

/// The joint envelope's part of the bootstrap draws: from component `offset` on, each draw
/// holds `Core.envelopeVector` of every budget in turn.
struct EnvelopeDraws {
    var draws: [[Double]]
    /// Intervals (`Core.runIntervals`) and finite counts of every component (all slots' included).
    var intervals: [Interval]
    var finite: [Int]
    var offset: Int
    var options: BootstrapOptions

    /// The component of budget `i`'s envelope value (`dim` nil) or argmax coordinate.
    func column(_ i: Int, _ dim: ArmDimension? = nil) -> Int {
        offset + Core.envelopeWidth * i + (dim.flatMap { ArmDimension.allCases.firstIndex(of: $0) }.map { $0 + 1 } ?? 0)
    }
    /// The envelope's 95% interval at budget `i`.
    func interval(at i: Int) -> Interval { column(i) < intervals.count ? intervals[column(i)] : .unknown }
    /// Resamples whose envelope exists at budget `i`.
    func finite(at i: Int) -> Int { column(i) < finite.count ? finite[column(i)] : 0 }
    /// The win frequency of `value` along `dim` at budget `i` (`Bootstrap.frequency`).
    func frequency(at i: Int, _ dim: ArmDimension, equalTo value: Double) -> Double {
        Bootstrap.frequency(draws, column: column(i, dim), equalTo: value, options: options)
    }
}

/// A law to fit within a group: its quantity, form, data and options.
struct Slot {
    var quantity: String
    var form: LawForm
    var data: LawData
    var options: FitOptions
    /// Compute of each data point, which the holdout cut applies to (Chinchilla); nil when x
    /// is itself compute or a budget.
    var compute: [Double]?
    /// Whether y is an argmax arm value repeated over budgets (n_points counts distinct arms).
    var pointsAreArms = false
    /// A reason not to fit at all (e.g. too few model sizes for Chinchilla).
    var preset: String?
    var derivedNames: [String] = []
    var derived: (LawFit) -> [Double] = { _ in [] }
    /// Whether to record predictions at the budgets (laws of compute).
    var band: Bool
    /// Score standard error of each data point (score laws; nil otherwise).
    var se: [Double]? = nil
    /// Remarks on the data, appended to the law's status (e.g. unbalanced pooling).
    var notes: [String] = []
    /// Allocation laws: the optimum's status at each point of the series.
    var optimumStatuses: [OptimumStatus] = []
    /// The cells the law is fitted to (arm and configuration laws); nil: every cell of the group.
    var cells: [Cell]? = nil
    /// The runs behind the law: its own cells', or nil for every run of the group.
    var runs: RunCount? { cells.map(RunCount.init) }

    /// The ScaleRL law of a set of cells (an arm or a configuration): their curve points with
    /// C > 0 pooled, R0 = the mean step-0 score of these cells (else `fallbackR0`), the fit
    /// window applied to their own largest compute, weighted by 1/SE² when every point the fit
    /// uses has a known SE.
    static func score(_ quantity: String, cells: [Cell], fallbackR0: Double?, options: AnalysisOptions) -> Slot {
        let pts = cells.flatMap(\.curve).filter { $0.compute > 0 }
        let x = pts.map(\.compute), y = pts.map(\.score), se = pts.map(\.se)
        let initial = cells.compactMap(\.initialScore)
        let r0 = initial.isEmpty ? fallbackR0 : initial.reduce(0, +) / Double(initial.count)
        let minX = options.fitWindowFraction * (x.max() ?? 0)
        return Slot(quantity: quantity, form: .scaleRL, data: LawData(x: x, y: y, weights: Slot.weights(se, used: x.map { $0 >= minX })),
                    options: FitOptions(r0: r0, asymptoteMax: options.asymptoteMax, minX: minX), band: true, se: se,
                    cells: cells)
    }

    /// Median of the finite positive entries of `se` (NaN when none).
    var typicalSE: Double {
        let v = (se ?? []).filter { $0.isFinite && $0 > 0 }.sorted()
        return v.isEmpty ? .nan : quantile(sorted: v, 0.5)
    }

    /// Least-squares weights 1/SE² when every point the fit uses (`used[i]`) has a finite
    /// positive SE, else nil (an unweighted fit). Unused points get weight 1 (the fit drops them).
    static func weights(_ se: [Double], used: [Bool]) -> [Double]? {
        let known = se.map { $0.isFinite && $0 > 0 }
        guard se.count == used.count, used.contains(true), zip(known, used).allSatisfy({ $0 || !$1 }) else { return nil }
        return se.indices.map { known[$0] ? 1 / (se[$0] * se[$0]) : 1 }
    }

    var key: String { quantity + "|" + form.rawValue }
    func vectorWidth(budgets: Int) -> Int { form.parameterNames.count + derivedNames.count + (band ? budgets : 0) }
    func vector(_ f: LawFit, budgets: [Double]) -> [Double] {
        f.values + derived(f) + (band ? budgets.map { f.predict($0) } : [])
    }
}

/// Everything computed from one set of cells (the data, or one bootstrap resample).
struct Core {
    var frontier: [FrontierPoint] = []
    var r0: Double = .nan
    /// The empirical frontier sampled at every distinct positive compute of the cells (the
    /// data of `score_frontier`, and what the envelope is compared with).
    var frontierSamples = LawData(x: [], y: [])
    var arms: [ArmDimension: [ArmLaw]] = [:]
    var envelopes: [ArmDimension: [EnvelopePoint]] = [:]
    /// One law per configuration, sorted by configuration.
    var configurations: [ConfigurationLaw] = []
    /// The joint optimum at each budget.
    var optima: [JointOptimum] = []
    var slots: [Slot] = []
    var fits: [String: LawFit] = [:]
    /// The group's independent runs, by configuration.
    var runs = RunCount(runs: 0, strata: 0, fewestPerConfiguration: 0)

    /// The quantity of the configuration envelope's law.
    static let envelopeQuantity = "score_envelope"
    /// Components per budget of the envelope's bootstrap vector (`envelopeVector`).
    static let envelopeWidth = 1 + ArmDimension.allCases.count

    /// The envelope's value and the argmax configuration's coordinates (in `ArmDimension`
    /// order) at one budget, NaN where no configuration competes: the bootstrap reads the
    /// envelope's interval and each coordinate's win frequency from these.
    static func envelopeVector(_ o: JointOptimum) -> [Double] {
        [o.score] + ArmDimension.allCases.map { d in o.configuration?[d] ?? .nan }
    }

    /// The intervals of every component of the run-bootstrap `draws` (the slots' vectors in
    /// order, then the envelope's vector at each budget), each centred on this full-data
    /// analysis's own value (`Bootstrap.runInterval`: t·SE from the run-to-run spread, C_mid
    /// on a log scale); the runs are the slot's own (arm and configuration laws) or the
    /// group's. Score laws' A and predictions, and the envelope, are capped at
    /// `options.asymptoteMax`. Returns the intervals and each component's finite draws.
    func runIntervals(_ draws: [[Double]], budgets: [Double], options: AnalysisOptions) -> (intervals: [Interval], finite: [Int]) {
        let level = options.bootstrap.level
        var intervals: [Interval] = [], finite: [Int] = []
        func cap(_ i: Interval) -> Interval {
            guard let top = options.asymptoteMax, i.low.isFinite else { return i }
            return Interval(low: min(i.low, top), high: min(i.high, top))
        }
        for s in slots {
            let width = s.vectorWidth(budgets: budgets.count)
            let centers = fits[s.key].flatMap { $0.isOK ? s.vector($0, budgets: budgets) : nil }
                ?? [Double](repeating: .nan, count: width)
            let names = s.form.parameterNames
            let capped = s.form == .scaleRL
            for k in 0..<width {
                let j = intervals.count
                var iv = Bootstrap.runInterval(draws, column: j, center: centers[k], runs: s.runs ?? runs, level: level,
                                               logScale: k < names.count && names[k] == "C_mid")
                if capped, k == names.firstIndex(of: "A") || k >= names.count + s.derivedNames.count { iv = cap(iv) }
                intervals.append(iv)
                finite.append(Bootstrap.finiteCount(draws, column: j))
            }
        }
        for o in optima {
            for (k, center) in Core.envelopeVector(o).enumerated() {
                let j = intervals.count
                let iv = k == 0 ? cap(Bootstrap.runInterval(draws, column: j, center: center, runs: runs, level: level)) : .unknown
                intervals.append(iv)
                finite.append(Bootstrap.finiteCount(draws, column: j))
            }
        }
        return (intervals, finite)
    }

    /// Median charged FLOPs per rollout of the cells at N (all cells when none is at N).
    static func flopsPerRollout(_ cells: [Cell], parameters: Double) -> Double {
        var v = cells.filter { $0.parameters == parameters }.map(\.flopsPerRollout).filter { $0.isFinite && $0 > 0 }
        if v.isEmpty { v = cells.map(\.flopsPerRollout).filter { $0.isFinite && $0 > 0 } }
        return v.isEmpty ? .nan : quantile(sorted: v.sorted(), 0.5)
    }

    /// RL steps M = C / (Bp·n·F_roll(N)) that budget `c` buys in configuration `g`.
    static func steps(_ c: Double, at g: Configuration, cells: [Cell]) -> Double {
        c / (g.rolloutsPerProblem * g.problemsPerBatch * flopsPerRollout(cells, parameters: g.parameters))
    }

    /// The configuration envelope as a law: `configurations` = the number of configuration
    /// laws that fitted (they compete in it; held fixed), n_points = the curve points they
    /// were fitted to, r2 and rmse = the envelope against the empirical frontier at the
    /// group's distinct positive computes where both are defined.
    var envelopeFit: LawFit {
        let competing = configurations.filter(\.fit.isOK)
        guard !competing.isEmpty else { return .failure(.envelope, "no configuration law fitted", nPoints: 0, options: FitOptions()) }
        var observed: [Double] = [], predicted: [Double] = []
        for (i, e) in Frontier.upperEnvelope(competing, at: frontierSamples.x).enumerated() {
            if let e, frontierSamples.y[i].isFinite { observed.append(frontierSamples.y[i]); predicted.append(e.score) }
        }
        let st = Laws.stats(observed: observed, predicted: predicted)
        return LawFit(form: .envelope, values: [Double(competing.count)], status: "ok",
                      nPoints: competing.reduce(0) { $0 + $1.fit.nPoints }, r2: st.r2, rmse: st.rmse, objective: .nan,
                      fixed: ["configurations"], options: FitOptions())
    }

    init(cells: [Cell], budgets: [Double], options: AnalysisOptions, warm: [String: LawFit]?) {
        let quick = warm != nil
        func opts(_ key: String, _ base: FitOptions) -> FitOptions {
            var o = base
            o.quick = quick
            o.warmStart = warm?[key].flatMap { $0.isOK ? $0.values : nil }
            return o
        }
        /// Registers and fits a slot; returns its fit.
        @discardableResult func fitSlot(_ s: Slot) -> LawFit {
            slots.append(s)
            let fit: LawFit
            if let p = s.preset {
                fit = .failure(s.form, p, nPoints: s.data.count, options: s.options)
            } else {
                var o = opts(s.key, s.options)
                if !quick { o.warmStart = nil }
                fit = Laws.fit(s.form, s.data, options: o)
            }
            fits[s.key] = fit
            return fit
        }
        runs = RunCount(cells)
        let initial = cells.compactMap(\.initialScore)
        let meanInitial: Double? = initial.isEmpty ? nil : initial.reduce(0, +) / Double(initial.count)
        frontier = Frontier.empirical(cells.flatMap { c in
            c.curve.map { (compute: $0.compute, score: $0.score, se: $0.se, cellID: c.id) }
        })
        // R0 of the frontier law is the empirical frontier's own value at compute 0 (the best
        // step-0 score), so that the law starts where the frontier it describes starts. Arms
        // and configurations keep the mean step-0 score of their own cells.
        r0 = Frontier.value(frontier, at: 0)

        // Frontier laws.
        // The frontier law is fitted to f(C) sampled at every distinct positive compute of the
        // group's curve points (a flat frontier then reads as flat data).
        let fx = Array(Set(cells.flatMap { $0.curve.map(\.compute) }.filter { $0 > 0 })).sorted()
        let fy = fx.map { Frontier.value(frontier, at: $0) }
        let fse = fx.map { Frontier.se(frontier, at: $0) }
        frontierSamples = LawData(x: fx, y: fy)
        let window = options.fitWindowFraction * (fx.max() ?? 0)
        let r0Known = r0.isFinite ? r0 : nil
        // Weighted by 1/SE² of the frontier point that sets each value when every SE is known.
        fitSlot(Slot(quantity: "score_frontier", form: .scaleRL,
                     data: LawData(x: fx, y: fy, weights: Slot.weights(fse, used: fx.map { $0 >= window })),
                     options: FitOptions(r0: r0Known, asymptoteMax: options.asymptoteMax, minX: window), band: true, se: fse))
        fitSlot(Slot(quantity: "error_frontier", form: .powerOffset, data: LawData(x: fx, y: fy.map { 1 - $0 }),
                     options: FitOptions(), band: true))

        // Arms per dimension: one value of one knob, pooled over the others (descriptive). Only
        // the dimensions that vary get arms (n alone when none does): a dimension with one
        // value would repeat the pooled law under another name.
        let varying = ArmDimension.allCases.filter { d in Set(cells.map(d.value(of:))).count > 1 }
        for dim in varying.isEmpty ? [.rollouts] : varying {
            let byValue = Dictionary(grouping: cells, by: dim.value(of:))
            let values = byValue.keys.sorted()
            let note = dim.unbalancedNote(arms: values.map { byValue[$0] ?? [] })
            arms[dim] = values.map { v in
                var slot = Slot.score("score[\(dim.rawValue)=\(fmt(v))]", cells: byValue[v] ?? [], fallbackR0: meanInitial, options: options)
                if let note { slot.notes.append(note) }
                return ArmLaw(value: v, fit: fitSlot(slot), maxCompute: slot.data.x.max() ?? 0)
            }
            envelopes[dim] = Frontier.envelope(arms[dim] ?? [], budgets: budgets)
        }

        // Configurations (N, n, Bp). With at most one varying dimension they are that
        // dimension's arms (with none, the single n arm): those fits are reused.
        if varying.count >= 2 {
            let byConfiguration = Dictionary(grouping: cells, by: Configuration.init(of:))
            configurations = byConfiguration.keys.sorted().map { g in
                let slot = Slot.score("score[\(g)]", cells: byConfiguration[g] ?? [], fallbackR0: meanInitial, options: options)
                return ConfigurationLaw(configuration: g, fit: fitSlot(slot), maxCompute: slot.data.x.max() ?? 0)
            }
        } else {
            let dim = varying.first ?? .rollouts
            configurations = (arms[dim] ?? []).compactMap { arm in
                cells.first { dim.value(of: $0) == arm.value }
                    .map { ConfigurationLaw(configuration: Configuration(of: $0), fit: arm.fit, maxCompute: arm.maxCompute) }
            }
        }
        optima = Frontier.jointEnvelope(configurations, budgets: budgets)

        // Allocation laws from the joint argmax series.
        let argmax = optima.compactMap { o in o.configuration.map { (o, $0) } }
        for dim in varying {
            let data = LawData(x: argmax.map(\.0.budget), y: argmax.map { $0.1[dim] })
            let statuses = argmax.map { $0.0.dimensions[dim]?.status ?? .singleValue }
            let forms: [LawForm] = dim == .rollouts ? [.log2Sigmoid, .powerLaw] : [.powerLaw]
            for form in forms {
                fitSlot(Slot(quantity: dim.starQuantity, form: form, data: data, options: FitOptions(), pointsAreArms: true, band: true,
                             optimumStatuses: statuses))
            }
        }
        var sx: [Double] = [], sy: [Double] = []
        for (o, g) in argmax {
            let steps = Core.steps(o.budget, at: g, cells: cells)
            if steps.isFinite, steps > 0 { sx.append(o.budget); sy.append(steps) }
        }
        fitSlot(Slot(quantity: "steps_star", form: .powerLaw, data: LawData(x: sx, y: sy), options: FitOptions(), band: true))

        // Chinchilla on the error 1 − score over (N, rollouts): only when N varies.
        guard varying.contains(.parameters) else { return }
        var cn: [Double] = [], cd: [Double] = [], cl: [Double] = [], cc: [Double] = [], kk: [Double] = []
        for c in cells {
            for p in c.curve where p.compute > 0 && p.rollouts > 0 && p.score < 1 {
                cn.append(c.parameters); cd.append(p.rollouts); cl.append(1 - p.score); cc.append(p.compute)
                kk.append(p.compute / (c.parameters * p.rollouts))
            }
        }
        let k = kk.isEmpty ? Double.nan : quantile(sorted: kk.sorted(), 0.5)
        // (A, α) are identified only with at least three model sizes (ChinchillaFit).
        fitSlot(Slot(
            quantity: "error", form: .chinchilla, data: LawData(x: cn, x2: cd, y: cl),
            options: FitOptions(huberDelta: options.huberDelta), compute: cc,
            preset: ChinchillaFit.unidentified(parameters: cn),
            derivedNames: ["G", "N_opt_exponent", "D_opt_exponent", "k"],
            derived: { f in
                let (a, al, b, be) = (f.value("A"), f.value("alpha"), f.value("B"), f.value("beta"))
                return [pow(al * a / (be * b), 1 / (al + be)), be / (al + be), al / (al + be), k]
            },
            band: false))
    }
}

/// The leak-free top-decade holdout of one group (see `GridAnalysis.analyse`).
///
/// Every curve point with compute above a tenth of the group's largest compute is removed
/// from every cell (the same cut for every law of the group), and the whole analysis is rerun
/// on what is left. A law's holdout error compares that rerun's law, extrapolated, with the
/// full-data law's own data in the top decade: its points whose compute (for allocation laws,
/// budget) exceeds the cut. The full-data points there are what the data show (observed
/// scores, the empirical frontier, the full argmax series, observed errors); the predictions
/// come only from fits below the cut.
struct TopDecadeHoldout {
    /// Points with compute above `cut` are held out.
    var cut: Double
    /// The analysis of the truncated cells, or why there is none.
    var truncated: Result<Core, HoldoutUnavailable>

    init(cells: [Cell], options: AnalysisOptions) {
        let top = cells.flatMap { $0.curve.map(\.compute) }.filter { $0.isFinite && $0 > 0 }.max() ?? 0
        let cut = top * Holdout.cutFraction
        self.cut = cut
        guard top > 0 else {
            truncated = .failure(HoldoutUnavailable(reason: "no positive compute"))
            return
        }
        let kept = cells.map { TopDecadeHoldout.truncate($0, at: cut) }
        let positive = kept.flatMap { $0.curve.map(\.compute) }.filter { $0 > 0 }
        guard let lo = positive.min(), let hi = positive.max() else {
            truncated = .failure(HoldoutUnavailable(reason: "data span less than a decade"))
            return
        }
        // The truncated run picks its budgets as the full run does, from its own data.
        truncated = .success(Core(cells: kept, budgets: Frontier.logGrid(from: lo, to: hi, count: options.budgets),
                                  options: options, warm: nil))
    }

    /// The cell with only its curve points at compute ≤ `cut`. Its F_roll is re-read from its
    /// last kept point (charged compute / rollouts so far), not from the whole run's ledger.
    static func truncate(_ cell: Cell, at cut: Double) -> Cell {
        var c = cell
        c.curve = cell.curve.filter { $0.compute <= cut }
        let last = c.curve.last { $0.compute > 0 && $0.rollouts > 0 }
        c.flopsPerRollout = last.map { $0.compute / $0.rollouts } ?? .nan
        return c
    }

    /// The holdout error of the full-data law `fit` of slot `s` (in the form's metric; the
    /// gain metric divides by `fit`'s A − R0), or why there is none.
    func error(_ s: Slot, fit: LawFit) -> Result<Double, HoldoutUnavailable> {
        let core: Core
        switch truncated {
        case .failure(let f): return .failure(f)
        case .success(let c): core = c
        }
        guard let refit = core.fits[s.key] else {
            return .failure(HoldoutUnavailable(reason: "no \(s.quantity) law below the top decade"))
        }
        guard refit.isOK else { return .failure(HoldoutUnavailable(reason: "refit below the top decade: \(refit.status)")) }
        let key = s.compute ?? s.data.x
        let test = s.data.x.indices.filter { $0 < key.count && key[$0] > cut }
        guard !test.isEmpty else { return .failure(HoldoutUnavailable(reason: "no data in the top decade")) }
        return Holdout.meanError(
            predicted: test.map { refit.predict(s.data.x[$0], s.data.x2?[$0] ?? .nan) },
            observed: test.map { s.data.y[$0] }, metric: HoldoutMetric(s.form), gain: Holdout.gain(of: fit))
    }

    /// The holdout error of the configuration envelope: the envelope of the truncated
    /// analysis's configuration laws, each competing up to the compute its cells reach in the
    /// full data (which configurations were run how far is the grid's design, not an outcome),
    /// against the full data's empirical frontier at its distinct computes above the cut; in
    /// units of the gain = the full envelope at the largest budget where it exists − the
    /// frontier's R0.
    func envelopeError(_ full: Core) -> Result<Double, HoldoutUnavailable> {
        let core: Core
        switch truncated {
        case .failure(let f): return .failure(f)
        case .success(let c): core = c
        }
        let reach = Dictionary(full.configurations.map { ($0.configuration, $0.maxCompute) }, uniquingKeysWith: max)
        let laws = core.configurations.map { l in
            ConfigurationLaw(configuration: l.configuration, fit: l.fit, maxCompute: reach[l.configuration] ?? l.maxCompute)
        }
        guard laws.contains(where: \.fit.isOK) else {
            return .failure(HoldoutUnavailable(reason: "no configuration law fitted below the top decade"))
        }
        let s = full.frontierSamples
        let test = s.x.indices.filter { s.x[$0] > cut }
        guard !test.isEmpty else { return .failure(HoldoutUnavailable(reason: "no data in the top decade")) }
        let gain = (full.optima.last { $0.configuration != nil }?.score ?? .nan) - full.r0
        return Holdout.meanError(
            predicted: Frontier.upperEnvelope(laws, at: test.map { s.x[$0] }).map { $0?.score ?? .nan },
            observed: test.map { s.y[$0] }, metric: .gain, gain: gain)
    }
}
