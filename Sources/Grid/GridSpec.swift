import Evaluation
import BasePolicies
import Foundation
import ResultSchema
import RLCommon
import RLTraining
import Tasks

/// A grid-file error: names the file, line and key, and suggests the intended key when a
/// key is unknown.
public struct GridError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String?
    public var message: String

    public var description: String {
        "\(file):\(line): " + (key.map { "\($0): " } ?? "") + message
    }
}

/// One cell of an expanded grid: the base it starts from, its configuration and identity.
public struct GridCell: Codable, Hashable, Sendable {
    /// Ladder size of the base.
    public var base: String
    public var config: CellConfig
    /// Stable identity: a hash of the base's key, the base's held-out evaluation settings
    /// (problems per level and K: they define the pass buckets and the evaluation set), the
    /// resolved config, the cell result schema and the numerics version. A rerun skips every
    /// cell whose document exists.
    public var id: String
}

/// A resolved grid: its bases and its expanded, constrained cells.
public struct Grid: Codable, Sendable {
    public var name: String
    public var description: String
    public var bases: [BaseSpec]
    public var cells: [GridCell]
    /// Held-out evaluation of each base (problems per level, samples K).
    public var baseEvalProblems: Int
    public var baseEvalSamples: Int

    public func base(named n: String) -> BaseSpec? { bases.first { $0.name == n } }

    /// Cells of shard `index` of `count` (round-robin over the expansion order).
    public func shard(_ index: Int, of count: Int) -> [GridCell] {
        cells.enumerated().filter { $0.offset % count == index }.map(\.element)
    }

    static func cellID(base: BaseSpec, evalProblems: Int, evalSamples: Int, config: CellConfig) -> String {
        StableHash.hex(
            "cell-v\(CellResult.schemaVersion):n\(Numerics.version):\(base.key):e\(evalProblems)x\(evalSamples):", json: config)
    }
}

/// Reads grid files (the format is documented in the README, "Grids"):
/// decoding (`GridDefinition(decoding:file:)`) then expansion (`GridDefinition.expand()`).
public enum GridFile {
    public static func load(_ path: String) throws(GridError) -> Grid {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such file"
            throw GridError(file: path, line: 1, key: nil, message: why)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            // The line of the first byte that is not UTF-8.
            var line = 1
            for prefix in (0...data.count).reversed() where String(data: data.prefix(prefix), encoding: .utf8) != nil {
                line += data.prefix(prefix).filter { $0 == 0x0A }.count
                break
            }
            throw GridError(file: path, line: line, key: nil, message: "is not UTF-8 text (a grid file is TOML, UTF-8 encoded)")
        }
        return try parse(text, file: path)
    }

    /// Decodes and expands a grid file's text; errors name `file`, a line and a key.
    public static func parse(_ text: String, file: String) throws(GridError) -> Grid {
        try GridDefinition(decoding: text, file: file).expand()
    }
}

extension GridDefinition {
    /// The grid: the product of every axis, except that axes in a zip group advance
    /// together, in order (the first axis varies slowest), keeping the cells that satisfy
    /// every constraint. A method-knob axis applies to the methods that read it and
    /// collapses for the others (their copies are one cell, kept where first met). A cell that cannot run is an error: a method knob of `[cell]` its
    /// method does not read names that key's line, anything else the `[axes]` header.
    public func expand() throws(GridError) -> Grid {
        let counts = axes.counts
        func count(_ axis: String) -> Int { counts.first { $0.key == axis }?.count ?? 1 }
        var dims: [[String]] = []
        for g in zipGroups {
            let lengths = g.map(count)
            guard Set(lengths).count == 1 else { throw source.error(zipLine, "zip", "axes \(g) have different lengths \(lengths)") }
            dims.append(g)
        }
        let zipped = Set(zipGroups.joined())
        for (a, _) in counts where !zipped.contains(a) { dims.append([a]) }
        var cells: [GridCell] = []
        var seen = Set<String>()
        for index in Self.product(dims.map { count($0[0]) }) {
            var pick: [String: Int] = [:]
            for (d, i) in zip(dims, index) { for a in d { pick[a] = i } }
            let size = axes.size[pick["size", default: 0]]
            guard let spec = base.specs.first(where: { $0.name == size }),
                let config = try cellConfig(pick, base: spec, cellIndex: cells.count)
            else { continue }
            let id = Grid.cellID(base: spec, evalProblems: base.evalProblems, evalSamples: base.evalSamples, config: config)
            // A knob axis collapses for a method that does not read it: its copies are one cell.
            guard seen.insert(id).inserted else { continue }
            cells.append(GridCell(base: size, config: config, id: id))
        }
        guard !cells.isEmpty else { throw source.error(constraintsLine, "constraints", "no cell satisfies the constraints") }
        try Self.refusePrefixes(cells, source: source, line: axes.line)
        // The bases cells train, and the bases their reward models start from.
        let used = Set(cells.map(\.base) + cells.compactMap { $0.config.rewardModel?.size }.filter { $0 != "base" })
        return Grid(
            name: name, description: description, bases: base.specs.filter { used.contains($0.name) }, cells: cells,
            baseEvalProblems: base.evalProblems, baseEvalSamples: base.evalSamples)
    }

    /// The config of the cell on `spec` that takes value `pick[axis]` of each axis, nil
    /// when a constraint drops it.
    func cellConfig(_ pick: [String: Int], base spec: BaseSpec, cellIndex: Int) throws(GridError) -> CellConfig? {
        func at<T>(_ values: [T], _ axis: String) -> T { values[pick[axis, default: 0]] }
        let n = at(axes.n, "n"), bp = at(axes.bp, "bp"), budget = at(axes.budget, "budget")
        let lr = at(axes.lr, "lr"), lag = at(axes.lag, "lag"), seed = at(axes.seed, "seed")
        let vars: [String: Double] = [
            "n": Double(n), "bp": Double(bp), "budget": budget, "lr": lr, "lag": Double(lag), "seed": Double(seed),
            "params": Double(spec.model.nonEmbeddingParameterCount),
        ]
        guard constraints.allSatisfy({ $0.holds(vars) }) else { return nil }
        var config = CellConfig(
            method: at(axes.method, "method"), rolloutsPerProblem: n, problemsPerBatch: bp, budgetFLOPs: budget,
            learningRate: Float(lr), warmupSteps: cell.warmup, tasks: at(axes.tasks, "tasks"), maxDifficulty: cell.maxDifficulty,
            minDifficulty: cell.minDifficulty, curriculum: at(axes.curriculum, "curriculum"),
            trainBucket: at(axes.trainBucket, "train_bucket"), poolSize: at(axes.poolSize, "pool_size"), policyLag: lag,
            seed: UInt64(seed), evalPoints: cell.evalPoints, evalSamples: cell.evalSamples, evalProblemsPerLevel: cell.evalProblems)
        config.supportSamples = cell.supportSamples
        config.evalKL = cell.evalKL ? true : nil
        config.evalLevels = cell.evalLevels == .all ? nil : cell.evalLevels
        // Method knobs: [cell] values (checked when decoded), then the knob axes the method reads.
        // The gated knobs last: whether a cell reads `rm_*` depends on its reward, whether it
        // reads `feedback` and `turn_credit` on its turns (and `feedback` on its eval_turns);
        // like their axes, gated keys of [cell] apply only to the cells they are read by.
        let reads = Methods.knobs(of: config.method)
        for knob in MethodKnob.allCases where !MethodKnob.conditionalKnobs.contains(knob) {
            if let spelled = cell.knobs[knob] { _ = config.set(knob, to: spelled) }
        }
        for knob in MethodKnob.allCases where !MethodKnob.conditionalKnobs.contains(knob) && reads.contains(knob) {
            if let values = axes.knobs[knob] { _ = config.set(knob, to: at(values, knob.rawValue)) }
        }
        // eval_turns equal to the cell's turns is the default (kept unset: one id per behaviour).
        config.evalTurns = cell.evalTurns == config.episodeSpec.turns ? nil : cell.evalTurns
        for knob in MethodKnob.allCases where MethodKnob.conditionalKnobs.contains(knob) && config.knobsRead.contains(knob) {
            if let spelled = cell.knobs[knob] { _ = config.set(knob, to: spelled) }
            if let values = axes.knobs[knob] { _ = config.set(knob, to: at(values, knob.rawValue)) }
        }
        // A knob set for a method that does not read it would change the cell's id and nothing else.
        if let knob = config.unusedKnobs().first {
            throw source.error(cell.line(of: knob.rawValue), knob.rawValue, config.unusedKnobMessage(knob))
        }
        if let why = config.validationError() { throw source.error(axes.line, nil, "cell \(cellIndex): \(why)") }
        if let why = config.episodeFitError(corpus: spec.corpus) {
            // `why` starts with its key ("turns: …" or "eval_turns: …").
            let key = why.hasPrefix("eval_turns") ? "eval_turns" : "turns"
            let line = key == "turns" && axes.knobs[.turns] != nil ? axes.line : cell.line(of: key)
            throw source.error(line, key, "cell \(cellIndex): " + why.dropFirst(key.count + 2))
        }
        return config
    }

    /// Refuses a grid in which two cells differ only in their budget and share a seed (and a
    /// schedule that does not read the budget): the smaller would be the first part of the
    /// larger run, computed twice and counted twice by `fit`.
    static func refusePrefixes(_ cells: [GridCell], source: GridSource, line: Int) throws(GridError) {
        var first: [GridCell: Int] = [:]
        for (i, c) in cells.enumerated() where !c.config.scheduleDependsOnBudget {
            var run = c
            run.config.budgetFLOPs = 0
            run.id = ""
            if let j = first[run] {
                let a = cells[j].config, b = c.config
                throw source.error(line, "budget", "cells \(j) and \(i) differ only in budget (\(compactNumber(a.budgetFLOPs)) and "
                    + "\(compactNumber(b.budgetFLOPs))) with the same seed \(b.seed): the smaller is the first part of the larger run "
                    + "(a run's learning curve already holds every smaller budget), so it would be computed twice and counted as a "
                    + "second run. Use one budget per seed (the largest), or zip = [[\"budget\", \"seed\"]] with a different seed for "
                    + "each budget")
            }
            first[run] = i
        }
    }

    /// Every index tuple of the product of `lengths`, the last dimension fastest.
    static func product(_ lengths: [Int]) -> [[Int]] {
        var tuples: [[Int]] = []
        var index = [Int](repeating: 0, count: lengths.count)
        for _ in 0..<lengths.reduce(1, *) {
            tuples.append(index)
            var d = lengths.count - 1
            while d >= 0 {  // odometer increment
                index[d] += 1
                if index[d] < lengths[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return tuples
    }
}
