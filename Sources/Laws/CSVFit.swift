import Foundation

/// `fit-csv`: any CSV through the same engine.
public enum CSVFit {
    /// What to fit.
    public struct Request: Sendable {
        public var form: LawForm
        /// Input columns: one, or two (N, D) for Chinchilla.
        public var x: [String]
        public var y: String
        /// Optional weight column (power_law).
        public var weights: String?
        public var huberDelta: Double
        /// ScaleRL R0; nil = the mean y of rows with x = 0 if any, else fitted.
        public var r0: Double?
        public var bootstrap: BootstrapOptions

        /// Creates a request.
        public init(form: LawForm, x: [String], y: String, weights: String? = nil, huberDelta: Double = 1e-3, r0: Double? = nil,
                    bootstrap: BootstrapOptions = BootstrapOptions()) {
            self.form = form; self.x = x; self.y = y; self.weights = weights; self.huberDelta = huberDelta
            self.r0 = r0; self.bootstrap = bootstrap
        }
    }

    /// Parses a form name (`scalerl`, `power_offset`, `chinchilla`, `log2_sigmoid`, `power_law`,
    /// or the over-optimisation laws `gao_rl`, `gao_bon` with x = d = √KL and y = gold gain).
    public static func form(named s: String) throws(LawError) -> LawForm {
        guard let f = LawForm(rawValue: s.lowercased()), LawForm.fitted.contains(f) else {
            throw .badRequest("unknown form '\(s)' (known: \(LawForm.fitted.map(\.rawValue).joined(separator: ", ")))")
        }
        return f
    }

    /// Fits the request to the table, bootstrapping over rows; throws only for a malformed
    /// request (missing column, wrong number of x columns, unparsable numbers).
    public static func run(_ table: CSVTable, _ r: Request) throws(LawError) -> LawEstimate {
        guard r.x.count == r.form.inputCount else {
            throw .badRequest("form \(r.form.rawValue) takes \(r.form.inputCount) x column(s), got \(r.x.count)")
        }
        var x = try table.numbers(r.x[0])
        var x2 = r.form.inputCount == 2 ? try table.numbers(r.x[1]) : nil
        var y = try table.numbers(r.y)
        var w = try r.weights.map { (c: String) throws(LawError) -> [Double] in try table.numbers(c) }
        var options = FitOptions(r0: r.r0, huberDelta: r.huberDelta)
        if r.form == .scaleRL {
            let zero = x.indices.filter { x[$0] == 0 }
            if options.r0 == nil, !zero.isEmpty { options.r0 = zero.map { y[$0] }.reduce(0, +) / Double(zero.count) }
            let keep = x.indices.filter { x[$0] != 0 }
            x = keep.map { x[$0] }; y = keep.map { y[$0] }; x2 = nil; w = w.map { ww in keep.map { ww[$0] } }
        }
        return Laws.estimate(r.form, LawData(x: x, x2: x2, y: y, weights: w), options: options, bootstrap: r.bootstrap)
    }

    /// A readable table: parameter, value, CI, then the fit statistics and status.
    public static func text(_ e: LawEstimate) -> String {
        let f = e.fit
        var s = "form: \(f.form.rawValue)   \(f.form.formula)\n"
        s += "parameter        value       ci_low      ci_high\n"
        for (i, n) in f.form.parameterNames.enumerated() {
            let iv = i < e.intervals.count ? e.intervals[i] : .unknown
            s += n.padding(toLength: 10, withPad: " ", startingAt: 0)
                + [f.values[i], iv.low, iv.high].map { String(format: " %12.6g", $0) }.joined() + (f.fixed.contains(n) ? "  (fixed)" : "") + "\n"
        }
        s += "n_points: \(f.nPoints)   r2 (\(f.form.fitSpace)): \(fmt(f.r2))   rmse: \(fmt(f.rmse))   holdout_error: \(fmt(e.holdoutError)) (\(e.holdoutMetric.rawValue))\n"
        s += "status: \(e.status)\n"
        return s
    }

    /// The same as one JSON object (NaN as null).
    public static func json(_ e: LawEstimate) -> String {
        func num(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        let f = e.fit
        var params: [[String: Any]] = []
        for (i, n) in f.form.parameterNames.enumerated() {
            let iv = i < e.intervals.count ? e.intervals[i] : .unknown
            params.append(["name": n, "value": num(f.values[i]), "ci_low": num(iv.low), "ci_high": num(iv.high), "fixed": f.fixed.contains(n)])
        }
        let obj: [String: Any] = [
            "form": f.form.rawValue, "formula": f.form.formula, "parameters": params, "n_points": f.nPoints,
            "r2": num(f.r2), "rmse": num(f.rmse), "holdout_error": num(e.holdoutError),
            "holdout_metric": e.holdoutMetric.rawValue, "status": e.status,
        ]
        guard let d = try? JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]),
              let s = String(data: d, encoding: .utf8) else { return "{}" }
        return s
    }
}
