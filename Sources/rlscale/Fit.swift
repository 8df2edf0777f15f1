import ArgumentParser
import Foundation
import Laws
import ResultSchema

/// `rlscale fit RESULTS [--out analysis/<grid>]`: fits every law of a result store.
struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit scaling laws to a grid's cells: frontiers, arm and configuration fits, their envelope, allocation laws, Chinchilla, with bootstrap CIs.",
        discussion: "Reads RESULTS/cells/*.json (status \"done\" only) and writes laws.csv, allocation.csv, frontier.csv, replication.csv (per-seed fits, when a group has two or more seeds), SVG plots and report.md; when some cells train on a proxy reward, also overoptimisation.csv (Gao's gao_rl law per arm) and its plots.")

    @Argument(help: "Result store folder (holds cells/ and optionally manifest.json); omit it with --curves.")
    var results: String?

    @Option(help: ArgumentHelp(
        "Fit a runs table instead of a store: CSV, or JSON lines (.jsonl), one row per run and evaluation point.",
        discussion: "Columns: run, compute, score (required); at least one of N, n, bp; optional method, task_mix, seed, score_se, rollouts, step, budget, flops_per_rollout, wall_seconds, score_problems, schedule_reads_budget, numerics, grid. Every other column is a setting: runs that differ in it form separate law groups (a registry setting a grid may zip with n, bp or size, like lr, instead stays in the arm when it takes one value per configuration). `rlscale export RESULTS --format runs` writes this table from a store.",
        valueName: "file"))
    var curves: String?

    @Option(help: "Output folder (default analysis/<grid>).")
    var out: String?

    @Option(help: "Score metric: avg@k, best@k, worst@k, greedy, the exact p_ref / logp_ref (probability of the reference solution), or solved@t (multi-turn: solved within t turns; eval_turns ≥ t).")
    var metric: String = "avg@4"

    @Option(help: "Evaluation group: train_dist (the cell's own training distribution), all, easy, hard, medium, solved, unsolved, d1, d2, ...")
    var group: String = "train_dist"

    @Option(help: "Bootstrap resamples (0 = none): the laws' run bootstrap (runs drawn within each configuration; default 1000) and the over-optimisation laws' bootstrap over cells (default 200).")
    var bootstrap: Int?

    @Option(help: "Bootstrap seed.")
    var seed: UInt64 = 0

    @Option(help: "Number of log-spaced budgets in the allocation table.")
    var budgets: Int = 24

    @Option(help: "Drop curve points below this fraction of the largest compute from score fits.")
    var fitWindow: Double = 0

    @Option(help: "Huber delta of the Chinchilla fit.")
    var huberDelta: Double = 1e-3

    @Option(help: "Fit within one stratum: KEY=VALUE[,KEY=VALUE] with keys n, bp, N or any cell setting (bp=8, lag=4, lr=5e-5, curriculum=uniform); other cells are left out.")
    var within: String?

    @Option(help: ArgumentHelp(
        "Pool over a setting on purpose (repeatable): runs that differ only in it share a law group.",
        discussion: "By default every setting that varies in the store (lr, lag, curriculum, difficulty range, eval_*, …) separates law groups, because pooling would read its values as seeds; lr, lag or curriculum taking one value per configuration (N, n, Bp), as a grid's zip with n gives, instead stays in the arm (report.md names it). Settings: \(CellSetting.groupingKeys.joined(separator: ", "))."))
    var pool: [String] = []

    @Flag(help: "Fit a store whose cells come from different numerics versions (refused otherwise).")
    var allowMixed = false

    func run() throws {
        let selector = try ScoreSelector(metric: metric, group: group)
        var store: CellStore
        switch (results, curves) {
        case (let results?, nil):
            store = try CellStore.load(results: results, score: selector, allowMixedNumerics: allowMixed)
            guard !store.cells.isEmpty else {
                let reasons = store.skipped.prefix(3).map { "\($0.id): \($0.reason)" }.joined(separator: "; ")
                throw LawError.badRequest("no finished cells in \(results)/cells (\(store.skipped.count) skipped\(reasons.isEmpty ? "" : ": " + reasons))")
            }
        case (nil, let file?):
            store = try RunsTable.read(path: file, allowMixedNumerics: allowMixed)
        default:
            throw ValidationError("give a result store or --curves FILE, not both or neither")
        }
        if let within {
            let stratum: Stratum
            do { stratum = try Stratum(parsing: within) } catch { throw LawError.badRequest("--within '\(within)': \(error)") }
            let all = store.cells.count
            store = store.within(stratum)
            guard !store.cells.isEmpty else {
                throw LawError.badRequest("--within '\(within)': none of the \(all) runs in \(results ?? curves ?? "") has \(stratum)")
            }
        }
        let settings = LawGrouping.candidates(store.cells)
        for key in pool where !settings.contains(key) {
            throw LawError.badRequest("--pool \(key): not a setting that separates law groups (settings: \(settings.joined(separator: ", ")))")
        }
        let options = AnalysisOptions(
            bootstrap: BootstrapOptions(resamples: max(0, bootstrap ?? AnalysisOptions.defaultResamples), seed: seed), budgets: max(2, budgets),
            fitWindowFraction: fitWindow, huberDelta: huberDelta, pool: Set(pool))
        var report = GridAnalysis.run(store, score: selector, options: options)
        if let curves { report.score = "the score column of \(curves)" }
        let dir = out ?? "analysis/\(store.grid)"
        guard let results else {
            // A runs table holds learning curves only: no support or over-optimisation analyses.
            let files = try report.write(to: dir)
            print("\(store.cells.count) runs, \(report.groups.count) group(s); wrote \(files.count) files to \(dir)")
            return
        }
        // Cells that measured support expansion: pass@k at start and end, new support, by arm.
        let loaded = try CellDocuments.load(results: results, allowMixedNumerics: allowMixed)
        let documents = loaded.documents
        let support = SupportAnalysis.analyse(cells: documents)
        let deadZone = DeadZone.rows(report, documents: Dictionary(zip(loaded.ids, documents), uniquingKeysWith: { a, _ in a }))
        var files = try report.write(to: dir, appendix: DeadZone.markdown(deadZone) + support.markdown())
        if !support.arms.isEmpty {
            files += try support.write(to: dir)
            print("support expansion: \(support.arms.count) arm(s) → \(dir)/support.csv")
        }
        // Cells that train on a proxy reward: Gao's over-optimisation law per arm.
        let over = try OverOptimisation.analyse(
            results: results,
            options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: max(0, bootstrap ?? BootstrapOptions().resamples), seed: seed),
                                             forms: [.gaoRL, .gaoBoN], allowMixedNumerics: allowMixed))
        if over.arms.contains(where: { $0.key.reward != RewardSource.gold.description }) {
            files += try over.write(to: dir)
            print("over-optimisation: \(over.arms.count) arm(s) → \(dir)/overoptimisation.csv")
        }
        for s in store.skipped { print("skipped \(s.id): \(s.reason)") }
        print("\(store.cells.count) cells, \(report.groups.count) group(s); wrote \(files.count) files to \(dir)")
    }
}

/// `rlscale fit-csv FILE --form FORM --x COLS --y COL`: fits any CSV with the same engine.
struct FitCSV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit-csv",
        abstract: "Fit one law form to columns of a CSV file and print its parameters with bootstrap CIs.")

    @Argument(help: "CSV file with a header row and numeric columns.")
    var file: String

    @Option(help: "scalerl, power_offset, chinchilla, log2_sigmoid or power_law.")
    var form: String

    @Option(help: "Input column(s), comma-separated (chinchilla: N,D).")
    var x: String

    @Option(help: "Output column.")
    var y: String

    @Option(help: "Weight column (power_law).")
    var weights: String?

    @Option(help: "Huber delta (chinchilla).")
    var huberDelta: Double = 1e-3

    @Option(help: "Fixed R0 (scalerl; default: mean y at x = 0, else fitted).")
    var r0: Double?

    @Option(help: "Bootstrap resamples over rows (0 = none).")
    var bootstrap: Int = 200

    @Option(help: "Bootstrap seed.")
    var seed: UInt64 = 0

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let table = try CSVTable.read(path: file)
        let request = CSVFit.Request(
            form: try CSVFit.form(named: form), x: x.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
            y: y, weights: weights, huberDelta: huberDelta, r0: r0,
            bootstrap: BootstrapOptions(resamples: max(0, bootstrap), seed: seed))
        let estimate = try CSVFit.run(table, request)
        print(json ? CSVFit.json(estimate) : CSVFit.text(estimate), terminator: json ? "\n" : "")
    }
}
