import Foundation
import ResultSchema

/// Independent runs among a store's cells.
///
/// The learning rate is constant and a cell's randomness flows only from its seed, so a cell
/// whose budget is smaller than that of a cell with the same method, task mixture, settings,
/// allocation and seed is the first part of the same run: its learning curve is a prefix of
/// the larger cell's. Counting both would draw one run twice in the bootstrap. A schedule that
/// reads the budget (`Cell.scheduleDependsOnBudget`) makes the cells different runs.
public enum RunMerge {
    /// One run's identity: everything but the budget (numerics version included: two versions
    /// compute different runs).
    struct Key: Hashable {
        var method: String
        var taskMix: String
        var settings: [String: String]
        var configuration: Configuration
        var seed: UInt64
        var numerics: Int?
    }

    /// The cells with every prefix cell folded into the largest-budget cell of its run
    /// (`Cell.mergedPrefixes` lists the folded ids), in the input order of the kept cells.
    /// Cells whose schedule reads the budget, or whose budget is unknown, are their own runs.
    public static func merge(_ cells: [Cell]) -> [Cell] {
        var longest: [Key: Int] = [:]
        for (i, c) in cells.enumerated() where !c.scheduleDependsOnBudget && c.budget.isFinite {
            let k = key(c)
            if let j = longest[k] {
                let keep = cells[j]
                if (c.budget, c.id) > (keep.budget, keep.id) { longest[k] = i }
            } else {
                longest[k] = i
            }
        }
        var absorbed: [Int: [String]] = [:]
        var dropped = Set<Int>()
        for (i, c) in cells.enumerated() where !c.scheduleDependsOnBudget && c.budget.isFinite {
            guard let j = longest[key(c)], j != i else { continue }
            absorbed[j, default: []].append(c.id)
            dropped.insert(i)
        }
        return cells.indices.filter { !dropped.contains($0) }.map { i in
            var c = cells[i]
            c.mergedPrefixes = (absorbed[i] ?? []).sorted()
            return c
        }
    }

    static func key(_ c: Cell) -> Key {
        Key(method: c.method, taskMix: c.taskMix, settings: c.settings.filter { $0.key != "budget" }, configuration: Configuration(of: c),
            seed: c.seed, numerics: c.numerics)
    }
}

/// How a store's runs split into law groups: by method label, task mixture and every
/// setting (`CellSetting` role `setting`) whose value differs between runs, except the ones
/// pooled on purpose (`rlscale fit --pool KEY`) and the ones that follow the allocation.
public struct LawGrouping: Sendable {
    /// Settings that vary among the runs and separate groups, in registry order.
    public var varying: [String]
    /// Settings that vary but were pooled on request.
    public var pooled: [String]
    /// Settings that vary with the allocation: the training settings a grid may write as an
    /// axis (`lr`, `lag`, `curriculum`) that take one value per configuration (N, n, Bp)
    /// within each partition of the runs by method, task mixture and the other varying
    /// settings, and more than one value in some partition, as when a grid zips the learning
    /// rate with n (IsoCompute scales it with √(Bp·n)). They are part of each arm, not
    /// separate experiments, so they do not separate groups (the allocation laws compare the
    /// arms as run); the report names them. Measurement settings (`eval_*`, difficulty
    /// ranges) and a runs table's own columns never qualify: a store whose arms were
    /// measured differently is split, not compared.
    public var followingAllocation: [String]

    /// The grouping of `cells`, pooling the settings in `pool`. The settings are the registry's
    /// (`CellSetting` role `setting`) and any setting a runs table brings that the registry
    /// does not know (an external trainer's `temperature`), in that order.
    public init(_ cells: [Cell], pool: Set<String> = []) {
        let differ = LawGrouping.candidates(cells).filter { k in Set(cells.map { $0.settings[k] ?? "" }).count > 1 }
        let open = differ.filter { !pool.contains($0) }
        let following = open.filter { k in
            CellSetting.named(k)?.grid.contains(.axis) == true
                && LawGrouping.followsAllocation(k, cells, partitionedBy: open.filter { $0 != k })
        }
        pooled = differ.filter { pool.contains($0) }
        followingAllocation = following
        varying = open.filter { !following.contains($0) }
    }

    /// Whether setting `key` takes one value per configuration (N, n, Bp) within every
    /// partition of `cells` by method, task mixture and the settings `others`, and more than
    /// one value within at least one partition.
    static func followsAllocation(_ key: String, _ cells: [Cell], partitionedBy others: [String]) -> Bool {
        struct Slot: Hashable { var partition: [String]; var configuration: Configuration }
        var seen: [Slot: String] = [:], values: [[String]: Set<String>] = [:]
        for c in cells {
            let partition = [c.method, c.taskMix] + others.map { c.settings[$0] ?? "" }
            let v = c.settings[key] ?? "", slot = Slot(partition: partition, configuration: Configuration(of: c))
            if let earlier = seen[slot], earlier != v { return false }
            seen[slot] = v
            values[partition, default: []].insert(v)
        }
        return values.values.contains { $0.count > 1 }
    }

    /// The settings that may separate groups of `cells`: the registry's grouping keys, then
    /// any key of theirs the registry does not know (a runs table's own columns), sorted.
    public static func candidates(_ cells: [Cell]) -> [String] {
        CellSetting.groupingKeys + Set(cells.flatMap(\.settings.keys)).filter { CellSetting.named($0) == nil }.sorted()
    }

    /// The varying settings of `c` as (key, value) pairs, in registry order.
    public func settings(of c: Cell) -> [(key: String, value: String)] {
        varying.map { (key: $0, value: c.settings[$0] ?? "") }
    }

    /// The group key of a cell.
    func key(_ c: Cell) -> String {
        ([c.method, c.taskMix] + settings(of: c).map { "\($0.key)=\($0.value)" }).joined(separator: "\u{1}")
    }
}

/// "lag=4, lr=5e-05": the varying settings of a law group as its label shows them (empty
/// when none varies).
public func settingsLabel(_ settings: [(key: String, value: String)]) -> String {
    settings.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
}
