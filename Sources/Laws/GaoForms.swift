import Foundation

/// Forms 6 and 7: Gao et al.'s (arXiv 2210.10760) reward over-optimisation laws, the gold
/// reward gained since the base against d = √KL(π ‖ base):
///
/// - `gaoRL`:  y = d (α − β ln d) = α·d + β·(−d ln d)
/// - `gaoBoN`: y = d (α − β d)    = α·d + β·(−d²)
///
/// Both are linear in (α, β) with no intercept (the law is 0 at d = 0), so each is one robust
/// linear regression on the two columns above (`GSL.robustLinear`: Huber's ρ, iteratively
/// reweighted least squares, so that a few evaluations far off the curve, e.g. a collapsed
/// run, do not drag the law). The Huber objective is convex in (α, β): there is one minimum
/// and no start grid or multi-start is needed (`FitOptions.quick` and `warmStart` are
/// ignored, and so are `LawData.weights`).
///
/// Rows at d = 0 (step 0, best-of-1) are not fitted: the law is 0 there whatever α and β
/// are, so they carry no information. A negative d is not a distance and fails the fit.
/// r2 and rmse are in y (the gold gain), over the fitted rows; `objective` is ½ Σ r² of the
/// robust solution (the Huber objective's scale is internal to GSL).
enum GaoFit {
    static func fit(_ form: LawForm, _ data: LawData, _ o: FitOptions) -> LawFit {
        guard form.isOverOptimisation else {
            return .failure(form, "not an over-optimisation form", nPoints: data.count, options: o)
        }
        if let bad = data.x.first(where: { $0 < 0 }) {
            return .failure(form, "negative d (\(fmt(bad))): d = sqrt(KL) is at least 0", nPoints: data.count, options: o)
        }
        let rows = data.x.indices.filter { data.x[$0] > 0 }
        let d = rows.map { data.x[$0] }, y = rows.map { data.y[$0] }
        if let s = Laws.precheck(y, free: 2, what: "gold gain") { return .failure(form, s, nPoints: y.count, options: o) }
        let dMin = d.min() ?? 0, dMax = d.max() ?? 0
        if dMax - dMin <= 1e-12 * max(1, dMax) {
            return .failure(form, "flat: every d equals \(fmt(dMax)), alpha and beta cannot be told apart", nPoints: y.count, options: o)
        }
        var design: [Double] = []
        design.reserveCapacity(2 * d.count)
        for x in d { design += [x, Self.betaColumn(form, x)] }
        let c: [Double]
        switch GSL.robustLinear(design: design, y: y, p: 2) {
        case .success(let v): c = v
        case .failure(let f): return .failure(form, f.status, nPoints: y.count, options: o)
        }
        let pred = d.map { LawModel.predict(form, c, $0, .nan) }
        let st = Laws.stats(observed: y, predicted: pred)
        let cost = 0.5 * zip(y, pred).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return LawFit(form: form, values: c, status: "ok", nPoints: y.count, r2: st.r2, rmse: st.rmse, objective: cost,
                      fixed: [], options: o)
    }

    /// The regressor of β at d > 0: −d ln d (RL) or −d² (best-of-n).
    static func betaColumn(_ form: LawForm, _ d: Double) -> Double {
        form == .gaoRL ? -d * log(d) : -d * d
    }
}

/// Where a Gao over-optimisation law peaks: the distance d* at which the gold gain is
/// largest and that gain R* (both NaN when the law has no peak).
///
/// - `gao_rl`, d (α − β ln d): a peak needs β > 0 (any α: with α ≤ 0 it is an early peak,
///   below 1/e); then d* = exp(α/β − 1) and R* = β·d* > 0.
/// - `gao_bon`, d (α − β d): a peak needs α > 0 and β > 0; then d* = α / (2β) and R* = α² / (4β).
///
/// d* may overflow to +∞ when β is tiny against α (a peak too far out to matter).
public struct GaoPeak: Sendable, Hashable {
    /// d* = √KL at the peak.
    public var d: Double
    /// R*, the largest gold gain the law predicts.
    public var gain: Double

    /// The peak of `form` with parameters α, β (NaN for forms other than the Gao forms).
    public init(_ form: LawForm, alpha: Double, beta: Double) {
        switch form {
        case .gaoRL where beta > 0:  // R″ = −β/d < 0: a maximum, whatever the sign of α
            d = exp(alpha / beta - 1)
            gain = beta * d
        case .gaoBoN where alpha > 0 && beta > 0:  // α ≤ 0: the law only falls (its maximum is at d ≤ 0)
            d = alpha / (2 * beta)
            gain = alpha * alpha / (4 * beta)
        default:
            d = .nan
            gain = .nan
        }
    }

    /// The peak of a fitted Gao law (NaN when the fit failed or has no peak).
    public init(_ fit: LawFit) {
        guard fit.isOK else { self.init(fit.form, alpha: .nan, beta: .nan); return }
        self.init(fit.form, alpha: fit.value("alpha"), beta: fit.value("beta"))
    }
}
