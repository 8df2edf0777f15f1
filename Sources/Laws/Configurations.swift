import Foundation
import ResultSchema

/// One allocation a cell was run with: base parameters N, rollouts per problem n and
/// problems per batch Bp. Ordered by N, then n, then Bp.
public struct Configuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var parameters: Double
    public var rolloutsPerProblem: Double
    public var problemsPerBatch: Double

    /// Creates a configuration.
    public init(parameters: Double, rolloutsPerProblem: Double, problemsPerBatch: Double) {
        self.parameters = parameters; self.rolloutsPerProblem = rolloutsPerProblem; self.problemsPerBatch = problemsPerBatch
    }

    /// The configuration a cell was run with.
    public init(of cell: Cell) {
        self.init(parameters: cell.parameters, rolloutsPerProblem: Double(cell.rolloutsPerProblem),
                  problemsPerBatch: Double(cell.problemsPerBatch))
    }

    /// The coordinate along one dimension.
    public subscript(_ dim: ArmDimension) -> Double {
        switch dim {
        case .rollouts: rolloutsPerProblem
        case .parameters: parameters
        case .batch: problemsPerBatch
        }
    }

    /// Whether `other` has the same coordinates as this one along every dimension but `dim`.
    public func sharesCoordinates(with other: Configuration, apartFrom dim: ArmDimension) -> Bool {
        ArmDimension.allCases.allSatisfy { $0 == dim || self[$0] == other[$0] }
    }

    /// "N=25472,n=8,Bp=8": the label inside the quantity `score[…]` of its law.
    public var description: String {
        [ArmDimension.parameters, .rollouts, .batch].map { "\($0.rawValue)=\(fmt(self[$0]))" }.joined(separator: ",")
    }

    public static func < (a: Configuration, b: Configuration) -> Bool {
        (a.parameters, a.rolloutsPerProblem, a.problemsPerBatch) < (b.parameters, b.rolloutsPerProblem, b.problemsPerBatch)
    }
}

/// A fitted score law that competes in an upper envelope, but only up to the largest compute
/// its own cells reached (an envelope never lets a law compete beyond its data).
public protocol CompetingLaw: Sendable {
    var fit: LawFit { get }
    /// The largest compute the law's cells reached.
    var maxCompute: Double { get }
}

extension CompetingLaw {
    /// The law's prediction at budget `c` when it competes there (its fit is ok, c is at most
    /// its `maxCompute` times 1 + 1e-9, and the prediction is finite), else nil.
    public func competes(at c: Double) -> Double? {
        guard fit.isOK, c <= maxCompute * (1 + 1e-9) else { return nil }
        let v = fit.predict(c)
        return v.isFinite ? v : nil
    }
}

extension ArmLaw: CompetingLaw {}

/// One configuration's fitted learning curve (ScaleRL form over its cells' pooled curve points).
public struct ConfigurationLaw: CompetingLaw {
    public var configuration: Configuration
    public var fit: LawFit
    public var maxCompute: Double
    /// Creates a configuration law.
    public init(configuration: Configuration, fit: LawFit, maxCompute: Double) {
        self.configuration = configuration; self.fit = fit; self.maxCompute = maxCompute
    }
}

/// Where an optimum along one dimension lies among the values swept.
public enum OptimumStatus: String, Sendable, CaseIterable {
    /// The discrete argmax lies strictly inside the competing values.
    case ok = "ok"
    /// The discrete argmax is the smallest or largest of at least two competing values: the
    /// true optimum may lie outside the swept range.
    case atEdge = "at edge of grid"
    /// Only one value of the dimension competes: nothing was compared.
    case singleValue = "single value"
}

/// The optimum along one dimension at one budget, within the slice of configurations that
/// share the joint argmax's other two coordinates.
public struct DimensionOptimum: Sendable, Hashable {
    /// The joint argmax's coordinate along the dimension.
    public var discrete: Double
    /// 2^vertex of the least-squares quadratic of predicted score against log2(value) over the
    /// slice, when at least three values compete, the quadratic is concave and its vertex lies
    /// within the slice's range; otherwise `discrete`.
    public var continuous: Double
    public var status: OptimumStatus
    /// Distinct values of the dimension competing in the slice.
    public var competing: Int

    /// The optimum of a slice: `discrete` is the argmax's coordinate, `slice` the competing
    /// configurations' (value, predicted score), the argmax included.
    public init(discrete: Double, slice: [(value: Double, score: Double)]) {
        self.discrete = discrete
        let values = slice.map(\.value)
        competing = Set(values).count
        let lo = values.min() ?? discrete, hi = values.max() ?? discrete
        status = competing < 2 ? .singleValue : (discrete == lo || discrete == hi ? .atEdge : .ok)
        continuous = discrete
        guard competing >= 3, lo > 0,
              let q = LinearLeastSquares.polynomial(x: values.map(log2), y: slice.map(\.score), degree: 2) else { return }
        let (b, a) = (q[1], q[2])
        guard a < 0 else { return }
        let vertex = -b / (2 * a)
        if vertex >= log2(lo), vertex <= log2(hi) { continuous = exp2(vertex) }
    }
}

/// The joint optimum at one budget: the argmax of the configuration laws' upper envelope, and
/// per dimension the discrete and continuous optimum with its status.
public struct JointOptimum: Sendable {
    public var budget: Double
    /// The envelope value (NaN when no configuration competes).
    public var score: Double
    /// Index of the argmax configuration law (nil when none competes).
    public var index: Int?
    /// The argmax configuration (nil when none competes).
    public var configuration: Configuration?
    /// Per dimension optimum (empty when none competes).
    public var dimensions: [ArmDimension: DimensionOptimum]
}

extension Frontier {
    /// The best competing law at each budget (`CompetingLaw.competes`): its index and value,
    /// nil where none competes. Ties go to the earlier law.
    public static func upperEnvelope<L: CompetingLaw>(_ laws: [L], at budgets: [Double]) -> [(index: Int, score: Double)?] {
        budgets.map { c in
            var best: (index: Int, score: Double)?
            for (i, l) in laws.enumerated() {
                if let v = l.competes(at: c), v > best?.score ?? -.infinity { best = (i, v) }
            }
            return best
        }
    }

    /// The upper envelope of configuration laws at each budget, its argmax configuration and,
    /// per dimension, the optimum within the slice of competing configurations that share the
    /// argmax's other two coordinates (`DimensionOptimum`).
    public static func jointEnvelope(_ laws: [ConfigurationLaw], budgets: [Double]) -> [JointOptimum] {
        zip(budgets, upperEnvelope(laws, at: budgets)).map { c, best in
            guard let best else { return JointOptimum(budget: c, score: .nan, index: nil, configuration: nil, dimensions: [:]) }
            let g = laws[best.index].configuration
            var dims: [ArmDimension: DimensionOptimum] = [:]
            for d in ArmDimension.allCases {
                let slice = laws.filter { $0.configuration.sharesCoordinates(with: g, apartFrom: d) }
                    .compactMap { l in l.competes(at: c).map { (value: l.configuration[d], score: $0) } }
                dims[d] = DimensionOptimum(discrete: g[d], slice: slice)
            }
            return JointOptimum(budget: c, score: best.score, index: best.index, configuration: g, dimensions: dims)
        }
    }
}

extension ArmDimension {
    /// The allocation law of this dimension's optimum: `n_star`, `N_star` or `Bp_star`.
    public var starQuantity: String { rawValue + "_star" }

    /// The dimension named by a `--within` key: `n`, `N`, or `bp` in any case.
    public init?(key: String) {
        if key == "n" { self = .rollouts } else if key == "N" { self = .parameters } else if key.lowercased() == "bp" {
            self = .batch
        } else { return nil }
    }

    /// "unbalanced: arms pool different Bp values" when the arms of this dimension (`arms`:
    /// each arm's cells) do not all cover the same set of values of another dimension (each
    /// such dimension is named), or, when each other dimension is covered alike, not the same
    /// combinations of them; nil when balanced or with fewer than two arms.
    func unbalancedNote(arms: [[Cell]]) -> String? {
        guard arms.count >= 2 else { return nil }
        let others = ArmDimension.allCases.filter { $0 != self }
        func covers<T: Hashable>(_ key: (Cell) -> T) -> Bool { Set(arms.map { Set($0.map(key)) }).count == 1 }
        let unbalanced = others.filter { d in !covers { d.value(of: $0) } }
        if !unbalanced.isEmpty {
            return "unbalanced: arms pool different " + unbalanced.map(\.rawValue).joined(separator: " and ") + " values"
        }
        if !covers({ c in others.map { $0.value(of: c) } }) {
            return "unbalanced: arms pool different " + others.map(\.rawValue).joined(separator: "/") + " combinations"
        }
        return nil
    }
}

/// One stratum of a grid: fixed values of some allocation dimensions and settings
/// (`rlscale fit --within`).
public struct Stratum: Sendable, Hashable, CustomStringConvertible {
    /// The fixed value of each constrained dimension.
    public var values: [ArmDimension: Double]
    /// The fixed value of each constrained setting (`CellSetting` key), as spelled.
    public var settings: [String: String] = [:]

    /// Creates a stratum.
    public init(_ values: [ArmDimension: Double], settings: [String: String] = [:]) { self.values = values; self.settings = settings }

    /// Parses `KEY=VALUE[,KEY=VALUE]` with keys `n`, `bp` (any case) and `N` (positive numbers:
    /// `bp=8`, `n=4,bp=8`, `N=25472`) or any other setting of `CellSetting.all` (`lag=4`,
    /// `lr=5e-5`, `curriculum=easy_to_hard`; numbers compare by value). A malformed pair, an
    /// unknown key, a dimension's value that is not a positive number, or a key given twice is
    /// an error naming it.
    public init(parsing text: String) throws(LawError) {
        var values: [ArmDimension: Double] = [:], settings: [String: String] = [:]
        let keys = "n, bp, N or a setting: " + CellSetting.all.map(\.key).filter { !["n", "bp"].contains($0) }.joined(separator: ", ")
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[0].isEmpty else { throw .badRequest("'\(part)' is not KEY=VALUE (keys: \(keys))") }
            if let dim = ArmDimension(key: kv[0]) {
                guard let v = Double(kv[1]), v.isFinite, v > 0 else {
                    throw .badRequest("value '\(kv[1])' of \(kv[0]) is not a positive number")
                }
                guard values[dim] == nil else { throw .badRequest("key '\(kv[0])' given twice") }
                values[dim] = v
            } else {
                guard CellSetting.named(kv[0]) != nil else { throw .badRequest("unknown key '\(kv[0])' (keys: \(keys))") }
                guard !kv[1].isEmpty else { throw .badRequest("key '\(kv[0])' has no value") }
                guard settings[kv[0]] == nil else { throw .badRequest("key '\(kv[0])' given twice") }
                settings[kv[0]] = kv[1]
            }
        }
        self.values = values
        self.settings = settings
    }

    /// Whether the cell lies in the stratum.
    public func contains(_ cell: Cell) -> Bool {
        values.allSatisfy { $0.key.value(of: cell) == $0.value }
            && settings.allSatisfy { k, v in cell.settings[k].map { Stratum.same($0, v) } ?? false }
    }

    /// Whether two spellings name the same value: equal as numbers when both are, else as text.
    static func same(_ a: String, _ b: String) -> Bool {
        if let x = Double(a), let y = Double(b) { return x == y }
        return a == b
    }

    /// "n=4,Bp=8,lag=4" (dimensions in `ArmDimension` order, then settings by key).
    public var description: String {
        (ArmDimension.allCases.compactMap { d in values[d].map { "\(d.rawValue)=\(fmt($0))" } }
            + settings.keys.sorted().map { "\($0)=\(settings[$0] ?? "")" }).joined(separator: ",")
    }
}

extension CellStore {
    /// The store with only the cells in `stratum` (skipped cells are kept as they are).
    public func within(_ stratum: Stratum) -> CellStore {
        var s = self
        s.cells = cells.filter(stratum.contains)
        s.within = stratum
        return s
    }
}
