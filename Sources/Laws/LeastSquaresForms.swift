import Foundation

/// Form 1: ScaleRL's saturating score-vs-compute curve, fitted in u = ln C.
///
/// Unconstrained parameters θ = (θA, θB, m[, R0]): A = R0 + (aMax − R0)·σ(θA) when an
/// upper bound aMax is given (else R0 + softplus(θA)), B = softplus(θB), C_mid = e^m.
/// With s = σ(B(u − m)) the model is R = R0 + (A − R0)·s and the Jacobian is analytic.
///
/// When `data.weights` is given (e.g. 1/SE² of each score), the fit is weighted least
/// squares: each residual and Jacobian row is scaled by √wᵢ (weights normalised to mean 1
/// over the fitted points, which leaves the minimiser unchanged), the way
/// `gsl_multifit_nlinear_winit` weights a problem. r2 and rmse stay unweighted.
enum ScaleRLFit {
    static func fit(_ data: LawData, _ o: FitOptions) -> LawFit {
        var u: [Double] = [], y: [Double] = [], wRaw: [Double] = []
        for i in 0..<data.count where data.x[i] > 0 && data.x[i] >= o.minX {
            u.append(log(data.x[i])); y.append(data.y[i])
            if let w = data.weights, i < w.count { wRaw.append(w[i]) }
        }
        var sw = [Double](repeating: 1, count: y.count)
        if data.weights != nil {
            guard wRaw.count == y.count, wRaw.allSatisfy({ $0 >= 0 }), let wMax = wRaw.max(), wMax > 0 else {
                return .failure(.scaleRL, "bad weights: need w >= 0 and some w > 0", nPoints: y.count, options: o)
            }
            let mean = wRaw.reduce(0, +) / Double(wRaw.count)
            sw = wRaw.map { ($0 / mean).squareRoot() }
        }
        let freeR0 = o.r0 == nil
        let p = freeR0 ? 4 : 3
        if let s = Laws.precheck(y, free: p, what: "score") { return .failure(.scaleRL, s, nPoints: y.count, options: o) }
        let yMax = y.max() ?? 0, yMin = y.min() ?? 0
        if let r0 = o.r0, yMax - r0 <= 1e-9 {
            return .failure(.scaleRL, "flat: no point above R0 = \(fmt(r0)) (the curve never rises)", nPoints: y.count, options: o)
        }
        let n = y.count
        let bound = o.asymptoteMax.flatMap { $0.isFinite ? $0 : nil }

        /// (R0, Δ = A − R0, dΔ/dθA, dΔ/dR0, B, dB/dθB, m)
        func unpack(_ t: UnsafeBufferPointer<Double>) -> (Double, Double, Double, Double, Double, Double, Double) {
            let r0 = freeR0 ? t[3] : (o.r0 ?? 0)
            var d = 0.0, dd = 0.0, dr = 0.0
            if let hi = bound, hi > r0 {
                let s = logistic(t[0])
                d = (hi - r0) * s; dd = (hi - r0) * s * (1 - s); dr = -s
            } else {
                d = softplus(t[0]); dd = logistic(t[0])
            }
            return (r0, d, dd, dr, softplus(t[1]), logistic(t[1]), t[2])
        }
        let problem = LeastSquaresProblem(
                n: n, p: p,
                residuals: { t, r in
                    let (r0, d, _, _, b, _, m) = unpack(t)
                    for i in 0..<n {
                        let s = logistic(b * (u[i] - m))
                        r[i] = sw[i] * (r0 + d * s - y[i])
                    }
                },
                jacobian: { t, j in
                    let (_, d, dd, dr, b, db, m) = unpack(t)
                    for i in 0..<n {
                        let s = logistic(b * (u[i] - m))
                        let s1 = s * (1 - s)
                        j[i * p + 0] = sw[i] * dd * s
                        j[i * p + 1] = sw[i] * d * s1 * (u[i] - m) * db
                        j[i * p + 2] = sw[i] * -d * s1 * b
                        if freeR0 { j[i * p + 3] = sw[i] * (1 + dr * s) }
                    }
                })
        func toTheta(_ r0: Double, _ a: Double, _ b: Double, _ m: Double) -> [Double] {
            var ta: Double
            if let hi = bound, hi > r0 { ta = logit((a - r0) / (hi - r0)) } else { ta = softplusInverse(max(a - r0, 1e-9)) }
            if !ta.isFinite { ta = 0 }
            var t = [ta, softplusInverse(max(b, 1e-6)), m]
            if freeR0 { t.append(r0) }
            return t
        }
        let r0Start = o.r0 ?? (yMin - 0.05 * (yMax - yMin))
        let rise = yMax - r0Start
        var aStarts = [r0Start + 1.02 * rise, r0Start + 1.5 * rise, r0Start + 3 * rise]
        if let hi = bound, hi > r0Start { aStarts = aStarts.map { min($0, r0Start + 0.999 * (hi - r0Start)) } }
        let su = u.sorted()
        let mStarts = [quantile(sorted: su, 0.25), quantile(sorted: su, 0.5), quantile(sorted: su, 0.75), (su.last ?? 0) + 1]
        let bStarts = o.quick ? [1.0] : [0.5, 1, 2, 4]
        var starts: [[Double]] = []
        if let w = o.warmStart, w.count == 4, w.allSatisfy(\.isFinite), w[3] > 0 {
            starts.append(toTheta(o.r0 ?? w[0], w[1], w[2], log(w[3])))
        }
        for a in (o.quick ? [aStarts[0], aStarts[1]] : aStarts) {
            for b in bStarts { for m in (o.quick ? [mStarts[1], mStarts[3]] : mStarts) { starts.append(toTheta(r0Start, a, b, m)) } }
        }
        guard let best = Laws.multiStart(problem, starts: starts), best.converged else {
            return .failure(.scaleRL, "did not converge from any start", nPoints: n, options: o)
        }
        let (r0, d, _, _, b, _, m) = best.theta.withUnsafeBufferPointer { unpack($0) }
        let values = [r0, r0 + d, b, exp(m)]
        guard values.allSatisfy(\.isFinite) else {
            return .failure(.scaleRL, "did not converge: C_mid outside the representable range", nPoints: n, options: o)
        }
        let pred = u.map { r0 + d * logistic(b * ($0 - m)) }
        let st = Laws.stats(observed: y, predicted: pred)
        return LawFit(form: .scaleRL, values: values, status: "ok", nPoints: n, r2: st.r2, rmse: st.rmse,
                      objective: best.cost, fixed: freeR0 ? [] : ["R0"], options: o)
    }
}

/// Form 2: y = E + A·x^(−α), fitted on z = x / x̄ (x̄ the geometric mean of x) for
/// conditioning: θ = (E, a, θα), A·x^(−α) = e^(a − α ln z), α = softplus(θα), A = e^(a + α ln x̄).
enum PowerOffsetFit {
    static func fit(_ data: LawData, _ o: FitOptions) -> LawFit {
        let n = data.count
        if data.x.contains(where: { $0 <= 0 }) { return .failure(.powerOffset, "non-positive x: a power law needs x > 0", nPoints: n, options: o) }
        if let s = Laws.precheck(data.y, free: 3) { return .failure(.powerOffset, s, nPoints: n, options: o) }
        let y = data.y
        let lx = data.x.map { log($0) }
        let lbar = lx.reduce(0, +) / Double(n)
        let lz = lx.map { $0 - lbar }
        let problem = LeastSquaresProblem(
            n: n, p: 3,
            residuals: { t, r in
                let al = softplus(t[2])
                for i in 0..<n { r[i] = t[0] + exp(t[1] - al * lz[i]) - y[i] }
            },
            jacobian: { t, j in
                let al = softplus(t[2]), dal = logistic(t[2])
                for i in 0..<n {
                    let e = exp(t[1] - al * lz[i])
                    j[i * 3] = 1
                    j[i * 3 + 1] = e
                    j[i * 3 + 2] = -e * lz[i] * dal
                }
            })
        let yMin = y.min() ?? 0, yMax = y.max() ?? 0, range = yMax - yMin
        let med = quantile(sorted: y.sorted(), 0.5)
        var starts: [[Double]] = []
        if let w = o.warmStart, w.count == 3, w.allSatisfy(\.isFinite), w[1] > 0, w[2] > 0 {
            starts.append([w[0], log(w[1]) - w[2] * lbar, softplusInverse(w[2])])
        }
        var eStarts = [yMin - range, yMin - 0.1 * range, yMin - 0.01 * range]
        if yMin > 0 { eStarts.append(0) }
        let alphas = o.quick ? [0.3, 1.0] : [0.05, 0.2, 0.5, 1, 2]
        for e in (o.quick ? [eStarts[1]] : eStarts) {
            for al in alphas { starts.append([e, log(max(med - e, 1e-12 * max(1, abs(med)))), softplusInverse(al)]) }
        }
        guard let best = Laws.multiStart(problem, starts: starts), best.converged else {
            return .failure(.powerOffset, "did not converge from any start", nPoints: n, options: o)
        }
        let t = best.theta
        let al = softplus(t[2])
        let values = [t[0], exp(t[1] + al * lbar), al]
        guard values.allSatisfy(\.isFinite) else { return .failure(.powerOffset, "did not converge: A overflows", nPoints: n, options: o) }
        let pred = lz.map { t[0] + exp(t[1] - al * $0) }
        let st = Laws.stats(observed: y, predicted: pred)
        return LawFit(form: .powerOffset, values: values, status: "ok", nPoints: n, r2: st.r2, rmse: st.rmse,
                      objective: best.cost, fixed: [], options: o)
    }
}

/// Form 4: log2 y = lo + (hi − lo)·σ(k (ln x − x0)), θ = (lo, θΔ, θk, θx) with
/// hi = lo + softplus(θΔ) > lo, k = kMax·tanh(θk) (|k| < kMax = 10 per unit of ln x; either
/// sign, so a falling allocation is allowed) and x0 = u₀ + w·σ(θx) within the data's ln x
/// range widened by 1 on each side.
enum Log2SigmoidFit {
    static let kMax = 10.0

    static func fit(_ data: LawData, _ o: FitOptions) -> LawFit {
        let n = data.count
        if data.x.contains(where: { $0 <= 0 }) || data.y.contains(where: { $0 <= 0 }) {
            return .failure(.log2Sigmoid, "non-positive values: needs x > 0 and y > 0", nPoints: n, options: o)
        }
        let t = data.y.map { log2($0) }
        let u = data.x.map { log($0) }
        if let s = Laws.precheck(t, free: 4, what: "log2 y") { return .failure(.log2Sigmoid, s, nPoints: n, options: o) }
        let su = u.sorted()
        let u0 = (su.first ?? 0) - 1, w = max((su.last ?? 0) - (su.first ?? 0), 1e-6) + 2
        /// (lo, Δ, dΔ, k, dk, x0, dx0)
        func unpack(_ th: UnsafeBufferPointer<Double>) -> (Double, Double, Double, Double, Double, Double, Double) {
            let th2 = tanh(th[2]), sx = logistic(th[3])
            return (th[0], softplus(th[1]), logistic(th[1]), kMax * th2, kMax * (1 - th2 * th2), u0 + w * sx, w * sx * (1 - sx))
        }
        let problem = LeastSquaresProblem(
            n: n, p: 4,
            residuals: { th, r in
                let (lo, d, _, k, _, x0, _) = unpack(th)
                for i in 0..<n { r[i] = lo + d * logistic(k * (u[i] - x0)) - t[i] }
            },
            jacobian: { th, j in
                let (_, d, dd, k, dk, x0, dx0) = unpack(th)
                for i in 0..<n {
                    let s = logistic(k * (u[i] - x0)), s1 = s * (1 - s)
                    j[i * 4] = 1
                    j[i * 4 + 1] = dd * s
                    j[i * 4 + 2] = d * s1 * (u[i] - x0) * dk
                    j[i * 4 + 3] = -d * s1 * k * dx0
                }
            })
        func toTheta(_ lo: Double, _ hi: Double, _ k: Double, _ x0: Double) -> [Double] {
            let kk = min(max(k / kMax, -0.999), 0.999)
            return [lo, softplusInverse(max(hi - lo, 1e-6)), atanh(kk), logit((x0 - u0) / w)]
        }
        let tMin = t.min() ?? 0, tMax = t.max() ?? 0
        let uRange = w - 2
        var starts: [[Double]] = []
        if let ws = o.warmStart, ws.count == 4, ws.allSatisfy(\.isFinite), ws[1] > ws[0] {
            starts.append(toTheta(ws[0], ws[1], ws[2], ws[3]))
        }
        let ks = o.quick ? [4.0, -4.0] : [1.0, 4, 16, -1, -4, -16]
        let qs = o.quick ? [0.5] : [0.25, 0.5, 0.75]
        for k in ks {
            for q in qs { starts.append(toTheta(tMin - 0.05, tMax + 0.05, k / uRange, quantile(sorted: su, q))) }
        }
        guard let best = Laws.multiStart(problem, starts: starts), best.converged else {
            return .failure(.log2Sigmoid, "did not converge from any start", nPoints: n, options: o)
        }
        let (lo, d, _, k, _, x0, _) = best.theta.withUnsafeBufferPointer { unpack($0) }
        let values = [lo, lo + d, k, x0]
        let pred = u.map { lo + d * logistic(k * ($0 - x0)) }
        let st = Laws.stats(observed: t, predicted: pred)
        return LawFit(form: .log2Sigmoid, values: values, status: "ok", nPoints: n, r2: st.r2, rmse: st.rmse,
                      objective: best.cost, fixed: [], options: o)
    }
}

/// Form 5: y = a·x^b as ln y = ln a + b ln x by weighted linear least squares
/// (`gsl_fit_wlinear`; weights default to 1).
enum PowerLawFit {
    static func fit(_ data: LawData, _ o: FitOptions) -> LawFit {
        let n = data.count
        if data.x.contains(where: { $0 <= 0 }) || data.y.contains(where: { $0 <= 0 }) {
            return .failure(.powerLaw, "non-positive values: needs x > 0 and y > 0", nPoints: n, options: o)
        }
        let ly = data.y.map { log($0) }, lx = data.x.map { log($0) }
        if let s = Laws.precheck(data.y, free: 2) { return .failure(.powerLaw, s, nPoints: n, options: o) }
        if (lx.max() ?? 0) - (lx.min() ?? 0) <= 1e-12 { return .failure(.powerLaw, "flat: every x is equal", nPoints: n, options: o) }
        let w = data.weights ?? [Double](repeating: 1, count: n)
        if w.contains(where: { $0 < 0 }) || !w.contains(where: { $0 > 0 }) {
            return .failure(.powerLaw, "bad weights: need w >= 0 and some w > 0", nPoints: n, options: o)
        }
        guard let line = GSL.weightedLine(x: lx, y: ly, w: w) else {
            return .failure(.powerLaw, "gsl_fit_wlinear failed (singular design)", nPoints: n, options: o)
        }
        let pred = lx.map { line.c0 + line.c1 * $0 }
        let st = Laws.stats(observed: ly, predicted: pred)
        return LawFit(form: .powerLaw, values: [exp(line.c0), line.c1], status: "ok", nPoints: n, r2: st.r2, rmse: st.rmse,
                      objective: 0.5 * line.chisq, fixed: [], options: o)
    }
}
