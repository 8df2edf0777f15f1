import Foundation

/// Form 3: Chinchilla `L(N, D) = E + A/N^α + B/D^β`, fitted as in Hoffmann et al.:
/// log-sum-exp parameterisation `ln L̂ = LSE(a − α ln N, b − β ln D, e)` (A = e^a, B = e^b,
/// E = e^e), Huber loss (δ) on `ln L̂ − ln L`, a grid of initialisations of which the best
/// few start GSL's BFGS (`vector_bfgs2`) with the analytic gradient. α = softplus(θα) and
/// β = softplus(θβ) keep both exponents positive.
public enum ChinchillaFit {
    /// Prepared log inputs.
    struct Prepared {
        var lN: [Double], lD: [Double], lL: [Double]
        var count: Int { lL.count }
    }

    static func prepare(_ data: LawData) -> Result<Prepared, LawFitFailure> {
        guard let d = data.x2 else { return .failure(LawFitFailure("needs two inputs (N and D)")) }
        let n = data.count
        if data.x.contains(where: { $0 <= 0 }) || d.contains(where: { $0 <= 0 }) || data.y.contains(where: { $0 <= 0 }) {
            return .failure(LawFitFailure("non-positive values: needs N > 0, D > 0 and L > 0"))
        }
        let p = Prepared(lN: data.x.map { log($0) }, lD: d.map { log($0) }, lL: data.y.map { log($0) })
        if let s = Laws.precheck(p.lL, free: 5, what: "L") { return .failure(LawFitFailure(s)) }
        if let s = unidentified(parameters: data.x) { return .failure(LawFitFailure(s)) }
        _ = n
        return .success(p)
    }

    /// Distinct model sizes the fit needs. The N-dependence of `E + A/N^α` is only seen
    /// through one offset per distinct N; with two N there are two offsets for three unknowns
    /// (E, A, α), so (A, α), and with them G and the allocation exponents, are arbitrary.
    public static let minimumDistinctN = 3

    /// Why the data cannot identify the law (fewer than `minimumDistinctN` distinct N), or nil.
    public static func unidentified(parameters n: [Double]) -> String? {
        let distinct = Set(n).count
        return distinct < minimumDistinctN ? "needs >= \(minimumDistinctN) distinct N (got \(distinct))" : nil
    }

    /// Σᵢ Huber_δ(LSE − ln Lᵢ) and its gradient with respect to θ = (a, b, e, θα, θβ).
    static func objective(_ p: Prepared, delta: Double, theta t: UnsafeBufferPointer<Double>,
                          gradient g: UnsafeMutableBufferPointer<Double>?) -> Double {
        let a = t[0], b = t[1], e = t[2]
        let al = softplus(t[3]), be = softplus(t[4])
        var f = 0.0, ga = 0.0, gb = 0.0, ge = 0.0, gal = 0.0, gbe = 0.0
        let n = p.count
        p.lN.withUnsafeBufferPointer { lN in
            p.lD.withUnsafeBufferPointer { lD in
                p.lL.withUnsafeBufferPointer { lL in
                    for i in 0..<n {
                        let t1 = a - al * lN[i], t2 = b - be * lD[i]
                        let mx = max(t1, max(t2, e))
                        let e1 = exp(t1 - mx), e2 = exp(t2 - mx), e3 = exp(e - mx)
                        let s = e1 + e2 + e3
                        let r = mx + log(s) - lL[i]
                        let ar = abs(r)
                        f += ar <= delta ? 0.5 * r * r : delta * (ar - 0.5 * delta)
                        if g != nil {
                            let h = ar <= delta ? r : (r > 0 ? delta : -delta)
                            let w1 = e1 / s, w2 = e2 / s, w3 = e3 / s
                            ga += h * w1; gb += h * w2; ge += h * w3
                            gal -= h * w1 * lN[i]; gbe -= h * w2 * lD[i]
                        }
                    }
                }
            }
        }
        if let g {
            g[0] = ga; g[1] = gb; g[2] = ge
            g[3] = gal * logistic(t[3]); g[4] = gbe * logistic(t[4])
        }
        return f
    }

    static func theta(fromNatural v: [Double]) -> [Double]? {
        guard v.count == 5, v[0] > 0, v[1] > 0, v[2] > 0, v[3] > 0, v[4] > 0 else { return nil }
        return [log(v[1]), log(v[3]), log(v[0]), softplusInverse(v[2]), softplusInverse(v[4])]
    }

    static func natural(fromTheta t: [Double]) -> [Double] {
        [exp(t[2]), exp(t[0]), softplus(t[3]), exp(t[1]), softplus(t[4])]
    }

    /// The initialisation grid, scaled to the data: e below the smallest ln L, each power
    /// term starting at a fraction of the typical L at the median N (or D).
    static func grid(_ p: Prepared, quick: Bool) -> [[Double]] {
        let lLmin = p.lL.min() ?? 0
        let lLmed = quantile(sorted: p.lL.sorted(), 0.5)
        let lNm = quantile(sorted: p.lN.sorted(), 0.5), lDm = quantile(sorted: p.lD.sorted(), 0.5)
        let es = quick ? [lLmin - 1, lLmin - 0.2] : [lLmin - 2, lLmin - 1, lLmin - 0.3, lLmin - 0.05]
        let exps = quick ? [0.3, 1.0] : [0.1, 0.3, 0.6, 1.0, 1.5]
        let fracs = quick ? [0.1, 0.5] : [0.03, 0.1, 0.3, 1.0]
        var out: [[Double]] = []
        for e in es {
            for al in exps {
                for be in exps {
                    for fa in fracs {
                        for fb in fracs {
                            out.append([al * lNm + lLmed + log(fa), be * lDm + lLmed + log(fb), e,
                                        softplusInverse(al), softplusInverse(be)])
                        }
                    }
                }
            }
        }
        return out
    }

    static func fit(_ data: LawData, _ o: FitOptions) -> LawFit {
        let n = data.count
        guard o.huberDelta > 0, o.huberDelta.isFinite else {
            return .failure(.chinchilla, "bad Huber delta \(fmt(o.huberDelta)): must be > 0", nPoints: n, options: o)
        }
        let p: Prepared
        switch prepare(data) {
        case .failure(let f): return .failure(.chinchilla, f.status, nPoints: n, options: o)
        case .success(let q): p = q
        }
        let delta = o.huberDelta
        // Score the whole grid, then start BFGS from the best few.
        var scored: [(Double, [Double])] = []
        for g in grid(p, quick: o.quick) {
            let f = g.withUnsafeBufferPointer { objective(p, delta: delta, theta: $0, gradient: nil) }
            if f.isFinite { scored.append((f, g)) }
        }
        scored.sort { $0.0 < $1.0 }
        var starts = scored.prefix(o.quick ? 2 : 6).map(\.1)
        if let w = o.warmStart, let t = theta(fromNatural: w) { starts.insert(t, at: 0) }
        let obj = Objective(p: 5) { t, g in objective(p, delta: delta, theta: t, gradient: g) }
        // Each point adds at most δ·(1 + |ln N| + |ln D|) to the gradient: tolerances on that scale.
        let scale = delta * Double(max(n, 1)).squareRoot()
        let gradTol = 1e-7 * scale, stallTol = 1e-3 * scale
        var best: LocalSolution?
        var lastMessage = "no finite start"
        for s in starts {
            let sol = GSL.bfgs(obj, start: s, gradTol: gradTol, stallTol: stallTol)
            if sol.converged, sol.cost.isFinite {
                if best == nil || sol.cost < best!.cost { best = sol }
            } else { lastMessage = sol.message }
        }
        guard let best else {
            return .failure(.chinchilla, "did not converge from any start (\(lastMessage))", nPoints: n, options: o)
        }
        let values = natural(fromTheta: best.theta)
        guard values.allSatisfy(\.isFinite) else {
            return .failure(.chinchilla, "did not converge: parameters overflow", nPoints: n, options: o)
        }
        let pred = (0..<p.count).map { i in log(LawModel.predict(.chinchilla, values, data.x[i], data.x2?[i] ?? .nan)) }
        let st = Laws.stats(observed: p.lL, predicted: pred)
        return LawFit(form: .chinchilla, values: values, status: "ok", nPoints: n, r2: st.r2, rmse: st.rmse,
                      objective: best.cost, fixed: [], options: o)
    }

    /// The Huber objective Σᵢ Huber_δ(ln L̂(Nᵢ, Dᵢ) − ln Lᵢ) at natural parameters
    /// (E, A, α, B, β); NaN when the data or parameters are invalid.
    public static func huberObjective(_ values: [Double], data: LawData, delta: Double) -> Double {
        guard case .success(let p) = prepare(data), let t = theta(fromNatural: values) else { return .nan }
        return t.withUnsafeBufferPointer { objective(p, delta: delta, theta: $0, gradient: nil) }
    }

    /// Independent check of a fit: minimises the same objective with GSL's derivative-free
    /// Nelder–Mead simplex (`nmsimplex2`) from `start` (natural parameters). Returns the
    /// natural parameters and objective reached, or nil when the input is invalid.
    public static func nelderMead(_ data: LawData, start: [Double], delta: Double) -> (values: [Double], objective: Double)? {
        guard case .success(let p) = prepare(data), let t0 = theta(fromNatural: start) else { return nil }
        let obj = Objective(p: 5) { t, g in objective(p, delta: delta, theta: t, gradient: g) }
        // Restart the simplex from its own optimum a few times (the usual remedy for collapse).
        var sol = GSL.nelderMead(obj, start: t0)
        for _ in 0..<3 { sol = GSL.nelderMead(obj, start: sol.theta, step: 0.1) }
        return (natural(fromTheta: sol.theta), sol.cost)
    }

    /// Compute-optimal allocation under `C = k·N·D` for a fitted Chinchilla law:
    /// `N_opt = G·(C/k)^(β/(α+β))`, `D_opt = G⁻¹·(C/k)^(α/(α+β))`, `G = (αA/(βB))^(1/(α+β))`.
    /// NaN when the fit failed.
    public static func computeOptimal(_ fit: LawFit, budget c: Double, k: Double = 6) -> (n: Double, d: Double) {
        guard fit.form == .chinchilla, fit.isOK, c > 0, k > 0 else { return (.nan, .nan) }
        let (a, al, b, be) = (fit.value("A"), fit.value("alpha"), fit.value("B"), fit.value("beta"))
        let s = al + be
        let g = pow(al * a / (be * b), 1 / s)
        return (g * pow(c / k, be / s), pow(c / k, al / s) / g)
    }
}

/// Why a fit could not be made (internal plumbing of statuses).
struct LawFitFailure: Error {
    var status: String
    init(_ s: String) { status = s }
}
