import Foundation
import RLCommon

extension LawsReport {
    /// `laws.csv`, long format, one row per (group, law, parameter):
    ///
    /// - `grid`, `method`, `task_mix`, `settings`: the grid and the group (task_mix is the
    ///   canonical mixture, e.g. "mul:1,sort:1", quoted in the file because it holds commas;
    ///   settings are the group's values of the settings that vary in the store, e.g.
    ///   "lag=4, lr=5e-05", empty when none varies: `LawGrouping`).
    /// - `quantity`: what is modelled (`score_frontier`, `score_envelope`, `error_frontier`,
    ///   `score[n=8]`, `score[N=25472]`, `score[Bp=8]`, `score[N=25472,n=8,Bp=8]` (only when at
    ///   least two dimensions vary), `n_star`, `N_star`, `Bp_star`, `steps_star`, `error`).
    /// - `form`: `scalerl`, `power_offset`, `chinchilla`, `log2_sigmoid`, `power_law` or
    ///   `envelope` (`score_envelope`, one row: `configurations`).
    /// - `parameter`, `value`: a parameter of the form (or a derived one: Chinchilla's `G`,
    ///   `N_opt_exponent`, `D_opt_exponent`, `k`); empty value when there is no fit.
    /// - `ci_low`, `ci_high`: 95% interval from the run bootstrap (`Bootstrap.runInterval`:
    ///   runs resampled within each configuration, the estimate ± t·SE with the run-to-run
    ///   degrees of freedom; C_mid on a log scale; A and score predictions capped at 1), equal
    ///   to the value for fixed parameters such as R0; empty when not estimable (fewer than
    ///   two runs in every configuration).
    /// - `n_points`: points fitted (for `n_star`, `N_star`, `Bp_star`: distinct argmax arm
    ///   values in the series); `n_runs`: the independent runs behind the law (cells whose
    ///   prefixes were folded in, `RunMerge`); `r2`, `rmse`: goodness of fit in the form's fit space
    ///   (y, ln L, log2 y or ln y; the envelope: against the empirical frontier). For the
    ///   envelope, `n_points` is the curve points its configuration laws were fitted to.
    /// - `holdout_error`: top-decade extrapolation error of the law when the whole analysis is
    ///   rerun on the cells truncated at a tenth of the group's largest compute (empty when not
    ///   computable; the reason is in `status`), in the unit named by `holdout_metric`:
    ///   `gain` (mean |prediction − observation| / (A − R0), ScaleRL score laws; the envelope's
    ///   gain is its value at the largest budget − the frontier's R0) or
    ///   `relative` (mean |prediction − observation| / |observation|, every other law).
    /// - `status`: "ok", "ok (notes)" or why there is no fit (too few points, flat, non-finite
    ///   input, did not converge, …).
    /// - `quality`: the law's grade, the same on each of its rows: `pass` or the first gate it
    ///   fails (`no_fit`, `too_few_arms`, `edge`, `gain<10SE`, `saturated`, `too_few_runs`,
    ///   `ci_wide`, `holdout>10%`, `seeds_disagree`; `LawQuality`).
    /// - `runs_needed`, `eval_problems_needed`, `core_hours_needed`: what a score law that fails
    ///   on noise would take to pass (`PassingPrice`): independent runs per configuration
    ///   (`too_few_runs`, `ci_wide`), evaluation problems per point (`gain<10SE`), and the
    ///   extra core-hours of the missing runs at the measured wall time per run; empty otherwise.
    public func lawsTable() -> CSVTable {
        var t = CSVTable(header: ["grid", "method", "task_mix", "settings", "quantity", "form", "parameter", "value", "ci_low",
                                  "ci_high", "n_points", "n_runs", "r2", "rmse", "holdout_error", "holdout_metric", "status", "quality",
                                  "runs_needed", "eval_problems_needed", "core_hours_needed"])
        for g in groups {
            let head = [grid, g.method, g.taskMix, settingsLabel(g.settings)]
            for law in g.laws {
                let e = law.estimate, f = e.fit, price = law.price
                let runsNeeded: String = price.runs.map { $0 > PassingPrice.maxRuns ? ">\(PassingPrice.maxRuns)" : String($0) } ?? ""
                let fitColumns: [String] = [String(law.nPoints), law.runs.map { String($0.runs) } ?? "", csvNumber(f.r2), csvNumber(f.rmse),
                                            csvNumber(e.holdoutError), e.holdoutMetric.rawValue, e.status, law.quality.rawValue]
                let common = fitColumns + [runsNeeded, price.evalProblems.map(String.init) ?? "", price.coreHours.map(csvNumber) ?? ""]
                let rows = f.form.parameterNames.enumerated().map { i, name in
                    (name, f.values[i], i < e.intervals.count ? e.intervals[i] : Interval.unknown)
                } + law.derived.map { ($0.name, $0.value, $0.interval) }
                for (name, value, iv) in rows {
                    t.rows.append(head + [law.quantity, f.form.rawValue, name, csvNumber(value), csvNumber(iv.low), csvNumber(iv.high)]
                                  + common)
                }
            }
        }
        return t
    }

    /// `allocation.csv`, one row per group (`method`, `task_mix`, `settings` as in laws.csv)
    /// and budget: `budget_flops`, `budget_rollouts`
    /// (C / F_roll(N*)), `N_opt`, `n_opt`, `Bp_opt` (the argmax configuration of the
    /// configuration laws' envelope at C), `steps_opt` (M* = C / (Bp*·n*·F_roll(N*))),
    /// `predicted_score` (the envelope at C) and its bootstrap interval; then per dimension
    /// (n, N, Bp) the win frequency `…_opt_freq` (share of resamples with an envelope at C whose
    /// argmax has the same coordinate), the continuous optimum `…_opt_cont` and its status
    /// `…_opt_status` (`ok`, `at edge of grid`, `single value`; `DimensionOptimum`). Empty
    /// fields where no configuration competes or a number is not estimable.
    public func allocationTable() -> CSVTable {
        let dims: [ArmDimension] = [.rollouts, .parameters, .batch]
        var t = CSVTable(header: ["method", "task_mix", "settings", "budget_flops", "budget_rollouts", "N_opt", "n_opt", "Bp_opt", "steps_opt",
                                  "predicted_score", "predicted_score_ci_low", "predicted_score_ci_high"]
                         + dims.map { "\($0.rawValue)_opt_freq" } + dims.map { "\($0.rawValue)_opt_cont" }
                         + dims.map { "\($0.rawValue)_opt_status" })
        for g in groups {
            for a in g.allocation {
                t.rows.append([g.method, g.taskMix, settingsLabel(g.settings), csvNumber(a.budget), csvNumber(a.rollouts), csvNumber(a.parameters),
                               csvNumber(a.rolloutsPerProblem), csvNumber(a.problemsPerBatch), csvNumber(a.steps),
                               csvNumber(a.score), csvNumber(a.interval.low), csvNumber(a.interval.high)]
                              + dims.map { csvNumber(a.frequency[$0] ?? .nan) }
                              + dims.map { csvNumber(a.optimum[$0]?.continuous ?? .nan) }
                              + dims.map { a.optimum[$0]?.status.rawValue ?? "" })
            }
        }
        return t
    }

    /// `frontier.csv`: the empirical frontier points (method, task_mix, settings, compute_flops, score,
    /// cell_id, score_se: the SE of the evaluation that set the point, empty when unknown;
    /// seed_sd: the seed-to-seed standard deviation of the score at that compute, i.e. the
    /// sample SD over seeds of each seed's own empirical frontier there, empty when the group
    /// has fewer than two seeds or fewer than two seeds have a value there).
    public func frontierTable() -> CSVTable {
        var t = CSVTable(header: ["method", "task_mix", "settings", "compute_flops", "score", "cell_id", "score_se", "seed_sd"])
        for g in groups {
            for (i, p) in g.frontier.enumerated() {
                let sd = i < g.seedSD.count ? g.seedSD[i] : .nan
                t.rows.append([g.method, g.taskMix, settingsLabel(g.settings), csvNumber(p.compute), csvNumber(p.score), p.cellID,
                               csvNumber(p.se), csvNumber(sd)])
            }
        }
        return t
    }

    /// `replication.csv`, one row per (group with ≥ 2 seeds, pooled law that fitted, parameter,
    /// seed whose own analysis fitted that law): `method`, `task_mix`, `settings`, `quantity`,
    /// `form` (as in laws.csv), `parameter`, `seed`, `value` (the seed's fit), `ci_low`,
    /// `ci_high` (the seed's own interval: empty, since a seed holds one run per
    /// configuration and the run bootstrap needs two; `Replication.seedOptions`), `agrees`
    /// (`true` when `value` lies inside the seed's agreement interval: the pooled law's 95%
    /// interval in laws.csv widened for one seed's share of the runs,
    /// `Replication.agreementInterval`; `false` when outside, empty when either is unknown or
    /// the pooled fit held the parameter fixed,
    /// e.g. a score law's R0). Header only when no group has two seeds.
    public func replicationTable() -> CSVTable {
        var t = CSVTable(header: ["method", "task_mix", "settings", "quantity", "form", "parameter", "seed", "value", "ci_low", "ci_high",
                                  "agrees"])
        for g in groups {
            for law in g.laws {
                let e = law.estimate, f = e.fit
                for (i, name) in f.form.parameterNames.enumerated() {
                    for s in law.seedFits {
                        let v = i < s.values.count ? s.values[i] : .nan
                        let iv = i < s.intervals.count ? s.intervals[i] : .unknown
                        // A fixed parameter's pooled "interval" is its value, not an estimate.
                        let agrees = f.fixed.contains(name) ? "" : law.seedAgrees(s, parameter: i).map { $0 ? "true" : "false" } ?? ""
                        t.rows.append([g.method, g.taskMix, settingsLabel(g.settings), law.quantity, f.form.rawValue, name, String(s.seed), csvNumber(v),
                                       csvNumber(iv.low), csvNumber(iv.high), agrees])
                    }
                }
            }
        }
        return t
    }

    /// Writes laws.csv, allocation.csv, frontier.csv, replication.csv, the SVG plots (and PNG copies when
    /// `rsvg-convert` or `convert` is on PATH) and report.md into `dir` (created if needed).
    /// Returns the paths written. `appendix` (markdown: the support-expansion section) ends
    /// report.md.
    @discardableResult
    public func write(to dir: String, appendix: String = "") throws(LawError) -> [String] {
        var out = try OutputFolder(dir)
        try out.put("laws.csv", lawsTable().render())
        try out.put("allocation.csv", allocationTable().render())
        try out.put("frontier.csv", frontierTable().render())
        try out.put("replication.csv", replicationTable().render())
        let plots = ReportPlots.all(self)
        for (name, plot) in plots { try out.put(name, plot.render()) }
        let png = PNGConverter.find()
        var pngs: Set<String> = []
        if let png {
            for (name, _) in plots {
                let svg = out.path(name)
                let target = String(svg.dropLast(4)) + ".png"
                if png.convert(svg, to: target) { out.written.append(target); pngs.insert(name) }
            }
        }
        try out.put("report.md", reportMarkdown(plots: plots.map(\.0), pngs: pngs) + appendix)
        return out.written
    }

    /// report.md: the answer first (each group's allocation table and a one-line summary of
    /// its grades), then the data (runs, merged prefixes, the settings that separate groups),
    /// then one section per group with its plots and one line of reading per law, and what a
    /// failing law would take to pass.
    public func reportMarkdown(plots: [String] = [], pngs: Set<String> = []) -> String {
        var s = "# Scaling laws: \(grid)\n\nScore: \(score)."
        if let within { s += " Stratum: \(within) (`--within`: only cells with these values are analysed)." }
        s += "\n\n## Answer\n"
        for g in groups {
            s += "\n### \(g.label) on \(g.taskMix)\n\n" + answerTable(g) + "\n" + gradeSummary(g) + "\n"
        }
        let runs = groups.reduce(0) { $0 + $1.cells.count }
        s += "\n## Data\n\nCells: \(runs + mergedCells) analysed as \(runs) independent runs"
        if mergedCells > 0 {
            s += " (\(mergedCells) cell(s) with a smaller budget than a cell of the same settings and seed are prefixes of that run, folded into it)"
        }
        s += skipped.isEmpty ? ".\n" : "; \(skipped.count) skipped (" + skipped.prefix(5).map { "\($0.id): \($0.reason)" }.joined(separator: "; ")
            + (skipped.count > 5 ? "; …" : "") + ").\n"
        if let grouping, !grouping.varying.isEmpty {
            s += "\nSettings that vary and separate law groups: " + grouping.varying.joined(separator: ", ") + ".\n"
        }
        if let grouping, !grouping.followingAllocation.isEmpty {
            s += "\nSettings that follow the allocation (one value per configuration N, n, Bp, as a grid's `zip` gives): "
                + grouping.followingAllocation.joined(separator: ", ")
                + " — part of each arm: the arms are compared as run, and n* or Bp* is the optimum of that schedule.\n"
        }
        if let grouping, !grouping.pooled.isEmpty {
            s += "\nPooled on purpose (`--pool`): " + grouping.pooled.joined(separator: ", ")
                + " — runs that differ in them share a law group and count as runs of one configuration.\n"
        }
        s += "\nTables: [laws.csv](laws.csv), [allocation.csv](allocation.csv), [frontier.csv](frontier.csv), [replication.csv](replication.csv).\n"
        func img(_ name: String) -> String {
            "![\(name)](\(name))" + (pngs.contains(name) ? " ([png](\(name.dropLast(4)).png))" : "")
        }
        for g in groups {
            let slug = ReportPlots.slug(g)
            let per = RunCount(g.cells)
            s += "\n## \(g.label) on \(g.taskMix)\n\n\(g.cells.count) independent runs in \(per.strata) configuration(s) "
                + "(at least \(per.fewestPerConfiguration) each), \(g.frontier.count) frontier points, R0 = \(fmt3(g.initialScore)).\n\n"
            if g.seeds.count >= 2 {
                s += "\(g.seeds.count) seeds: each law is refitted on each seed's cells alone (replication.csv); "
                    + "the seeds gate compares each seed's headline parameters with the pooled 95% interval widened for one seed's share of the runs.\n\n"
            }
            for l in g.laws {
                s += "- " + reading(l) + "\n"
            }
            s += "\n"
            for p in plots where p.contains(slug) { s += img(p) + "\n\n" }
        }
        let methodPlots = plots.filter { $0.hasPrefix("methods-") }
        if !methodPlots.isEmpty {
            s += "## Method comparison\n\n"
            for p in methodPlots { s += img(p) + "\n\n" }
        }
        return s
    }

    /// The allocation table of a group, as report.md leads with it: at most eight budgets
    /// (evenly spread, the largest included) → N*, n*, Bp*, the predicted score with its 95%
    /// interval and how often the resamples agree on n*.
    func answerTable(_ g: GroupResult) -> String {
        let rows = g.allocation.filter { $0.score.isFinite }
        guard !rows.isEmpty else { return "No configuration law fitted: no allocation.\n" }
        let step = max(1, Int((Double(rows.count) / 8).rounded(.up)))
        let picked = rows.indices.filter { ($0 - (rows.count - 1)) % step == 0 }.map { rows[$0] }
        var t = "| budget C (FLOPs) | N* | n* | Bp* | predicted score [95% CI] | n* win frequency |\n|---|---|---|---|---|---|\n"
        for a in picked {
            let ci = a.interval.low.isFinite ? " [\(fmt3(a.interval.low)), \(fmt3(a.interval.high))]" : " (no interval)"
            let freq = (a.frequency[.rollouts] ?? .nan).isFinite ? String(format: "%.2f", a.frequency[.rollouts] ?? .nan) : "n/a"
            t += "| \(fmt3(a.budget)) | \(fmt(a.parameters)) | \(fmt(a.rolloutsPerProblem)) | \(fmt(a.problemsPerBatch)) | \(fmt3(a.score))\(ci) | \(freq) |\n"
        }
        return t
    }

    /// "Grades: 2 pass, 5 too_few_runs, 1 saturated (8 laws)."
    func gradeSummary(_ g: GroupResult) -> String {
        let counts = Dictionary(grouping: g.laws, by: \.quality).mapValues(\.count)
        let parts = LawQuality.allCases.compactMap { q in counts[q].map { "\($0) \(q.rawValue)" } }
        return "Grades: " + parts.joined(separator: ", ") + " (\(g.laws.count) laws)."
    }

    /// One line of reading for a law, ending with its quality grade in words (and, for score
    /// laws, the typical score SE of its data).
    func reading(_ l: LawResult) -> String {
        var tail = " " + l.quality.words
        if l.estimate.fit.form == .scaleRL || l.estimate.fit.form == .envelope {
            tail += l.typicalSE.isFinite ? "; typical score SE \(fmt3(l.typicalSE))" : "; typical score SE unknown"
            if l.topDecadeRise.isFinite { tail += "; rise across the top decade \(fmt3(l.topDecadeRise))" }
        }
        if let r = l.runs { tail += "; \(r.runs) run(s)" }
        let price = l.price.sentence
        return lawSentence(l) + tail + (price.isEmpty ? "" : " — " + price) + "."
    }

    /// The law's fitted shape in words.
    func lawSentence(_ l: LawResult) -> String {
        let f = l.estimate.fit
        let head = "`\(l.quantity)` (\(f.form.rawValue)): "
        guard f.isOK else { return head + "no fit — \(f.status)." }
        func p(_ n: String) -> String {
            let i = f.form.parameterNames.firstIndex(of: n) ?? 0
            let iv = i < l.estimate.intervals.count ? l.estimate.intervals[i] : .unknown
            return fmt3(f.value(n)) + (iv.low.isFinite ? " [\(fmt3(iv.low)), \(fmt3(iv.high))]" : "")
        }
        let e = l.estimate
        let ho = !e.holdoutError.isFinite ? ""
            : e.holdoutMetric == .maxGain
                ? String(format: "; holdout error on the top quarter of d: %.1f%% of the largest gold gain", 100 * e.holdoutError)
            : String(format: "; top-decade holdout error %.1f%% ", 100 * e.holdoutError)
                + (e.holdoutMetric == .relative ? "(relative)"
                    : f.form == .envelope ? "of the gain (envelope at the largest budget - R0)" : "of the gain A - R0")
        switch f.form {
        case .scaleRL:
            return head + "rises from R0 = \(fmt3(f.value("R0"))) toward A = \(p("A")), half-way at C_mid = \(p("C_mid")) FLOPs, steepness B = \(p("B"))\(ho)."
        case .powerOffset:
            return head + "falls as x^-\(p("alpha")) toward E = \(p("E"))\(ho)."
        case .chinchilla:
            let d = Dictionary(uniqueKeysWithValues: l.derived.map { ($0.name, $0.value) })
            return head + "error = \(p("E")) + \(p("A"))/N^\(p("alpha")) + \(p("B"))/D^\(p("beta")) (D in rollouts); N_opt ∝ C^\(fmt3(d["N_opt_exponent"] ?? .nan)), D_opt ∝ C^\(fmt3(d["D_opt_exponent"] ?? .nan))\(ho)."
        case .log2Sigmoid:
            return head + "log2 of the optimum moves from \(p("lo")) to \(p("hi")), midpoint at C = \(fmt3(exp(f.value("x0")))) FLOPs\(ho)."
        case .powerLaw:
            return head + "grows as C^\(p("b")) (a = \(p("a")))\(ho)."
        case .envelope:
            let top = l.band.last { $0.value.isFinite }
            let at = top.map { b in
                " reaches \(fmt3(b.value))" + (b.interval.low.isFinite ? " [\(fmt3(b.interval.low)), \(fmt3(b.interval.high))]" : "")
                    + " at the largest budget C = \(fmt3(b.budget)) FLOPs"
            } ?? ""
            return head + "upper envelope of \(Int(f.value("configurations"))) configuration laws;\(at)\(ho)."
        case .gaoRL, .gaoBoN:
            let shape = f.form == .gaoRL ? "d (\(p("alpha")) - \(p("beta")) ln d)" : "d (\(p("alpha")) - \(p("beta")) d)"
            let peak = GaoPeak(f)
            let at = peak.d.isFinite ? ", peaking at d* = \(fmt3(peak.d)) with a gain of \(fmt3(peak.gain))" : ", with no peak"
            return head + "gold gain over the base = \(shape) against d = sqrt(KL)\(at)\(ho)."
        }
    }
}

func fmt3(_ x: Double) -> String {
    guard x.isFinite else { return "n/a" }
    return abs(x) >= 1e4 || (abs(x) < 1e-2 && x != 0) ? String(format: "%.3g", x) : String(format: "%.3f", x)
}

/// Converts SVG to PNG with whichever of `rsvg-convert` or ImageMagick's `convert` is on PATH.
struct PNGConverter {
    var tool: String
    var isRSVG: Bool

    static func find() -> PNGConverter? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["rsvg-convert", "convert"] {
            for d in path.split(separator: ":") {
                let p = String(d) + "/" + name
                if FileManager.default.isExecutableFile(atPath: p) { return PNGConverter(tool: p, isRSVG: name == "rsvg-convert") }
            }
        }
        return nil
    }

    /// Runs the converter; false (silently) when it fails.
    func convert(_ svg: String, to png: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = isRSVG ? ["-o", png, svg] : [svg, png]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0 && FileManager.default.fileExists(atPath: png)
    }
}

/// The report's plots.
enum ReportPlots {
    static func slug(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }

    /// A group's part of its plot file names: method, task mixture and varying settings.
    static func slug(_ g: GroupResult) -> String {
        slug(g.method + "-" + g.taskMix + (g.settings.isEmpty ? "" : "-" + settingsLabel(g.settings)))
    }

    static func curve(_ f: LawFit, _ xs: [Double]) -> [(x: Double, y: Double)] {
        guard f.isOK, let lo = xs.filter({ $0 > 0 }).min(), let hi = xs.max(), hi > 0 else { return [] }
        return Frontier.logGrid(from: lo, to: hi, count: 60).map { (x: $0, y: f.predict($0)) }
    }

    static func all(_ r: LawsReport) -> [(String, SVGPlot)] {
        var out: [(String, SVGPlot)] = []
        for g in r.groups {
            let slug = slug(g)
            let title = "\(g.label), \(g.taskMix)"
            // Learning curves per arm with their fits.
            for dim in ArmDimension.allCases {
                let arms = g.arms[dim] ?? []
                guard arms.count >= 2 || (dim == .rollouts && !arms.isEmpty) else { continue }
                var plot = SVGPlot(title: "Learning curves by \(dim.rawValue): \(title)", xLabel: "RL compute C (FLOPs)",
                                   yLabel: "score (\(r.score))", xLog: true, yLog: false)
                for (i, a) in arms.enumerated() {
                    let cells = g.cells.filter { dim.value(of: $0) == a.value }
                    let data = cells.flatMap(\.curve).filter { $0.compute > 0 }
                    let pts = data.map { (x: $0.compute, y: $0.score) }
                    plot.series.append(.init(name: "\(dim.rawValue)=\(fmt(a.value)) data (±1 SE)", points: pts, style: .markers, color: i,
                                             errors: data.map(\.se)))
                    if a.fit.isOK {
                        plot.series.append(.init(name: "\(dim.rawValue)=\(fmt(a.value)) fit", points: curve(a.fit, pts.map(\.x)), style: .line, color: i))
                    }
                }
                out.append(("curves-\(dim.rawValue)-\(slug).svg", plot))
            }
            // Frontier with its law and the envelopes.
            var fp = SVGPlot(title: "Compute frontier: \(title)", xLabel: "RL compute C (FLOPs)", yLabel: "best score (\(r.score))",
                             xLog: true, yLog: false)
            let fpts = g.frontier.filter { $0.compute > 0 }.map { (x: $0.compute, y: $0.score) }
            fp.series.append(.init(name: "empirical frontier", points: fpts, style: .step, color: 7))
            if let law = g.law("score_frontier", .scaleRL), law.estimate.fit.isOK {
                fp.series.append(.init(name: "frontier law (95% CI)", points: law.band.map { (x: $0.budget, y: $0.value) },
                                       band: law.band.map { (x: $0.budget, low: $0.interval.low, high: $0.interval.high) },
                                       style: .line, color: 0))
            }
            if let env = g.law("score_envelope", .envelope), env.estimate.fit.isOK {
                let pts = env.band.filter { $0.value.isFinite }
                fp.series.append(.init(name: "envelope (95% CI)", points: pts.map { (x: $0.budget, y: $0.value) },
                                       band: pts.map { (x: $0.budget, low: $0.interval.low, high: $0.interval.high) },
                                       style: .line, color: 4))
            }
            for (i, dim) in ArmDimension.allCases.enumerated() where (g.arms[dim]?.count ?? 0) >= 2 {
                let env = (g.envelopes[dim] ?? []).filter { $0.arm != nil }.map { (x: $0.budget, y: $0.score) }
                fp.series.append(.init(name: "envelope of \(dim.rawValue) arms", points: env, style: .dashed, color: i + 1))
            }
            out.append(("frontier-\(slug).svg", fp))
            // n*(C) and N*(C) with their laws and bands.
            for (q, label, form) in [("n_star", "n* (rollouts per problem)", LawForm.log2Sigmoid), ("N_star", "N* (non-embedding parameters)", .powerLaw)] {
                var plot = SVGPlot(title: "\(q.replacingOccurrences(of: "_star", with: "*"))(C): \(title)", xLabel: "budget C (FLOPs)",
                                   yLabel: label, xLog: true, yLog: true)
                guard let law = g.law(q, form) else { continue }
                plot.series.append(.init(name: "envelope argmax", points: zip(law.data.x, law.data.y).map { (x: $0, y: $1) },
                                         style: .markers, color: 1))
                var forms = [law]
                if q == "n_star", let pl = g.law(q, .powerLaw) { forms.append(pl) }
                for (i, l) in forms.enumerated() where l.estimate.fit.isOK {
                    plot.series.append(.init(name: "\(l.estimate.fit.form.rawValue) (95% CI)", points: l.band.map { (x: $0.budget, y: $0.value) },
                                             band: l.band.map { (x: $0.budget, low: $0.interval.low, high: $0.interval.high) },
                                             style: i == 0 ? .line : .dashed, color: i == 0 ? 0 : 2))
                }
                out.append(("\(q)-\(slug).svg", plot))
            }
        }
        // Method comparison per task mixture.
        let mixes = Array(Set(r.groups.map(\.taskMix))).sorted()
        for mix in mixes {
            let gs = r.groups.filter { $0.taskMix == mix }
            var plot = SVGPlot(title: "Methods on \(mix)", xLabel: "RL compute C (FLOPs)", yLabel: "best score (\(r.score))", xLog: true, yLog: false)
            for (i, g) in gs.enumerated() {
                let f = g.frontier.filter { $0.compute > 0 }
                plot.series.append(.init(name: "\(g.label) frontier", points: f.map { (x: $0.compute, y: $0.score) },
                                         style: .markers, color: i, errors: f.map(\.se)))
                if let law = g.law("score_frontier", .scaleRL), law.estimate.fit.isOK {
                    plot.series.append(.init(name: "\(g.label) law", points: law.band.map { (x: $0.budget, y: $0.value) }, style: .line, color: i))
                }
            }
            out.append(("methods-\(slug(mix)).svg", plot))
        }
        return out
    }
}

/// A folder that reports are written into: created on opening, every file written
/// atomically (`AtomicFile`), and the paths written remembered.
public struct OutputFolder {
    public let directory: String
    /// Paths written so far, in order.
    public var written: [String] = []

    /// Opens `directory`, creating it (and its parents) if needed.
    public init(_ directory: String) throws(LawError) {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .io("cannot create \(directory): \(error.localizedDescription)")
        }
        self.directory = directory
    }

    /// The path of `name` in the folder.
    public func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Writes `text` to `name` atomically.
    public mutating func put(_ name: String, _ text: String) throws(LawError) {
        let p = path(name)
        do { try AtomicFile.write(Data(text.utf8), to: p) } catch { throw .io(error.description) }
        written.append(p)
    }
}
