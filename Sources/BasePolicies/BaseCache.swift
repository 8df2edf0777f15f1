import Evaluation
import Foundation
import PolicyModel
import RLCommon
import Tasks

/// Errors from the base cache, naming the file.
public enum BaseCacheError: Error, CustomStringConvertible {
    case checkpoint(CheckpointError)
    case record(path: String, reason: String)
    case model(ModelError)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .checkpoint(let e): e.description
        case .record(let p, let r): "\(p): unreadable base record: \(r)"
        case .model(let e): e.description
        case .io(let p, let r): "\(p): \(r)"
        }
    }
}

/// Pretrained bases, stored as `<dir>/<name>-<key>.safetensors` plus a `.json` record, and
/// shared by every cell and every grid that asks for the same spec.
public struct BaseCache: Sendable {
    public var directory: String

    public init(directory: String) { self.directory = directory }

    public func checkpointPath(_ spec: BaseSpec) -> String { "\(directory)/\(spec.name)-\(spec.key).safetensors" }
    public func recordPath(_ spec: BaseSpec) -> String { "\(directory)/\(spec.name)-\(spec.key).json" }

    /// Whether a finished base (checkpoint and record) is cached.
    public func contains(_ spec: BaseSpec) -> Bool {
        FileManager.default.fileExists(atPath: checkpointPath(spec))
            && FileManager.default.fileExists(atPath: recordPath(spec))
    }

    /// Loads a cached base, or nil when it is not cached.
    public func load(_ spec: BaseSpec) throws(BaseCacheError) -> (Transformer, BaseRecord)? {
        guard contains(spec) else { return nil }
        let model: Transformer
        do { model = try Checkpoint.load(checkpointPath(spec)).model } catch { throw .checkpoint(error) }
        return (model, try readRecord(recordPath(spec)))
    }

    public func readRecord(_ path: String) throws(BaseCacheError) -> BaseRecord {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try JSONDecoder().decode(BaseRecord.self, from: data)
        } catch {
            throw .record(path: path, reason: "\(error)")
        }
    }

    /// Where the record of a cached base evaluated differently from its first evaluation
    /// lives: `<dir>/<name>-<key>-eval-<hash of the evaluation set and options>.json`.
    public func evaluationRecordPath(_ spec: BaseSpec, set: EvalSetSpec, options: EvalOptions) -> String {
        let id = "problems=\(set.problemsPerLevel),seed=\(set.seed),samples=\(options.samples),"
            + "temperature=\(options.temperature),greedy=\(options.greedy)"
        return "\(directory)/\(spec.name)-\(spec.key)-eval-\(StableHash.hex(id)).json"
    }

    /// Returns the cached base, or pretrains, evaluates and caches it. The checkpoint is
    /// written before the record, both atomically, so a record always has its weights.
    ///
    /// The returned record's evaluation is always the one asked for (`evalSet`, `evalOptions`).
    /// When the base is cached with a different evaluation (another grid asked for fewer
    /// problems, say), the cached weights are evaluated as asked and that record is written
    /// beside the first one (`evaluationRecordPath`); the first record is never rewritten, so
    /// cells that other grids ran on it keep their base's buckets.
    public func obtain(
        _ spec: BaseSpec, evalSet: EvalSetSpec = EvalSetSpec(), evalOptions: EvalOptions = EvalOptions(),
        log: ((String) -> Void)? = nil
    ) throws(BaseCacheError) -> (Transformer, BaseRecord) {
        if let (model, record) = try load(spec) {
            if let e = record.evaluation, e.set == evalSet, e.options == evalOptions { return (model, record) }
            let path = evaluationRecordPath(spec, set: evalSet, options: evalOptions)
            if FileManager.default.fileExists(atPath: path) { return (model, try readRecord(path)) }
            log?("evaluating base \(spec.name) on \(evalSet.problemsPerLevel) problems per level × \(evalOptions.samples) samples")
            var again = record
            do {
                again.evaluation = try Pretraining.evaluate(model, spec: spec, set: evalSet, options: evalOptions)
            } catch {
                throw .model(error)
            }
            try writeRecord(again, to: path)
            return (model, again)
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(path: directory, reason: "cannot create directory: \(error.localizedDescription)")
        }
        log?("pretraining base \(spec.name) (\(spec.model), \(spec.tokenBudget) tokens)")
        var lastShown = -1
        do {
            let (model, rec) = try Pretraining.run(spec) { frac, loss in
                let pct = Int(frac * 10) * 10
                if pct > lastShown {
                    lastShown = pct
                    log?(String(format: "  %@ %3d%%  loss %.3f", spec.name, pct, loss))
                }
            }
            var record = rec
            log?("evaluating base \(spec.name)")
            record.evaluation = try Pretraining.evaluate(model, spec: spec, set: evalSet, options: evalOptions)
            do {
                try Checkpoint.save(
                    model, to: checkpointPath(spec),
                    extra: ["rlscale.base_name": spec.name, "rlscale.base_key": spec.key,
                            "rlscale.tasks": spec.corpus.mixture.description])
            } catch { throw BaseCacheError.checkpoint(error) }
            try writeRecord(record, to: recordPath(spec))
            return (model, record)
        } catch let e as BaseCacheError {
            throw e
        } catch let e as ModelError {
            throw .model(e)
        } catch {
            throw .io(path: directory, reason: "\(error)")
        }
    }

    /// Writes a base record atomically (sorted keys, pretty-printed).
    func writeRecord(_ record: BaseRecord, to path: String) throws(BaseCacheError) {
        do { try Self.writeJSON(record, to: path) } catch { throw .io(path: path, reason: "\(error)") }
    }

    /// Writes `value` as pretty-printed JSON with sorted keys, atomically, creating the folder.
    static func writeJSON(_ value: some Encodable, to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(try enc.encode(value), to: path)
    }
}
