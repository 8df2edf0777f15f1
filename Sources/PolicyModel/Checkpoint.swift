import Foundation
import RLCommon

/// Why a checkpoint could not be read or written. Every case names the file.
public enum CheckpointError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case truncated(path: String, detail: String)
    case badHeader(path: String, detail: String)
    case badMetadata(path: String, key: String, value: String?)
    case missingTensor(path: String, name: String)
    case badTensor(path: String, name: String, detail: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): "\(p): cannot read checkpoint: \(r)"
        case .truncated(let p, let d): "\(p): truncated safetensors file: \(d)"
        case .badHeader(let p, let d): "\(p): malformed safetensors header: \(d)"
        case .badMetadata(let p, let k, let v):
            "\(p): __metadata__ key '\(k)' " + (v.map { "has invalid value '\($0)'" } ?? "is missing")
        case .missingTensor(let p, let n): "\(p): tensor '\(n)' is missing"
        case .badTensor(let p, let n, let d): "\(p): tensor '\(n)': \(d)"
        case .writeFailed(let p, let r): "\(p): cannot write checkpoint: \(r)"
        }
    }
}

/// Safetensors checkpoints: an 8-byte little-endian header length, a JSON header mapping
/// each tensor name to `{dtype: "F32", shape, data_offsets: [begin, end]}` plus a
/// `__metadata__` map of strings holding the model config, then the raw little-endian
/// float32 data. numpy, PyTorch (`safetensors.torch.load_file`) and every other
/// safetensors reader load these files.
public enum Checkpoint {
    /// Metadata keys that carry the model config.
    static let configKeys = ["vocab_size", "context", "d_model", "n_layer", "n_head", "norm", "norm_eps"]

    /// Serialises a model; `extra` adds further `__metadata__` entries.
    public static func encode(_ model: Transformer, extra: [String: String] = [:]) -> Data {
        let c = model.config
        var meta: [String: String] = extra
        meta["format"] = "pt"
        meta["vocab_size"] = String(c.vocab)
        meta["context"] = String(c.context)
        meta["d_model"] = String(c.dModel)
        meta["n_layer"] = String(c.layers)
        meta["n_head"] = String(c.heads)
        meta["norm"] = c.norm.rawValue
        meta["norm_eps"] = "\(c.normEpsilon)"
        meta["activation"] = "gelu_tanh"
        meta["tied_embeddings"] = "true"
        var header: [String: Any] = ["__metadata__": meta]
        for s in model.specs {
            header[s.name] = [
                "dtype": "F32", "shape": s.shape,
                "data_offsets": [4 * s.offset, 4 * (s.offset + s.count)],
            ] as [String: Any]
        }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data(capacity: 8 + json.count + 4 * model.params.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for x in model.parameters {
            withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes a checkpoint atomically (temporary file, fsync, rename).
    public static func save(_ model: Transformer, to path: String, extra: [String: String] = [:]) throws(CheckpointError) {
        do {
            try AtomicFile.write(encode(model, extra: extra), to: path)
        } catch {
            throw .writeFailed(path: path, reason: error.description)
        }
    }

    /// Reads a checkpoint's model config and metadata without loading its weights.
    public static func readHeader(_ data: Data, path: String) throws(CheckpointError) -> (config: ModelConfig, metadata: [String: String], header: [String: Any], dataStart: Int) {
        guard data.count >= 8 else { throw .truncated(path: path, detail: "\(data.count) bytes, need at least 8") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard n <= UInt64(data.count - 8) else {
            throw .truncated(path: path, detail: "header length \(n) exceeds the \(data.count - 8) bytes that follow")
        }
        let start = data.startIndex + 8
        let headerBytes = data[start..<(start + Int(n))]
        guard let obj = try? JSONSerialization.jsonObject(with: headerBytes), let header = obj as? [String: Any] else {
            throw .badHeader(path: path, detail: "header is not a JSON object")
        }
        guard let meta = header["__metadata__"] as? [String: String] else {
            throw .badMetadata(path: path, key: "__metadata__", value: nil)
        }
        func int(_ k: String) throws(CheckpointError) -> Int {
            guard let s = meta[k] else { throw .badMetadata(path: path, key: k, value: nil) }
            guard let v = Int(s), v > 0 else { throw .badMetadata(path: path, key: k, value: s) }
            return v
        }
        guard let normS = meta["norm"] else { throw .badMetadata(path: path, key: "norm", value: nil) }
        guard let norm = NormKind(rawValue: normS) else { throw .badMetadata(path: path, key: "norm", value: normS) }
        guard let epsS = meta["norm_eps"] else { throw .badMetadata(path: path, key: "norm_eps", value: nil) }
        guard let eps = Float(epsS), eps > 0 else { throw .badMetadata(path: path, key: "norm_eps", value: epsS) }
        let config = ModelConfig(
            vocab: try int("vocab_size"), context: try int("context"), dModel: try int("d_model"),
            layers: try int("n_layer"), heads: try int("n_head"), norm: norm, normEpsilon: eps)
        if let why = config.validationError() { throw .badMetadata(path: path, key: "config", value: why) }
        return (config, meta, header, 8 + Int(n))
    }

    /// Loads a checkpoint into a new model. Every tensor's dtype, shape and byte range is
    /// checked; a malformed or truncated file gives a `CheckpointError`, never a crash.
    public static func load(_ path: String) throws(CheckpointError) -> (model: Transformer, metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String) throws(CheckpointError) -> (model: Transformer, metadata: [String: String]) {
        let (config, meta, header, dataStart) = try readHeader(data, path: path)
        let model: Transformer
        do { model = try Transformer(config: config, seed: 0) } catch {
            throw .badMetadata(path: path, key: "config", value: error.description)
        }
        let available = data.count - dataStart
        for s in model.specs {
            guard let entry = header[s.name] as? [String: Any] else { throw .missingTensor(path: path, name: s.name) }
            guard let dtype = entry["dtype"] as? String, dtype == "F32" else {
                throw .badTensor(path: path, name: s.name, detail: "dtype \(entry["dtype"] ?? "missing") is not F32")
            }
            guard let shape = entry["shape"] as? [Int], shape == s.shape else {
                throw .badTensor(path: path, name: s.name, detail: "shape \(entry["shape"] ?? "missing") is not \(s.shape)")
            }
            guard let offs = entry["data_offsets"] as? [Int], offs.count == 2, offs[0] >= 0, offs[1] - offs[0] == 4 * s.count
            else {
                throw .badTensor(path: path, name: s.name, detail: "data_offsets \(entry["data_offsets"] ?? "missing") do not span \(s.count) floats")
            }
            guard offs[1] <= available else {
                throw .truncated(path: path, detail: "tensor '\(s.name)' ends at byte \(offs[1]) of \(available) data bytes")
            }
            let dst = model.params.base + s.offset
            data.withUnsafeBytes { raw in
                let src = raw.baseAddress.map { $0 + dataStart + offs[0] }
                for i in 0..<s.count {
                    var bits: UInt32 = 0
                    if let src { memcpy(&bits, src + 4 * i, 4) }
                    dst[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
        }
        return (model, meta)
    }
}
