import Foundation

/// What a cell setting is to the law fitter.
public enum SettingRole: Sendable, Hashable {
    /// An allocation dimension (n, Bp; N comes from the base): laws are fitted across it.
    case allocation
    /// The compute budget: a run's learning curve already holds every smaller budget.
    case budget
    /// The seed: independent runs of one configuration.
    case seed
    /// The method and its knobs: shown in the law group's method label (`methodLabel`).
    case method
    /// The training mixture and pool: shown in the law group's task label (`lawGroupLabel`).
    case taskMix
    /// Anything else (learning rate, lag, curriculum, difficulty range, evaluation): cells
    /// that differ in it belong to different law groups, named by it (except an axis setting
    /// that takes one value per configuration: `LawGrouping.followingAllocation`).
    case setting
}

/// Where a grid file may set a setting.
public struct GridPlace: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// A list in `[axes]`: cells are made for each value.
    public static let axis = GridPlace(rawValue: 1)
    /// One value in `[cell]`, shared by every cell.
    public static let cell = GridPlace(rawValue: 2)
}

/// One setting of a cell, as grids spell it: the single table of names that grid files
/// (the keys `[axes]` and `[cell]` accept), `rlscale train` (its option `--key`, with `_` as
/// `-`: a test checks every one exists), the law fitter (grouping, `--within`, `--pool`) and
/// the runs table read a cell's settings by. Adding a setting touches this table and the code
/// that reads its value.
public struct CellSetting: Sendable {
    /// The grid key (`lr`, `lag`, `max_difficulty`, a method knob's name).
    public let key: String
    public let role: SettingRole
    /// Where a grid file sets it.
    public let grid: GridPlace
    /// The setting's value in `config`, spelled as a grid file would ("5e-05", "easy_to_hard",
    /// "base" for a difficulty range left to the base).
    public let value: @Sendable (CellConfig) -> String

    /// Creates a registry entry.
    init(key: String, role: SettingRole, grid: GridPlace, value: @escaping @Sendable (CellConfig) -> String) {
        self.key = key; self.role = role; self.grid = grid; self.value = value
    }

    /// `rlscale train`'s option for the setting: `--` and the key with `-` for `_`.
    public var option: String { "--" + key.replacingOccurrences(of: "_", with: "-") }

    /// Every setting of `CellConfig`, in the order the tables list them.
    public static let all: [CellSetting] = {
        var s: [CellSetting] = [
            CellSetting(key: "method", role: .method, grid: .axis) { $0.method },
            CellSetting(key: "n", role: .allocation, grid: .axis) { String($0.rolloutsPerProblem) },
            CellSetting(key: "bp", role: .allocation, grid: .axis) { String($0.problemsPerBatch) },
            CellSetting(key: "budget", role: .budget, grid: .axis) { knobNumber($0.budgetFLOPs) },
            CellSetting(key: "seed", role: .seed, grid: .axis) { String($0.seed) },
            CellSetting(key: "tasks", role: .taskMix, grid: .axis) { $0.tasks.canonicalLabel },
            CellSetting(key: "train_bucket", role: .taskMix, grid: .axis) { $0.trainBucket?.rawValue ?? "all" },
            CellSetting(key: "pool_size", role: .taskMix, grid: .axis) { $0.poolSize.map(String.init) ?? "fresh" },
            CellSetting(key: "lr", role: .setting, grid: .axis) { learningRateSpelling($0.learningRate) },
            CellSetting(key: "warmup", role: .setting, grid: .cell) { String($0.warmupSteps) },
            CellSetting(key: "lag", role: .setting, grid: .axis) { String($0.policyLag) },
            CellSetting(key: "curriculum", role: .setting, grid: .axis) { $0.curriculum.description },
            CellSetting(key: "min_difficulty", role: .setting, grid: .cell) { String($0.minDifficulty) },
            CellSetting(key: "max_difficulty", role: .setting, grid: .cell) { $0.maxDifficulty.map(String.init) ?? "base" },
            CellSetting(key: "eval_points", role: .setting, grid: .cell) { String($0.evalPoints) },
            CellSetting(key: "eval_samples", role: .setting, grid: .cell) { String($0.evalSamples) },
            CellSetting(key: "eval_problems", role: .setting, grid: .cell) { String($0.evalProblemsPerLevel) },
            CellSetting(key: "eval_turns", role: .setting, grid: .cell) { String($0.evaluationTurns) },
            CellSetting(key: "support_samples", role: .setting, grid: .cell) { $0.supportSamples.map(String.init) ?? "none" },
            CellSetting(key: "eval_kl", role: .setting, grid: .cell) { $0.evalKL == true ? "true" : "false" },
            CellSetting(key: "eval_levels", role: .setting, grid: .cell) { $0.evaluationLevels.rawValue },
        ]
        s += MethodKnob.allCases.map { k in CellSetting(key: k.rawValue, role: .method, grid: [.axis, .cell]) { $0.value(of: k) } }
        return s
    }()

    /// The setting with grid key `key`, if any.
    public static func named(_ key: String) -> CellSetting? { all.first { $0.key == key } }

    /// The keys a grid file accepts in `place`, in registry order.
    public static func gridKeys(_ place: GridPlace) -> [String] { all.filter { $0.grid.contains(place) }.map(\.key) }

    /// The keys of every setting that separates law groups (role `setting`).
    public static var groupingKeys: [String] { all.filter { $0.role == .setting }.map(\.key) }

    /// Every setting's value in `config`, by key.
    public static func values(of config: CellConfig) -> [String: String] {
        Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0.value(config)) })
    }

    /// A learning rate as grids spell it: the Float's shortest decimal form (2e-4 is "0.0002").
    public static func learningRateSpelling(_ x: Float) -> String { knobNumber(Double(String(describing: x)) ?? Double(x)) }
}

extension CellConfig {
    /// Whether the training schedule reads the budget (today: the `easy_to_hard` curriculum,
    /// whose difficulty grows with the share of the budget spent). When it does not, a cell
    /// is the first part of the same-seed cell with a larger budget: the same run, stopped
    /// earlier.
    public var scheduleDependsOnBudget: Bool { curriculum == .easyToHard }
}
