import Foundation

/// A point of an empirical compute frontier: the best score any cell reached at compute
/// at most `compute`, recorded where that best improves.
public struct FrontierPoint: Sendable, Hashable {
    public var compute: Double
    public var score: Double
    /// The cell whose evaluation set the new best.
    public var cellID: String
    /// Standard error of `score` (that evaluation's SE); NaN when unknown.
    public var se: Double
    /// Creates a point (`se` defaults to unknown).
    public init(compute: Double, score: Double, cellID: String, se: Double = .nan) {
        self.compute = compute; self.score = score; self.cellID = cellID; self.se = se
    }

    /// Equality treats two unknown (NaN) SEs as equal.
    public static func == (a: FrontierPoint, b: FrontierPoint) -> Bool {
        a.compute == b.compute && a.score == b.score && a.cellID == b.cellID && sameSE(a.se, b.se)
    }

    public func hash(into h: inout Hasher) {
        h.combine(compute); h.combine(score); h.combine(cellID); h.combine(se.isNaN ? Double.infinity : se)
    }
}

/// An allocation dimension along which arms are defined.
public enum ArmDimension: String, CaseIterable, Sendable, Hashable {
    /// Rollouts per problem n.
    case rollouts = "n"
    /// Base parameters N.
    case parameters = "N"
    /// Problems per batch Bp.
    case batch = "Bp"

    /// The cell's value along this dimension.
    public func value(of c: Cell) -> Double { Configuration(of: c)[self] }
}

/// One arm's fitted curve: the arm value, its law, and the largest compute its cells reached
/// (the envelope never lets an arm compete beyond its own data).
public struct ArmLaw: Sendable {
    public var value: Double
    public var fit: LawFit
    public var maxCompute: Double
    /// Creates an arm.
    public init(value: Double, fit: LawFit, maxCompute: Double) {
        self.value = value; self.fit = fit; self.maxCompute = maxCompute
    }
}

/// The upper envelope of arm laws at one budget.
public struct EnvelopePoint: Sendable, Hashable {
    public var budget: Double
    /// The best predicted score (NaN when no arm competes at this budget).
    public var score: Double
    /// Index of the argmax arm in the arms given, nil when none competes.
    public var arm: Int?
    /// The argmax arm's value (NaN when none).
    public var armValue: Double
}

/// Frontiers and envelopes.
public enum Frontier {
    /// The empirical frontier f(C) = max score over points with compute ≤ C, as the list of
    /// points where f strictly increases, in increasing compute. Non-finite points are
    /// ignored; at equal compute the higher score (then the smaller cell id) wins.
    public static func empirical(_ points: [(compute: Double, score: Double, cellID: String)]) -> [FrontierPoint] {
        empirical(points.map { (compute: $0.compute, score: $0.score, se: Double.nan, cellID: $0.cellID) })
    }

    /// The empirical frontier of points that carry a score SE; each frontier point keeps the
    /// SE of the evaluation that set it.
    public static func empirical(_ points: [(compute: Double, score: Double, se: Double, cellID: String)]) -> [FrontierPoint] {
        let sorted = points.filter { $0.compute.isFinite && $0.score.isFinite && $0.compute >= 0 }.sorted {
            $0.compute != $1.compute ? $0.compute < $1.compute : ($0.score != $1.score ? $0.score > $1.score : $0.cellID < $1.cellID)
        }
        var out: [FrontierPoint] = []
        for p in sorted where out.isEmpty || p.score > out[out.count - 1].score {
            out.append(FrontierPoint(compute: p.compute, score: p.score, cellID: p.cellID, se: p.se))
        }
        return out
    }

    /// The step function f(C) of an empirical frontier (NaN below its first point).
    public static func value(_ frontier: [FrontierPoint], at c: Double) -> Double {
        var v = Double.nan
        for p in frontier where p.compute <= c { v = p.score }
        return v
    }

    /// The SE of the frontier point that sets f(C) (NaN below the first point or when unknown).
    public static func se(_ frontier: [FrontierPoint], at c: Double) -> Double {
        var v = Double.nan
        for p in frontier where p.compute <= c { v = p.se }
        return v
    }

    /// `count` budgets spaced evenly in log from `lo` to `hi` (both included).
    public static func logGrid(from lo: Double, to hi: Double, count: Int) -> [Double] {
        guard lo > 0, hi >= lo, count >= 1, lo.isFinite, hi.isFinite else { return [] }
        if count == 1 || hi == lo { return [hi] }
        let a = log(lo), b = log(hi)
        return (0..<count).map { i in i == 0 ? lo : (i == count - 1 ? hi : exp(a + (b - a) * Double(i) / Double(count - 1))) }
    }

    /// The upper envelope of the arms' fitted laws at each budget and its argmax. An arm
    /// competes at budget C when its fit is ok and C ≤ its `maxCompute` (times 1 + 1e-9);
    /// ties go to the earlier arm (`upperEnvelope`).
    public static func envelope(_ arms: [ArmLaw], budgets: [Double]) -> [EnvelopePoint] {
        zip(budgets, upperEnvelope(arms, at: budgets)).map { c, best in
            EnvelopePoint(budget: c, score: best?.score ?? .nan, arm: best?.index, armValue: best.map { arms[$0.index].value } ?? .nan)
        }
    }
}

extension LawFit {
    /// A law with given parameter values (status "ok", no goodness-of-fit statistics), for
    /// hand-made arms and plotting known laws.
    public init(form: LawForm, values: [Double]) {
        self.init(form: form, values: values, status: values.count == form.parameterNames.count ? "ok" : "wrong parameter count",
                  nPoints: 0, r2: .nan, rmse: .nan, objective: .nan, fixed: [], options: FitOptions())
    }
}
