import Foundation

/// A minimal hand-written SVG line/scatter plot with log or linear axes, bands and a legend.
public struct SVGPlot: Sendable {
    /// How a series is drawn.
    public enum Style: Sendable { case line, dashed, markers, step }

    /// One series: points, an optional band (x, low, high) drawn under it, a style.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var band: [(x: Double, low: Double, high: Double)]
        public var style: Style
        /// Palette index (series of one arm share it).
        public var color: Int
        /// Standard error of each point (markers only): drawn as a bar of ±1 SE; empty, or
        /// a non-finite entry, for none.
        public var errors: [Double]
        /// Creates a series.
        public init(name: String, points: [(x: Double, y: Double)], band: [(x: Double, low: Double, high: Double)] = [],
                    style: Style, color: Int, errors: [Double] = []) {
            self.name = name; self.points = points; self.band = band; self.style = style; self.color = color; self.errors = errors
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xLog: Bool
    public var yLog: Bool
    public var series: [Series]

    /// Creates a plot.
    public init(title: String, xLabel: String, yLabel: String, xLog: Bool, yLog: Bool, series: [Series] = []) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.xLog = xLog; self.yLog = yLog; self.series = series
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    static let width = 760.0, height = 480.0
    static let left = 80.0, right = 200.0, top = 40.0, bottom = 60.0

    private func usable(_ x: Double, log: Bool) -> Bool { x.isFinite && (!log || x > 0) }

    /// The SVG document.
    public func render() -> String {
        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for p in s.points where usable(p.x, log: xLog) && usable(p.y, log: yLog) { xs.append(p.x); ys.append(p.y) }
            for b in s.band where usable(b.x, log: xLog) {
                if usable(b.low, log: yLog) { ys.append(b.low) }
                if usable(b.high, log: yLog) { ys.append(b.high) }
            }
        }
        let (x0, x1) = Self.range(xs, log: xLog), (y0, y1) = Self.range(ys, log: yLog)
        let pw = Self.width - Self.left - Self.right, ph = Self.height - Self.top - Self.bottom
        func tx(_ x: Double) -> Double {
            let t = xLog ? (log10(x) - log10(x0)) / (log10(x1) - log10(x0)) : (x - x0) / (x1 - x0)
            return Self.left + t * pw
        }
        func ty(_ y: Double) -> Double {
            let t = yLog ? (log10(y) - log10(y0)) / (log10(y1) - log10(y0)) : (y - y0) / (y1 - y0)
            return Self.top + (1 - t) * ph
        }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(Self.height))" \
        viewBox="0 0 \(Int(Self.width)) \(Int(Self.height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Self.left + pw / 2)" y="22" text-anchor="middle" font-size="15">\(Self.escape(title))</text>

        """
        // Grid and ticks.
        for t in Self.ticks(x0, x1, log: xLog) {
            let px = f(tx(t))
            s += "<line x1=\"\(px)\" y1=\"\(f(Self.top))\" x2=\"\(px)\" y2=\"\(f(Self.top + ph))\" stroke=\"#e0e0e0\"/>\n"
            s += "<text x=\"\(px)\" y=\"\(f(Self.top + ph + 16))\" text-anchor=\"middle\">\(Self.label(t, log: xLog))</text>\n"
        }
        for t in Self.ticks(y0, y1, log: yLog) {
            let py = f(ty(t))
            s += "<line x1=\"\(f(Self.left))\" y1=\"\(py)\" x2=\"\(f(Self.left + pw))\" y2=\"\(py)\" stroke=\"#e0e0e0\"/>\n"
            s += "<text x=\"\(f(Self.left - 6))\" y=\"\(py)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(Self.label(t, log: yLog))</text>\n"
        }
        s += "<rect x=\"\(f(Self.left))\" y=\"\(f(Self.top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f(Self.left + pw / 2))\" y=\"\(f(Self.height - 16))\" text-anchor=\"middle\">\(Self.escape(xLabel))\(xLog ? " (log scale)" : "")</text>\n"
        s += "<text transform=\"translate(18,\(f(Self.top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))\(yLog ? " (log scale)" : "")</text>\n"
        // Series, bands first.
        for se in series where !se.band.isEmpty {
            let b = se.band.filter { usable($0.x, log: xLog) && usable($0.low, log: yLog) && usable($0.high, log: yLog) }
            guard b.count >= 2 else { continue }
            let pts = b.map { "\(f(tx($0.x))),\(f(ty(min(max($0.high, y0), y1))))" } + b.reversed().map { "\(f(tx($0.x))),\(f(ty(min(max($0.low, y0), y1))))" }
            s += "<polygon points=\"\(pts.joined(separator: " "))\" fill=\"\(Self.palette[se.color % Self.palette.count])\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
        }
        for se in series {
            let color = Self.palette[se.color % Self.palette.count]
            let p = se.points.filter { usable($0.x, log: xLog) && usable($0.y, log: yLog) }
            switch se.style {
            case .markers:
                for (i, q) in se.points.enumerated() where usable(q.x, log: xLog) && usable(q.y, log: yLog) {
                    if i < se.errors.count, se.errors[i].isFinite, se.errors[i] > 0 {
                        let lo = q.y - se.errors[i], hi = q.y + se.errors[i]
                        let y0p = ty(usable(lo, log: yLog) ? min(max(lo, y0), y1) : y0), y1p = ty(min(max(hi, y0), y1))
                        s += "<line x1=\"\(f(tx(q.x)))\" y1=\"\(f(y0p))\" x2=\"\(f(tx(q.x)))\" y2=\"\(f(y1p))\" stroke=\"\(color)\" stroke-opacity=\"0.5\"/>\n"
                    }
                    s += "<circle cx=\"\(f(tx(q.x)))\" cy=\"\(f(ty(q.y)))\" r=\"3\" fill=\"\(color)\" fill-opacity=\"0.7\"/>\n"
                }
            case .line, .dashed, .step:
                guard p.count >= 2 else {
                    for q in p { s += "<circle cx=\"\(f(tx(q.x)))\" cy=\"\(f(ty(q.y)))\" r=\"3\" fill=\"\(color)\"/>\n" }
                    continue
                }
                var coords: [String] = []
                for (i, q) in p.enumerated() {
                    if se.style == .step, i > 0 { coords.append("\(f(tx(q.x))),\(f(ty(p[i - 1].y)))") }
                    coords.append("\(f(tx(q.x))),\(f(ty(q.y)))")
                }
                let dash = se.style == .dashed ? " stroke-dasharray=\"6,4\"" : ""
                s += "<polyline points=\"\(coords.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            }
        }
        // Legend.
        var ly = Self.top + 8
        for se in series {
            let color = Self.palette[se.color % Self.palette.count]
            let lx = Self.left + pw + 12
            switch se.style {
            case .markers: s += "<circle cx=\"\(f(lx + 10))\" cy=\"\(f(ly))\" r=\"3\" fill=\"\(color)\"/>\n"
            default:
                let dash = se.style == .dashed ? " stroke-dasharray=\"6,4\"" : ""
                s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 20))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            }
            s += "<text x=\"\(f(lx + 26))\" y=\"\(f(ly))\" dominant-baseline=\"middle\" font-size=\"11\">\(Self.escape(se.name))</text>\n"
            ly += 16
        }
        return s + "</svg>\n"
    }

    private func f(_ x: Double) -> String { String(format: "%.1f", x) }

    static func range(_ v: [Double], log: Bool) -> (Double, Double) {
        guard var lo = v.min(), var hi = v.max() else { return log ? (1, 10) : (0, 1) }
        if log {
            if hi <= lo * 1.0001 { lo /= 2; hi *= 2 }
            let pad = pow(hi / lo, 0.04)
            return (lo / pad, hi * pad)
        }
        if hi - lo <= 1e-12 * max(1, abs(hi)) { lo -= 0.5 * max(1e-3, abs(lo)); hi += 0.5 * max(1e-3, abs(hi)) }
        let pad = 0.05 * (hi - lo)
        return (lo - pad, hi + pad)
    }

    static func ticks(_ lo: Double, _ hi: Double, log: Bool) -> [Double] {
        if log {
            let a = Int(floor(log10(lo))), b = Int(ceil(log10(hi)))
            var t: [Double] = []
            let mults: [Double] = b - a <= 1 ? [1, 2, 5] : [1]
            let stride = max(1, (b - a) / 8)
            for e in Swift.stride(from: a, through: b, by: stride) { for m in mults { t.append(m * pow(10, Double(e))) } }
            return t.filter { $0 >= lo && $0 <= hi }
        }
        let raw = (hi - lo) / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t: [Double] = []
        var v = ceil(lo / step) * step
        while v <= hi + 1e-12 * step { t.append(abs(v) < 1e-12 * step ? 0 : v); v += step }
        return t
    }

    static func label(_ v: Double, log: Bool) -> String {
        if log || abs(v) >= 1e5 || (abs(v) < 1e-3 && v != 0) {
            let e = Int(floor(log10(abs(v)) + 1e-9))
            let m = v / pow(10, Double(e))
            return abs(m - 1) < 1e-9 ? "1e\(e)" : String(format: "%.0fe%d", m, e)
        }
        return String(format: "%g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
