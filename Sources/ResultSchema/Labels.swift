import Foundation
import Tasks

// The canonical labels the law fitter groups cells by. They are derived from the cell
// document only, so a reader and the writer always agree on them.

extension TaskMixture {
    /// The mixture as the law fitter labels it: components sorted by family name, each
    /// `family:weight`, joined by commas ("sort:1", "mul:1,sort:1", "mul:0.5,sort:1").
    /// Integral weights print as integers, others with up to six significant digits.
    /// Sorted here rather than trusted to be sorted, since a document may list them in
    /// any order.
    public var canonicalLabel: String {
        components.sorted { $0.family < $1.family }
            .map { "\($0.family):\(compactNumber($0.weight))" }
            .joined(separator: ",")
    }
}

/// Compact number formatting for labels and tables: integral values as integers, others
/// with up to six significant digits (the law fitter's tables use it too).
public func compactNumber(_ x: Double) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return String(format: "%.6g", x)
}

extension CellConfig {
    /// How a training pool shows in a law group's label: " [easy D=256]" (bucket, then
    /// size D), " [D=256]" without a bucket, empty for fresh problems; so that cells on
    /// different pools form different groups.
    public var poolLabel: String {
        guard let d = poolSize else { return "" }
        return " [" + (trainBucket.map { $0.rawValue + " " } ?? "") + "D=\(d)]"
    }

    /// The task-mix label of the law group this cell belongs to: the canonical mixture and
    /// the pool label, e.g. "mul:1,sort:1" or "sort:1 [easy D=256]".
    public var lawGroupLabel: String { tasks.canonicalLabel + poolLabel }
}

/// A number as a knob value is spelled (`ema:0.05`, `jsd:0.5`, `distill = 0.1`): integral
/// values as integers, others in Swift's shortest form that reads back to the same Double,
/// so that a spelling round-trips exactly and two different values never share one.
public func knobNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return "\(x)"
}
