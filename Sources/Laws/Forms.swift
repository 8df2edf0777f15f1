import Foundation
import ResultSchema

/// The functional forms the fitter knows. Every form is fitted through GSL with bounded
/// parameters implemented by reparameterisation (softplus for positive quantities, a
/// logistic map for quantities inside an interval, exp for positive scales).
public enum LawForm: String, CaseIterable, Sendable, Codable {
    /// Saturating score vs compute (ScaleRL): `R(C) = R0 + (A − R0) / (1 + (C_mid / C)^B)`,
    /// fitted in log C with `gsl_multifit_nlinear` (trust region). R0 is fixed from the
    /// step-0 evaluation when given; A ∈ (R0, aMax], B > 0.
    case scaleRL = "scalerl"
    /// Power law with offset `y = E + A · x^(−α)`, A > 0, α > 0 (`gsl_multifit_nlinear`).
    case powerOffset = "power_offset"
    /// Chinchilla `L(N, D) = E + A / N^α + B / D^β`, Huber loss on log residuals, BFGS.
    case chinchilla = "chinchilla"
    /// Saturating allocation law `log2 y = lo + (hi − lo) / (1 + exp(−k (ln x − x0)))`,
    /// hi > lo (`gsl_multifit_nlinear`).
    case log2Sigmoid = "log2_sigmoid"
    /// Plain power law `y = a · x^b` by weighted linear least squares in log–log space
    /// (`gsl_fit_wlinear`).
    case powerLaw = "power_law"
    /// The upper envelope of a group's configuration laws (each `scaleRL`): not fitted
    /// itself. Its one parameter, `configurations`, is the number of configuration laws that
    /// compete in it (held fixed: a count, not an estimate); `LawModel` cannot evaluate it
    /// from that, so its predictions come from the configuration laws (`Frontier.jointEnvelope`).
    case envelope = "envelope"
    /// Gao et al.'s (arXiv 2210.10760) reward over-optimisation law for RL against a proxy
    /// reward: the gold reward gained since the base, against d = √KL(π ‖ base),
    /// `R_gold(d) − R_gold(0) = d (α − β ln d)`. Linear in (α, β), with no intercept (the law
    /// is 0 at d = 0): fitted by Huber-robust linear regression (`gsl_multifit_robust`), a
    /// convex problem with one minimum, so no start grid. Rows at d = 0 carry no information
    /// and are not fitted. Peak (α, β > 0): d* = exp(α/β − 1), R* = β d*.
    case gaoRL = "gao_rl"
    /// Gao et al.'s over-optimisation law for best-of-n sampling:
    /// `R_gold(d) − R_gold(0) = d (α − β d)`, with d = √KL of best-of-n against the base,
    /// √(ln n − (n − 1)/n). Fitted like `gaoRL`. Peak (β > 0): d* = α / (2β), R* = α² / (4β).
    case gaoBoN = "gao_bon"

    /// The forms `Laws.fit` fits (every form but `envelope`). The grid analysis
    /// (`GridAnalysis`) names its forms itself and never fits the Gao forms to compute
    /// curves: they are fitted against d by `OverOptimisation` (and by `fit-csv` on request).
    public static let fitted: [LawForm] = allCases.filter { $0 != .envelope }

    /// The reward over-optimisation forms (`gaoRL`, `gaoBoN`): gold gain against d = √KL.
    public var isOverOptimisation: Bool { self == .gaoRL || self == .gaoBoN }

    /// Parameter names in the order of `LawFit.values`.
    public var parameterNames: [String] {
        switch self {
        case .scaleRL: ["R0", "A", "B", "C_mid"]
        case .powerOffset: ["E", "A", "alpha"]
        case .chinchilla: ["E", "A", "alpha", "B", "beta"]
        case .log2Sigmoid: ["lo", "hi", "k", "x0"]
        case .powerLaw: ["a", "b"]
        case .envelope: ["configurations"]
        case .gaoRL, .gaoBoN: ["alpha", "beta"]
        }
    }

    /// Number of input columns (2 for Chinchilla: N and D).
    public var inputCount: Int { self == .chinchilla ? 2 : 1 }

    /// The formula, for reports.
    public var formula: String {
        switch self {
        case .scaleRL: "R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B)"
        case .powerOffset: "y = E + A * x^(-alpha)"
        case .chinchilla: "L(N, D) = E + A / N^alpha + B / D^beta"
        case .log2Sigmoid: "log2 y = lo + (hi - lo) / (1 + exp(-k (ln x - x0)))"
        case .powerLaw: "y = a * x^b"
        case .envelope: "R(C) = max over configurations c competing at C of R_c(C)"
        case .gaoRL: "R_gold(d) - R_gold(0) = d * (alpha - beta * ln d), d = sqrt(KL)"
        case .gaoBoN: "R_gold(d) - R_gold(0) = d * (alpha - beta * d), d = sqrt(KL)"
        }
    }

    /// The space in which r2 and rmse are computed.
    public var fitSpace: String {
        switch self {
        case .scaleRL, .powerOffset, .envelope, .gaoRL, .gaoBoN: "y"
        case .chinchilla: "ln L"
        case .log2Sigmoid: "log2 y"
        case .powerLaw: "ln y"
        }
    }
}

/// Points to fit: `x` (compute, N, any abscissa), `x2` (D, Chinchilla only), `y`, and
/// optional per-point weights (used by the weighted power law).
public struct LawData: Sendable {
    public var x: [Double]
    public var x2: [Double]?
    public var y: [Double]
    public var weights: [Double]?

    /// Creates a data set; `x2` only for two-input forms.
    public init(x: [Double], x2: [Double]? = nil, y: [Double], weights: [Double]? = nil) {
        self.x = x
        self.x2 = x2
        self.y = y
        self.weights = weights
    }

    /// Number of points.
    public var count: Int { y.count }

    /// The rows at `indices` (repeats allowed: bootstrap resamples).
    public func subset(_ indices: [Int]) -> LawData {
        LawData(x: indices.map { x[$0] }, x2: x2.map { v in indices.map { v[$0] } }, y: indices.map { y[$0] },
                weights: weights.map { w in indices.map { w[$0] } })
    }
}

/// Knobs of a fit.
public struct FitOptions: Sendable {
    /// ScaleRL: R0 fixed at this value (the step-0 score); nil fits R0 as a free parameter.
    public var r0: Double?
    /// ScaleRL: upper bound of the asymptote A (1 for pass rates); nil = unbounded.
    public var asymptoteMax: Double?
    /// ScaleRL fit window: points with x below this are dropped (0 keeps every x > 0).
    public var minX: Double
    /// Chinchilla: Huber δ on log residuals.
    public var huberDelta: Double
    /// Use a small start grid (bootstrap refits; `warmStart` is tried first).
    public var quick: Bool
    /// Natural parameter values to try as the first start (e.g. the full-data fit).
    public var warmStart: [Double]?

    /// Defaults: R0 free, A unbounded, no window, δ = 1e-3, full start grid.
    public init(r0: Double? = nil, asymptoteMax: Double? = nil, minX: Double = 0, huberDelta: Double = 1e-3,
                quick: Bool = false, warmStart: [Double]? = nil) {
        self.r0 = r0
        self.asymptoteMax = asymptoteMax
        self.minX = minX
        self.huberDelta = huberDelta
        self.quick = quick
        self.warmStart = warmStart
    }
}

/// A fitted law (or the reason there is none). `values` follow `form.parameterNames`;
/// they are NaN whenever `status` is not "ok".
public struct LawFit: Sendable {
    public var form: LawForm
    public var values: [Double]
    /// "ok", or why there is no fit: too few points, flat data, non-finite input,
    /// non-positive values where logs are taken, no convergence.
    public var status: String
    /// Points the fit used (after the fit window and filters).
    public var nPoints: Int
    /// Coefficient of determination and root-mean-square residual in `form.fitSpace`.
    public var r2: Double
    public var rmse: Double
    /// The minimised objective (½ Σ r² for least squares, Σ Huber for Chinchilla).
    public var objective: Double
    /// Parameters held fixed rather than fitted (ScaleRL's R0 when given).
    public var fixed: Set<String>
    /// Options the fit was made with (a refit or bootstrap reuses them).
    public var options: FitOptions

    /// Whether the fit succeeded.
    public var isOK: Bool { status == "ok" }

    /// A failed fit with its reason.
    public static func failure(_ form: LawForm, _ status: String, nPoints: Int, options: FitOptions) -> LawFit {
        LawFit(form: form, values: [Double](repeating: .nan, count: form.parameterNames.count), status: status,
               nPoints: nPoints, r2: .nan, rmse: .nan, objective: .nan, fixed: [], options: options)
    }

    /// Named parameter value (NaN if unknown or failed).
    public func value(_ name: String) -> Double {
        guard let i = form.parameterNames.firstIndex(of: name), i < values.count else { return .nan }
        return values[i]
    }

    /// The law's prediction at x (and x2 = D for Chinchilla), in y units.
    public func predict(_ x: Double, _ x2: Double = .nan) -> Double {
        LawModel.predict(form, values, x, x2)
    }
}

// MARK: - Transforms

@inline(__always) func softplus(_ x: Double) -> Double { x > 30 ? x : log1p(exp(x)) }
@inline(__always) func softplusInverse(_ y: Double) -> Double { y > 30 ? y : log(expm1(max(y, 1e-300))) }
@inline(__always) func logistic(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
@inline(__always) func logit(_ p: Double) -> Double {
    let q = min(max(p, 1e-12), 1 - 1e-12)
    return log(q / (1 - q))
}

/// Model evaluation in natural parameters, shared by fits, predictions and plots.
enum LawModel {
    static func predict(_ form: LawForm, _ v: [Double], _ x: Double, _ x2: Double) -> Double {
        guard v.count == form.parameterNames.count else { return .nan }
        switch form {
        case .scaleRL:
            let (r0, a, b, cmid) = (v[0], v[1], v[2], v[3])
            guard x > 0 else { return r0 }
            return r0 + (a - r0) / (1 + exp(b * (log(cmid) - log(x))))
        case .powerOffset:
            return v[0] + v[1] * pow(x, -v[2])
        case .chinchilla:
            return v[0] + v[1] / pow(x, v[2]) + v[3] / pow(x2, v[4])
        case .log2Sigmoid:
            let (lo, hi, k, x0) = (v[0], v[1], v[2], v[3])
            return exp2(lo + (hi - lo) * logistic(k * (log(x) - x0)))
        case .powerLaw:
            return v[0] * pow(x, v[1])
        case .envelope:
            return .nan
        case .gaoRL:
            // d ln d → 0 as d → 0: the law passes through 0 at d = 0.
            guard x > 0 else { return x == 0 ? 0 : .nan }
            return x * (v[0] - v[1] * log(x))
        case .gaoBoN:
            return x * (v[0] - v[1] * x)
        }
    }
}

// MARK: - Entry point

/// The fitting engine.
public enum Laws {
    /// Fits `form` to `data`. Never throws and never traps: anything that prevents a fit
    /// (too few points, flat or non-finite data, logs of non-positive values, no
    /// convergence from any start) comes back as a `LawFit` whose `status` says why.
    public static func fit(_ form: LawForm, _ data: LawData, options: FitOptions = FitOptions()) -> LawFit {
        let n = data.count
        guard data.x.count == n, form.inputCount == 1 || data.x2?.count == n else {
            return .failure(form, "input columns of different lengths", nPoints: n, options: options)
        }
        var bad = 0
        for i in 0..<n {
            if !data.y[i].isFinite || !data.x[i].isFinite || !(data.x2.map { $0[i].isFinite } ?? true)
                || !(data.weights.map { $0[i].isFinite } ?? true) { bad += 1 }
        }
        if bad > 0 { return .failure(form, "non-finite input: \(bad) of \(n) points", nPoints: n, options: options) }
        if let r0 = options.r0, !r0.isFinite { return .failure(form, "non-finite input: R0", nPoints: n, options: options) }
        switch form {
        case .scaleRL: return ScaleRLFit.fit(data, options)
        case .powerOffset: return PowerOffsetFit.fit(data, options)
        case .chinchilla: return ChinchillaFit.fit(data, options)
        case .log2Sigmoid: return Log2SigmoidFit.fit(data, options)
        case .powerLaw: return PowerLawFit.fit(data, options)
        case .gaoRL, .gaoBoN: return GaoFit.fit(form, data, options)
        case .envelope:
            return .failure(form, "not a fitted form: the envelope is the upper envelope of the configuration laws",
                            nPoints: n, options: options)
        }
    }

    /// Minimum number of points for a form: one more than its free parameters.
    static func minimumPoints(_ form: LawForm, freeParameters: Int) -> Int { freeParameters + 1 }

    /// Common pre-checks; returns a status or nil when fitting can go ahead.
    static func precheck(_ y: [Double], free: Int, what: String = "y") -> String? {
        if y.count < free + 1 { return "too few points: \(y.count), need at least \(free + 1)" }
        let lo = y.min() ?? 0, hi = y.max() ?? 0
        if hi - lo <= 1e-12 * max(1, abs(hi)) { return "flat: every \(what) equals \(fmt(hi)), no trend to fit" }
        return nil
    }

    /// Goodness of fit in the fit space.
    static func stats(observed: [Double], predicted: [Double]) -> (r2: Double, rmse: Double) {
        let n = Double(observed.count)
        guard n > 0 else { return (.nan, .nan) }
        let mean = observed.reduce(0, +) / n
        var ssr = 0.0, sst = 0.0
        for (o, p) in zip(observed, predicted) { ssr += (o - p) * (o - p); sst += (o - mean) * (o - mean) }
        return (sst > 0 ? 1 - ssr / sst : .nan, (ssr / n).squareRoot())
    }

    /// Runs the trust-region solver from every start and keeps the lowest converged cost.
    static func multiStart(_ problem: LeastSquaresProblem, starts: [[Double]]) -> LocalSolution? {
        var best: LocalSolution?
        var lastMessage = ""
        for s in starts where s.allSatisfy(\.isFinite) {
            let sol = GSL.leastSquares(problem, start: s)
            if sol.converged {
                if best == nil || sol.cost < best!.cost { best = sol }
            } else {
                lastMessage = sol.message
            }
        }
        if best == nil, !lastMessage.isEmpty { return LocalSolution(theta: [], cost: .infinity, converged: false, message: lastMessage) }
        return best
    }
}

/// Compact number formatting for statuses and tables (the one the group labels use).
func fmt(_ x: Double) -> String { compactNumber(x) }

/// Quantile of sorted values by linear interpolation (type 7).
func quantile(sorted v: [Double], _ q: Double) -> Double {
    guard !v.isEmpty else { return .nan }
    let h = Double(v.count - 1) * q
    let lo = Int(h.rounded(.down)), hi = min(lo + 1, v.count - 1)
    return v[lo] + (h - Double(lo)) * (v[hi] - v[lo])
}
