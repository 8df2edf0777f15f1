import Foundation
import ResultSchema

/// One arm of the support-expansion analysis: the cells of one method label, task mix, base,
/// n and K (seeds pooled), on one subset of the measured problems.
public struct SupportArm: Sendable {
    /// Which problems: `train_dist` (the levels RL trained on) or `other` (levels it never
    /// trained on: transfer, or forgetting).
    public var subset: String
    public var method: String
    public var taskMix: String
    public var base: String
    public var rolloutsPerProblem: Int
    /// K, samples per problem and model.
    public var samples: Int
    public var cells: Int
    /// Measured (cell, problem) pairs, and the distinct held-out problems among them.
    public var measurements: Int
    public var problems: Int

    /// pass@k of the base (step 0) and of the policy (end) on the measured problems, and the
    /// change, each with its standard error clustered by problem (a problem measured by
    /// several cells of the arm is one unit: the mean of its cells).
    public struct Point: Sendable {
        public var k: Int
        public var base: Double, baseSE: Double
        public var policy: Double, policySE: Double
        public var change: Double, changeSE: Double
    }
    public var curve: [Point]
    public var newSupport: Int
    public var expectedFalseDiscoveries: Double
    /// An upper bound on the SD of the false-discovery count: each problem's discoveries
    /// across the arm's cells are taken as perfectly correlated (they share its unknown pass
    /// rate), √(Σ_problems (Σ_cells √(q(1 − q)))²), q its per-cell false-discovery probability.
    public var falseDiscoverySD: Double
    public var baseZero: Int
    public var lostSupport: Int

    public var label: String { "\(method) on \(taskMix), base \(base), n=\(rolloutsPerProblem), \(subset)" }

    /// Whether a change is resolved: more than two standard errors from 0.
    static func resolved(_ x: Double, _ se: Double) -> Bool { se.isFinite && abs(x) > 2 * se }

    /// The reading of the arm, in words: does RL raise pass@K, or only pass@1 (sharpening)?
    /// And is the new support more than a policy identical to the base would find ("beyond
    /// chance": more than expected + 2 `falseDiscoverySD`)?
    public var reading: String {
        guard let first = curve.first, let last = curve.last else { return "no measurement" }
        let up1 = Self.resolved(first.change, first.changeSE) && first.change > 0
        let upK = Self.resolved(last.change, last.changeSE) && last.change > 0
        let downK = Self.resolved(last.change, last.changeSE) && last.change < 0
        var s: String
        if upK {
            s = "expands: pass@\(last.k) rose"
        } else if downK {
            s = "narrows: pass@\(last.k) fell" + (up1 ? " while pass@1 rose (sharpening at the cost of coverage)" : "")
        } else {
            s = up1 ? "sharpens only: pass@1 rose, pass@\(last.k) did not move beyond 2 SE" : "no change beyond 2 SE at k = 1 or \(last.k)"
        }
        let chance = expectedFalseDiscoveries + 2 * falseDiscoverySD
        s += Double(newSupport) > chance
            ? "; new support \(newSupport) exceeds chance (\(fmt3(expectedFalseDiscoveries)) expected from the base's own noise)"
            : "; new support \(newSupport) is within chance (\(fmt3(expectedFalseDiscoveries)) expected from the base's own noise)"
        return s
    }
}

/// The support-expansion ("invisible leash") analysis of a store's cells that measured it
/// (`support_samples`): per arm, pass@k at start and end, the change with its SE, new support
/// against its expected false discoveries, and a reading.
public struct SupportAnalysis: Sendable {
    public var arms: [SupportArm]

    /// Analyses the done cell documents that carry a support measurement.
    public static func analyse(cells: [CellResult]) -> SupportAnalysis {
        struct Key: Hashable, Comparable {
            var subset: String, method: String, taskMix: String, base: String, n: Int, k: Int
            static func < (a: Key, b: Key) -> Bool {
                (a.subset, a.method, a.taskMix, a.base, a.n, a.k) < (b.subset, b.method, b.taskMix, b.base, b.n, b.k)
            }
        }
        var groups: [Key: [SupportMeasurement]] = [:]
        for c in cells where c.status == "done" {
            guard let m = c.support else { continue }
            for subset in ["train_dist", "other"] {
                var part = m
                part.problems = m.problems.filter { $0.trainDistribution == (subset == "train_dist") }
                guard !part.problems.isEmpty else { continue }
                part.baseZero = part.problems.filter { $0.base == 0 }.count
                part.newSupport = part.problems.filter { $0.base == 0 && $0.policy > 0 }.count
                part.lostSupport = part.problems.filter { $0.base > 0 && $0.policy == 0 }.count
                part.expectedFalseDiscoveries = part.problems.reduce(0) { $0 + ($1.falseDiscoveryProbability ?? 0) }
                let key = Key(
                    subset: subset, method: c.config.methodLabel, taskMix: c.config.lawGroupLabel, base: c.baseName,
                    n: c.config.rolloutsPerProblem, k: m.samples)
                groups[key, default: []].append(part)
            }
        }
        var arms: [SupportArm] = []
        for key in groups.keys.sorted() {
            let ms = groups[key, default: []]
            let K = key.k
            // Per problem: the mean over the arm's cells of its pass@k (base, policy).
            var byProblem: [Int: [(base: Int, policy: Int)]] = [:]
            for m in ms { for p in m.problems { byProblem[p.index, default: []].append((p.base, p.policy)) } }
            let problems = byProblem.keys.sorted()
            func clustered(_ f: (Int, Int) -> Double) -> (Double, Double) {
                let c = RewardDiagnostics.clustered(problems.map { i in byProblem[i, default: []].map { f($0.base, $0.policy) } })
                return (c.mean, c.se ?? .nan)
            }
            let curve = SupportMeasurement.ks(samples: K).map { k -> SupportArm.Point in
                let b = clustered { c, _ in PassAtK.best(n: K, c: c, k: k) }
                let p = clustered { _, c in PassAtK.best(n: K, c: c, k: k) }
                let d = clustered { cb, cp in PassAtK.best(n: K, c: cp, k: k) - PassAtK.best(n: K, c: cb, k: k) }
                return SupportArm.Point(k: k, base: b.0, baseSE: b.1, policy: p.0, policySE: p.1, change: d.0, changeSE: d.1)
            }
            var spread: [Int: Double] = [:]
            for m in ms {
                for p in m.problems { if let q = p.falseDiscoveryProbability { spread[p.index, default: 0] += (q * (1 - q)).squareRoot() } }
            }
            arms.append(SupportArm(
                subset: key.subset, method: key.method, taskMix: key.taskMix, base: key.base, rolloutsPerProblem: key.n, samples: K, cells: ms.count,
                measurements: ms.reduce(0) { $0 + $1.problems.count }, problems: problems.count, curve: curve,
                newSupport: ms.reduce(0) { $0 + $1.newSupport }, expectedFalseDiscoveries: ms.reduce(0) { $0 + $1.expectedFalseDiscoveries },
                falseDiscoverySD: spread.values.reduce(0) { $0 + $1 * $1 }.squareRoot(),
                baseZero: ms.reduce(0) { $0 + $1.baseZero }, lostSupport: ms.reduce(0) { $0 + $1.lostSupport }))
        }
        return SupportAnalysis(arms: arms)
    }

    /// support.csv: one row per arm and k.
    public func table() -> CSVTable {
        var t = CSVTable(header: [
            "subset", "method", "task_mix", "base", "n", "cells", "measurements", "problems", "samples_K", "k", "base_pass", "base_se",
            "policy_pass", "policy_se", "change", "change_se", "new_support", "expected_false_discoveries", "false_discoveries_sd_bound", "base_zero",
            "lost_support", "reading",
        ])
        for a in arms {
            for p in a.curve {
                t.rows.append([
                    a.subset, a.method, a.taskMix, a.base, String(a.rolloutsPerProblem), String(a.cells), String(a.measurements), String(a.problems),
                    String(a.samples), String(p.k), fmt(p.base), fmt(p.baseSE), fmt(p.policy), fmt(p.policySE), fmt(p.change),
                    fmt(p.changeSE), String(a.newSupport), fmt(a.expectedFalseDiscoveries), fmt(a.falseDiscoverySD), String(a.baseZero), String(a.lostSupport),
                    a.reading,
                ])
            }
        }
        return t
    }

    /// One plot per arm, `support_<slug>.svg`: pass@k against k (log k), the base at step 0
    /// and the policy at the end, each with a ±2 SE band.
    public func plots() -> [(name: String, plot: SVGPlot)] {
        var out: [(name: String, plot: SVGPlot)] = []
        var used: [String: Int] = [:]
        for a in arms {
            var slug = ReportPlots.slug([a.method, a.taskMix, a.base, "n\(a.rolloutsPerProblem)", a.subset].joined(separator: "-"))
            used[slug, default: 0] += 1
            if let c = used[slug], c > 1 { slug += "-\(c)" }
            var plot = SVGPlot(title: "Support: \(a.label)", xLabel: "k (samples)", yLabel: "pass@k on unsolved and hard problems",
                               xLog: true, yLog: false)
            func band(_ v: KeyPath<SupportArm.Point, Double>, _ se: KeyPath<SupportArm.Point, Double>) -> [(x: Double, low: Double, high: Double)] {
                a.curve.filter { $0[keyPath: se].isFinite }.map { (x: Double($0.k), low: $0[keyPath: v] - 2 * $0[keyPath: se], high: $0[keyPath: v] + 2 * $0[keyPath: se]) }
            }
            plot.series.append(.init(name: "base (step 0)", points: a.curve.map { (x: Double($0.k), y: $0.base) },
                                     band: band(\.base, \.baseSE), style: .dashed, color: 0))
            plot.series.append(.init(name: "policy (end)", points: a.curve.map { (x: Double($0.k), y: $0.policy) },
                                     band: band(\.policy, \.policySE), style: .line, color: 1))
            out.append(("support_\(slug).svg", plot))
        }
        return out
    }

    /// The report.md section: one row per arm.
    public func markdown() -> String {
        guard !arms.isEmpty else { return "" }
        var s = "\n## Support expansion (the invisible leash)\n\n"
        s += "K samples per held-out problem of the base's `unsolved` and `hard` buckets, from the base at step 0 and from the policy "
            + "at the end (seeds independent of the base evaluation that defined the buckets); pass@k is unbiased, its SE clustered by "
            + "problem. New support: problems with 0 of K from the base and ≥ 1 of K from the policy; beside it, how many a policy "
            + "identical to the base would find ([support.csv](support.csv)). Each arm is read twice: on the problems of its "
            + "training distribution (`train_dist`) and on the levels RL never trained on (`other`: transfer, or forgetting).\n\n"
        s += "| arm | cells | problems | pass@1 start → end | pass@K start → end | new support / expected by chance | lost | reading |\n"
        s += "|---|---|---|---|---|---|---|---|\n"
        for a in arms {
            guard let first = a.curve.first, let last = a.curve.last else { continue }
            func pair(_ p: SupportArm.Point) -> String {
                "\(fmt3(p.base)) → \(fmt3(p.policy)) (\(p.change >= 0 ? "+" : "")\(fmt3(p.change)) ± \(fmt3(p.changeSE)))"
            }
            s += "| \(a.label) | \(a.cells) | \(a.problems) | \(pair(first)) | K = \(last.k): \(pair(last)) | "
                + "\(a.newSupport) / \(fmt3(a.expectedFalseDiscoveries)) ± \(fmt3(a.falseDiscoverySD)) | \(a.lostSupport) | \(a.reading) |\n"
        }
        return s
    }

    /// Writes support.csv and the plots into `dir`; returns the paths written.
    @discardableResult
    public func write(to dir: String) throws(LawError) -> [String] {
        var out = try OutputFolder(dir)
        try out.put("support.csv", table().render())
        for (name, plot) in plots() { try out.put(name, plot.render()) }
        return out.written
    }
}
