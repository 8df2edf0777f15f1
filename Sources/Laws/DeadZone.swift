import Foundation
import ResultSchema

/// GRPO's dead zone against its theory: a group of n rollouts of a problem with pass rate p
/// has zero reward variance with probability pⁿ + (1 − p)ⁿ, so the expected dead-zone
/// fraction of a batch is the mean of that over its problems. Each cell measured both: the
/// zero-variance fraction of its training groups (`StepWindow.deadZoneFraction`) and, at
/// every evaluation point, the successes of its samples on each held-out problem of its
/// training distribution (`EvalPoint.trainSuccesses`).
public enum DeadZone {
    /// The theory at one evaluation point: the mean over problems of an estimate of
    /// pⁿ + (1 − p)ⁿ from c successes in N samples: unbiased, [C(c, n) + C(N − c, n)] / C(N, n),
    /// when n ≤ N; the plug-in (c/N)ⁿ + (1 − c/N)ⁿ otherwise (biased upward: a problem
    /// solved in none or all of N samples counts as dead). Nil without problems, or with a
    /// count outside 0…N.
    public static func expected(successes: [Int], samples: Int, n: Int) -> Double? {
        guard !successes.isEmpty, samples > 0, n >= 1, successes.allSatisfy({ (0...samples).contains($0) }) else { return nil }
        let total = successes.reduce(0.0) { acc, c in
            if n <= samples {
                return acc + PassAtK.worst(n: samples, c: c, k: n) + PassAtK.worst(n: samples, c: samples - c, k: n)
            }
            let p = Double(c) / Double(samples)
            return acc + pow(p, Double(n)) + pow(1 - p, Double(n))
        }
        return total / Double(successes.count)
    }

    /// One interval between consecutive evaluation points of one cell: the measured dead-zone
    /// fraction of the training windows whose middle step lies in it (weighted by their steps)
    /// and the theory, the mean of its two end points' estimates.
    public struct Interval: Sendable {
        public var fromCompute: Double, toCompute: Double
        public var measured: Double
        public var expected: Double
    }

    /// The intervals of one cell document (empty when it has no per-problem successes or no
    /// training window).
    public static func intervals(_ doc: CellResult) -> [Interval] {
        let n = doc.config.rolloutsPerProblem, samples = doc.config.evalSamples
        let pts = doc.curve
        guard pts.count >= 2 else { return [] }
        var out: [Interval] = []
        for k in 1..<pts.count {
            guard let a = pts[k - 1].trainSuccesses.flatMap({ expected(successes: $0, samples: samples, n: n) }),
                  let b = pts[k].trainSuccesses.flatMap({ expected(successes: $0, samples: samples, n: n) }) else { continue }
            var steps = 0, dead = 0.0
            for w in doc.windows {
                let middle = Double(w.firstStep + w.lastStep) / 2
                guard middle >= Double(pts[k - 1].step), middle < Double(pts[k].step) else { continue }
                let s = w.lastStep - w.firstStep + 1
                steps += s
                dead += Double(s) * w.deadZoneFraction
            }
            guard steps > 0 else { continue }
            out.append(Interval(fromCompute: pts[k - 1].compute.total, toCompute: pts[k].compute.total, measured: dead / Double(steps),
                                expected: (a + b) / 2))
        }
        return out
    }

    /// One row of report.md's table: the cells of one method label, task mixture, base size,
    /// n and Bp (seeds pooled), with the measured and expected dead zone over the first,
    /// middle and last third of their intervals and over all of them.
    public struct Row: Sendable {
        public var method: String, taskMix: String
        /// The law group's values of the settings that vary ("lag=4").
        public var settings: String
        public var parameters: Int, n: Int, bp: Int
        public var cells: Int
        /// (measured, expected) per third of the run, then over the whole run.
        public var thirds: [(measured: Double, expected: Double)]
        public var whole: (measured: Double, expected: Double)
        /// Whether n exceeds the evaluation samples (the theory is the biased plug-in).
        public var plugIn: Bool
    }

    /// The rows of a grid analysis: the runs of each law group of `report` (prefix cells
    /// already folded, `--within` and `--pool` applied, as for the laws), read from their
    /// documents in `documents` (by cell id); single-turn cells with per-problem successes only.
    public static func rows(_ report: LawsReport, documents: [String: CellResult]) -> [Row] {
        struct Key: Hashable, Comparable {
            var method: String, taskMix: String, settings: String, parameters: Int, n: Int, bp: Int
            static func < (a: Key, b: Key) -> Bool {
                (a.method, a.taskMix, a.settings, a.parameters, a.n, a.bp) < (b.method, b.taskMix, b.settings, b.parameters, b.n, b.bp)
            }
        }
        var byKey: [Key: [(doc: CellResult, intervals: [Interval])]] = [:]
        for g in report.groups {
            for c in g.cells {
                guard let d = documents[c.id], d.config.episodeSpec.turns == 1 else { continue }
                let iv = intervals(d)
                guard !iv.isEmpty else { continue }
                let key = Key(method: g.method, taskMix: g.taskMix, settings: settingsLabel(g.settings), parameters: d.baseParameters,
                              n: d.config.rolloutsPerProblem, bp: d.config.problemsPerBatch)
                byKey[key, default: []].append((d, iv))
            }
        }
        return byKey.keys.sorted().map { key in
            let cells = byKey[key] ?? []
            func mean(_ v: [(measured: Double, expected: Double)]) -> (measured: Double, expected: Double) {
                guard !v.isEmpty else { return (.nan, .nan) }
                return (v.map(\.measured).reduce(0, +) / Double(v.count), v.map(\.expected).reduce(0, +) / Double(v.count))
            }
            let thirds = (0..<3).map { t in
                mean(cells.flatMap { c -> [(measured: Double, expected: Double)] in
                    let m = c.intervals.count
                    return c.intervals.indices.filter { $0 * 3 / m == t }.map { (c.intervals[$0].measured, c.intervals[$0].expected) }
                })
            }
            let whole = mean(cells.flatMap { $0.intervals.map { ($0.measured, $0.expected) } })
            return Row(method: key.method, taskMix: key.taskMix, settings: key.settings, parameters: key.parameters, n: key.n, bp: key.bp, cells: cells.count,
                       thirds: thirds, whole: whole, plugIn: cells.contains { key.n > $0.doc.config.evalSamples })
        }
    }

    /// report.md's section (empty when no cell has the measurement).
    public static func markdown(_ rows: [Row]) -> String {
        guard !rows.isEmpty else { return "" }
        func pair(_ p: (measured: Double, expected: Double)) -> String { "\(fmt3(p.measured)) / \(fmt3(p.expected))" }
        var s = "\n## Dead zone against theory\n\n"
            + "Zero-variance groups measured in training / expected from the cell's own per-problem pass rates on its "
            + "training distribution, pⁿ + (1 − p)ⁿ averaged over problems (unbiased from each point's samples when n ≤ "
            + "the evaluation samples; the plug-in, biased upward, otherwise: marked *), between consecutive evaluation "
            + "points, averaged over the first, middle and last third of the run and over all of it; the law groups' "
            + "runs, seeds pooled.\n\n"
            + "| method | task mix | settings | N | n | Bp | runs | first third | middle third | last third | whole run |\n"
            + "|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            s += "| \(r.method) | \(r.taskMix) | \(r.settings) | \(r.parameters) | \(r.n)\(r.plugIn ? "*" : "") | \(r.bp) | \(r.cells) | "
                + r.thirds.map(pair).joined(separator: " | ") + " | \(pair(r.whole)) |\n"
        }
        return s
    }
}
