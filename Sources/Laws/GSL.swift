@preconcurrency import CGSL

/// Errors of the law fitter: files that cannot be read or written and input that cannot
/// be parsed. Fits never throw: a fit that cannot be made is a `LawFit` with a status.
public enum LawError: Error, CustomStringConvertible, Sendable {
    /// A file or folder could not be read or written.
    case io(String)
    /// Input could not be parsed (CSV, JSON, option values).
    case parse(String)
    /// A caller asked for something that does not exist (unknown form, missing column).
    case badRequest(String)

    /// The message without its kind.
    public var message: String {
        switch self {
        case .io(let s), .parse(let s), .badRequest(let s): s
        }
    }

    public var description: String {
        switch self {
        case .io(let s): "io: \(s)"
        case .parse(let s): "parse: \(s)"
        case .badRequest(let s): s
        }
    }
}

/// The GSL bridge: every numerical fit in `Laws` goes through one of these wrappers.
/// GSL's default error handler aborts the process; `GSL.prepare()` turns it off once,
/// so every failure comes back as a return code that the callers check.
enum GSL {
    private static let handlerOff: Bool = {
        gsl_set_error_handler_off()
        return true
    }()

    /// Turns GSL's aborting error handler off (idempotent, thread-safe).
    static func prepare() { _ = handlerOff }

    static func message(_ code: Int32) -> String {
        guard let s = gsl_strerror(code) else { return "gsl error \(code)" }
        return String(cString: s)
    }
}

// MARK: - Nonlinear least squares (gsl_multifit_nlinear, trust region)

/// A nonlinear least-squares problem in unconstrained parameters θ (bounds are handled by
/// the forms' reparameterisations): minimise ½ Σ rᵢ(θ)².
struct LeastSquaresProblem {
    /// Number of residuals.
    var n: Int
    /// Number of parameters.
    var p: Int
    /// Writes the n residuals at θ.
    var residuals: (UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Void
    /// Writes the n×p Jacobian (row-major) at θ; nil = GSL's finite differences.
    var jacobian: ((UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Void)?
}

/// Outcome of one local solve.
struct LocalSolution {
    var theta: [Double]
    /// ½ Σ r² (least squares) or the objective value (minimisers).
    var cost: Double
    var converged: Bool
    var message: String
}

/// Copies the first `x.count` entries of a (possibly strided) GSL vector into `x`.
private func copyVector(_ v: UnsafePointer<gsl_vector>, into x: inout [Double]) {
    guard let d = v.pointee.data else { return }
    let s = v.pointee.stride
    for i in 0..<min(x.count, v.pointee.size) { x[i] = d[i * s] }
}

private final class LSQBox {
    let problem: LeastSquaresProblem
    var x: [Double]
    var r: [Double]
    var j: [Double]
    init(_ p: LeastSquaresProblem) {
        problem = p
        x = [Double](repeating: 0, count: p.p)
        r = [Double](repeating: 0, count: p.n)
        j = [Double](repeating: 0, count: p.n * p.p)
    }

    func load(_ v: UnsafePointer<gsl_vector>) { copyVector(v, into: &x) }
}

private let lsqF: @convention(c) (UnsafePointer<gsl_vector>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<gsl_vector>?) -> Int32 = { xv, params, fv in
    guard let xv, let params, let fv else { return Int32(GSL_EFAULT) }
    let box = Unmanaged<LSQBox>.fromOpaque(params).takeUnretainedValue()
    box.load(xv)
    box.x.withUnsafeBufferPointer { xs in
        box.r.withUnsafeMutableBufferPointer { rs in box.problem.residuals(xs, rs) }
    }
    let s = fv.pointee.stride
    guard let d = fv.pointee.data else { return Int32(GSL_EFAULT) }
    for i in 0..<box.problem.n {
        let v = box.r[i]
        d[i * s] = v.isFinite ? v : 1e10
    }
    return Int32(GSL_SUCCESS)
}

private let lsqDF: @convention(c) (UnsafePointer<gsl_vector>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<gsl_matrix>?) -> Int32 = { xv, params, jm in
    guard let xv, let params, let jm else { return Int32(GSL_EFAULT) }
    let box = Unmanaged<LSQBox>.fromOpaque(params).takeUnretainedValue()
    guard let jac = box.problem.jacobian else { return Int32(GSL_EFAULT) }
    box.load(xv)
    box.x.withUnsafeBufferPointer { xs in
        box.j.withUnsafeMutableBufferPointer { js in jac(xs, js) }
    }
    let tda = jm.pointee.tda
    guard let d = jm.pointee.data else { return Int32(GSL_EFAULT) }
    let p = box.problem.p
    for i in 0..<box.problem.n {
        for k in 0..<p {
            let v = box.j[i * p + k]
            d[i * tda + k] = v.isFinite ? v : 0
        }
    }
    return Int32(GSL_SUCCESS)
}

extension GSL {
    /// Solves a least-squares problem from `start` with GSL's trust-region driver
    /// (Levenberg–Marquardt steps, Moré scaling, QR solver).
    static func leastSquares(_ problem: LeastSquaresProblem, start: [Double], maxIter: Int = 200) -> LocalSolution {
        prepare()
        let fail = LocalSolution(theta: start, cost: .infinity, converged: false, message: "")
        guard problem.n >= problem.p, problem.p > 0, start.count == problem.p else {
            return LocalSolution(theta: start, cost: .infinity, converged: false, message: "fewer residuals than parameters")
        }
        let box = LSQBox(problem)
        var fdf = gsl_multifit_nlinear_fdf()
        fdf.f = lsqF
        fdf.df = problem.jacobian == nil ? nil : lsqDF
        fdf.fvv = nil
        fdf.n = problem.n
        fdf.p = problem.p
        fdf.params = Unmanaged.passUnretained(box).toOpaque()
        var params = gsl_multifit_nlinear_default_parameters()
        guard let w = gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &params, problem.n, problem.p) else { return fail }
        defer { gsl_multifit_nlinear_free(w) }
        guard let x0 = gsl_vector_alloc(problem.p) else { return fail }
        defer { gsl_vector_free(x0) }
        for (i, v) in start.enumerated() { gsl_vector_set(x0, i, v) }
        var status = withExtendedLifetime(box) { gsl_multifit_nlinear_init(x0, &fdf, w) }
        guard status == Int32(GSL_SUCCESS) else { return LocalSolution(theta: start, cost: .infinity, converged: false, message: GSL.message(status)) }
        var info: Int32 = 0
        status = withExtendedLifetime(box) {
            gsl_multifit_nlinear_driver(maxIter, 1e-10, 1e-10, 1e-12, nil, nil, &info, w)
        }
        guard let xs = gsl_multifit_nlinear_position(w), let fs = gsl_multifit_nlinear_residual(w) else { return fail }
        var theta = [Double](repeating: 0, count: problem.p)
        for i in 0..<problem.p { theta[i] = gsl_vector_get(xs, i) }
        var cost = 0.0
        for i in 0..<problem.n { let r = gsl_vector_get(fs, i); cost += r * r }
        cost *= 0.5
        let ok = status == Int32(GSL_SUCCESS) && cost.isFinite && theta.allSatisfy(\.isFinite)
        return LocalSolution(theta: theta, cost: cost.isFinite ? cost : .infinity, converged: ok,
                             message: ok ? "" : (status == Int32(GSL_SUCCESS) ? "non-finite solution" : GSL.message(status)))
    }
}

// MARK: - Smooth minimisation (gsl_multimin)

/// A smooth objective with its analytic gradient.
struct Objective {
    var p: Int
    /// Returns f(θ) and writes ∇f(θ) when the gradient buffer is non-nil.
    var evaluate: (UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>?) -> Double
}

private final class ObjBox {
    let objective: Objective
    var x: [Double]
    var g: [Double]
    init(_ o: Objective) {
        objective = o
        x = [Double](repeating: 0, count: o.p)
        g = [Double](repeating: 0, count: o.p)
    }
    func load(_ v: UnsafePointer<gsl_vector>) { copyVector(v, into: &x) }
    func value(withGradient: Bool) -> Double {
        x.withUnsafeBufferPointer { xs in
            if withGradient {
                return g.withUnsafeMutableBufferPointer { gs in objective.evaluate(xs, gs) }
            }
            return objective.evaluate(xs, nil)
        }
    }
    func store(_ gv: UnsafeMutablePointer<gsl_vector>) {
        let s = gv.pointee.stride
        guard let d = gv.pointee.data else { return }
        for i in 0..<objective.p { d[i * s] = g[i].isFinite ? g[i] : 0 }
    }
}

private let objF: @convention(c) (UnsafePointer<gsl_vector>?, UnsafeMutableRawPointer?) -> Double = { xv, params in
    guard let xv, let params else { return .nan }
    let box = Unmanaged<ObjBox>.fromOpaque(params).takeUnretainedValue()
    box.load(xv)
    let f = box.value(withGradient: false)
    return f.isFinite ? f : 1e300
}

private let objDF: @convention(c) (UnsafePointer<gsl_vector>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<gsl_vector>?) -> Void = { xv, params, gv in
    guard let xv, let params, let gv else { return }
    let box = Unmanaged<ObjBox>.fromOpaque(params).takeUnretainedValue()
    box.load(xv)
    _ = box.value(withGradient: true)
    box.store(gv)
}

private let objFDF: @convention(c) (UnsafePointer<gsl_vector>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Double>?, UnsafeMutablePointer<gsl_vector>?) -> Void = { xv, params, fp, gv in
    guard let xv, let params, let fp, let gv else { return }
    let box = Unmanaged<ObjBox>.fromOpaque(params).takeUnretainedValue()
    box.load(xv)
    let f = box.value(withGradient: true)
    fp.pointee = f.isFinite ? f : 1e300
    box.store(gv)
}

extension GSL {
    /// Minimises with GSL's BFGS (`gsl_multimin_fdfminimizer_vector_bfgs2`) and the analytic
    /// gradient. Converged means the gradient norm fell below `gradTol`. When the line search
    /// stops making progress (GSL_ENOPROG) the minimiser is restarted from where it stopped
    /// (a fresh Hessian estimate) up to `restarts` times; if it still cannot progress, a
    /// gradient norm below `stallTol` counts as converged (the objective is flat to
    /// rounding there), anything else as not converged.
    static func bfgs(_ objective: Objective, start: [Double], gradTol: Double, stallTol: Double,
                     maxIter: Int = 2000, restarts: Int = 3) -> LocalSolution {
        prepare()
        let fail = LocalSolution(theta: start, cost: .infinity, converged: false, message: "gsl allocation failed")
        let box = ObjBox(objective)
        var fn = gsl_multimin_function_fdf()
        fn.f = objF
        fn.df = objDF
        fn.fdf = objFDF
        fn.n = objective.p
        fn.params = Unmanaged.passUnretained(box).toOpaque()
        guard let s = gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, objective.p) else { return fail }
        defer { gsl_multimin_fdfminimizer_free(s) }
        guard let x0 = gsl_vector_alloc(objective.p) else { return fail }
        defer { gsl_vector_free(x0) }
        for (i, v) in start.enumerated() { gsl_vector_set(x0, i, v) }
        return withExtendedLifetime(box) {
            var converged = false
            var message = "maximum iterations reached"
            var gn = Double.infinity
            var stepSize = 0.1
            for round in 0...restarts {
                if round > 0, let xs = gsl_multimin_fdfminimizer_x(s) { gsl_vector_memcpy(x0, xs) }
                var status = gsl_multimin_fdfminimizer_set(s, &fn, x0, stepSize, 0.1)
                guard status == Int32(GSL_SUCCESS) else {
                    return LocalSolution(theta: start, cost: .infinity, converged: false, message: GSL.message(status))
                }
                var stalled = false
                for _ in 0..<maxIter {
                    status = gsl_multimin_fdfminimizer_iterate(s)
                    gn = gsl_multimin_fdfminimizer_gradient(s).map { gsl_blas_dnrm2_safe($0) } ?? .infinity
                    if gn < gradTol { converged = true; break }
                    if status != Int32(GSL_SUCCESS) { stalled = true; message = GSL.message(status); break }
                }
                if converged || !stalled { break }
                stepSize *= 0.1
            }
            if !converged, gn < stallTol { converged = true }
            var theta = [Double](repeating: 0, count: objective.p)
            if let xs = gsl_multimin_fdfminimizer_x(s) { for i in 0..<objective.p { theta[i] = gsl_vector_get(xs, i) } }
            let f = gsl_multimin_fdfminimizer_minimum(s)
            let ok = converged && f.isFinite && theta.allSatisfy(\.isFinite)
            return LocalSolution(theta: theta, cost: f.isFinite ? f : .infinity, converged: ok,
                                 message: ok ? "" : message + String(format: " (gradient norm %.2g)", gn))
        }
    }

    /// Minimises without derivatives with GSL's Nelder–Mead (`nmsimplex2`), used as an
    /// independent check on the gradient-based fits.
    static func nelderMead(_ objective: Objective, start: [Double], step: Double = 0.5, maxIter: Int = 20000) -> LocalSolution {
        prepare()
        let fail = LocalSolution(theta: start, cost: .infinity, converged: false, message: "gsl allocation failed")
        let box = ObjBox(objective)
        var fn = gsl_multimin_function()
        fn.f = objF
        fn.n = objective.p
        fn.params = Unmanaged.passUnretained(box).toOpaque()
        guard let s = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, objective.p) else { return fail }
        defer { gsl_multimin_fminimizer_free(s) }
        guard let x0 = gsl_vector_alloc(objective.p), let ss = gsl_vector_alloc(objective.p) else { return fail }
        defer { gsl_vector_free(x0); gsl_vector_free(ss) }
        for (i, v) in start.enumerated() { gsl_vector_set(x0, i, v) }
        gsl_vector_set_all(ss, step)
        return withExtendedLifetime(box) {
            var status = gsl_multimin_fminimizer_set(s, &fn, x0, ss)
            guard status == Int32(GSL_SUCCESS) else { return fail }
            var converged = false
            for _ in 0..<maxIter {
                status = gsl_multimin_fminimizer_iterate(s)
                if status != Int32(GSL_SUCCESS) { break }
                if gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-12) == Int32(GSL_SUCCESS) { converged = true; break }
            }
            var theta = [Double](repeating: 0, count: objective.p)
            if let xs = gsl_multimin_fminimizer_x(s) { for i in 0..<objective.p { theta[i] = gsl_vector_get(xs, i) } }
            let f = gsl_multimin_fminimizer_minimum(s)
            return LocalSolution(theta: theta, cost: f, converged: converged, message: converged ? "" : "nelder-mead did not converge")
        }
    }
}

/// Euclidean norm of a gsl_vector (kept in Swift so GSL's BLAS is not needed for it).
func gsl_blas_dnrm2_safe(_ v: UnsafeMutablePointer<gsl_vector>) -> Double {
    var s = 0.0
    let n = v.pointee.size, st = v.pointee.stride
    guard let d = v.pointee.data else { return .infinity }
    for i in 0..<n { s += d[i * st] * d[i * st] }
    return s.squareRoot()
}

// MARK: - Weighted linear least squares (gsl_fit_wlinear)

extension GSL {
    /// Weighted straight-line fit y = c0 + c1·x. Returns nil when GSL reports an error or
    /// the result is not finite.
    static func weightedLine(x: [Double], y: [Double], w: [Double]) -> (c0: Double, c1: Double, chisq: Double)? {
        prepare()
        guard x.count == y.count, x.count == w.count, x.count >= 2 else { return nil }
        var c0 = 0.0, c1 = 0.0, cov00 = 0.0, cov01 = 0.0, cov11 = 0.0, chisq = 0.0
        let status = x.withUnsafeBufferPointer { xs in
            w.withUnsafeBufferPointer { ws in
                y.withUnsafeBufferPointer { ys in
                    gsl_fit_wlinear(xs.baseAddress, 1, ws.baseAddress, 1, ys.baseAddress, 1, x.count,
                                    &c0, &c1, &cov00, &cov01, &cov11, &chisq)
                }
            }
        }
        guard status == Int32(GSL_SUCCESS), c0.isFinite, c1.isFinite else { return nil }
        return (c0, c1, chisq)
    }
}

// MARK: - Linear least squares (gsl_multifit_linear)

/// Ordinary linear least squares through GSL.
enum LinearLeastSquares {
    /// Coefficients c0…c_degree of the least-squares polynomial y = Σ c_k x^k, fitted on x
    /// centred at its mean for conditioning and mapped back; nil when there are fewer points
    /// than coefficients, an input is not finite, or GSL reports an error.
    static func polynomial(x: [Double], y: [Double], degree: Int) -> [Double]? {
        GSL.prepare()
        let n = x.count, p = degree + 1
        guard degree >= 0, n == y.count, n >= p, x.allSatisfy(\.isFinite), y.allSatisfy(\.isFinite) else { return nil }
        let mean = x.reduce(0, +) / Double(n)
        guard let design = gsl_matrix_alloc(n, p), let obs = gsl_vector_alloc(n), let coef = gsl_vector_alloc(p),
              let cov = gsl_matrix_alloc(p, p), let work = gsl_multifit_linear_alloc(n, p) else { return nil }
        defer {
            gsl_matrix_free(design); gsl_vector_free(obs); gsl_vector_free(coef); gsl_matrix_free(cov)
            gsl_multifit_linear_free(work)
        }
        for i in 0..<n {
            var t = 1.0
            for k in 0..<p { gsl_matrix_set(design, i, k, t); t *= x[i] - mean }
            gsl_vector_set(obs, i, y[i])
        }
        var chisq = 0.0
        guard gsl_multifit_linear(design, obs, coef, cov, &chisq, work) == Int32(GSL_SUCCESS) else { return nil }
        // Expand Σ d_k (x − mean)^k into powers of x.
        let d = (0..<p).map { gsl_vector_get(coef, $0) }
        var c = [Double](repeating: 0, count: p)
        for k in 0..<p {
            var binomial = 1.0
            for j in 0...k {
                c[j] += d[k] * binomial * pow(-mean, Double(k - j))
                binomial = binomial * Double(k - j) / Double(j + 1)
            }
        }
        return c.allSatisfy(\.isFinite) ? c : nil
    }
}

// MARK: - Robust linear regression (gsl_multifit_robust)

extension GSL {
    /// Robust linear regression y ≈ X c with Huber's ρ (`gsl_multifit_robust` with
    /// `gsl_multifit_robust_huber`, GSL's default tuning 1.345 on residuals scaled by a
    /// robust σ; iteratively reweighted least squares from the ordinary least-squares
    /// solution). `design` is row-major, n × p; there is no implicit intercept column. Returns
    /// the coefficients, or the reason there are none (fewer rows than columns, non-finite
    /// input, GSL's error, no convergence within `maxIter` reweightings, a non-finite result).
    ///
    /// Data an exact linear model fits leave a robust σ of 0 and nothing to reweight; GSL's
    /// result is then the least-squares solution, which is exact.
    static func robustLinear(design: [Double], y: [Double], p: Int, maxIter: Int = 500) -> Result<[Double], LawFitFailure> {
        prepare()
        let n = y.count
        guard p > 0, n >= p, design.count == n * p else {
            return .failure(LawFitFailure("fewer rows (\(n)) than coefficients (\(p))"))
        }
        guard design.allSatisfy(\.isFinite), y.allSatisfy(\.isFinite) else { return .failure(LawFitFailure("non-finite input")) }
        guard let huber = gsl_multifit_robust_huber, let w = gsl_multifit_robust_alloc(huber, n, p) else {
            return .failure(LawFitFailure("gsl allocation failed"))
        }
        defer { gsl_multifit_robust_free(w) }
        guard let x = gsl_matrix_alloc(n, p), let obs = gsl_vector_alloc(n), let c = gsl_vector_alloc(p),
              let cov = gsl_matrix_alloc(p, p) else { return .failure(LawFitFailure("gsl allocation failed")) }
        defer { gsl_matrix_free(x); gsl_vector_free(obs); gsl_vector_free(c); gsl_matrix_free(cov) }
        for i in 0..<n {
            for k in 0..<p { gsl_matrix_set(x, i, k, design[i * p + k]) }
            gsl_vector_set(obs, i, y[i])
        }
        _ = gsl_multifit_robust_maxiter(maxIter, w)
        let status = gsl_multifit_robust(x, obs, c, cov, w)
        guard status == Int32(GSL_SUCCESS) else {
            return .failure(LawFitFailure(status == Int32(GSL_EMAXITER)
                ? "robust regression did not converge in \(maxIter) reweightings" : "gsl_multifit_robust: " + message(status)))
        }
        let coefficients = (0..<p).map { gsl_vector_get(c, $0) }
        guard coefficients.allSatisfy(\.isFinite) else { return .failure(LawFitFailure("robust regression: non-finite coefficients")) }
        return .success(coefficients)
    }
}
