import Foundation
import PolicyModel
import RLCommon
import Testing

@Suite struct CheckpointTests {
    @Test(arguments: NormKind.allCases)
    func roundTripPreservesWeightsConfigAndMetadata(norm: NormKind) throws {
        let cfg = ModelConfig(vocab: 9, context: 8, dModel: 16, layers: 2, heads: 2, norm: norm)
        let m = try Transformer(config: cfg, seed: 5)
        randomise(m, seed: 6)
        let path = temporaryDirectory() + "/m.safetensors"
        try Checkpoint.save(m, to: path, extra: ["note": "hello"])
        let (back, meta) = try Checkpoint.load(path)
        #expect(back.config == cfg)
        #expect(bits(back.parameters) == bits(m.parameters))
        #expect(meta["note"] == "hello")
        // Same logits after reload.
        try m.forward(tokens: [1, 2, 3], batch: 1, length: 3)
        try back.forward(tokens: [1, 2, 3], batch: 1, length: 3)
        #expect(Array(m.logits) == Array(back.logits))
    }

    @Test func fileLayoutIsSafetensors() throws {
        let m = try Transformer(config: ModelConfig(vocab: 5, context: 4, dModel: 8, layers: 1, heads: 2), seed: 1)
        let data = Checkpoint.encode(m)
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[i]) << (8 * UInt64(i)) }
        #expect((8 + Int(n)) % 8 == 0)
        #expect(data.count == 8 + Int(n) + 4 * m.config.parameterCount)
        let header = try #require(try JSONSerialization.jsonObject(with: data[8..<(8 + Int(n))]) as? [String: Any])
        let wte = try #require(header["transformer.wte.weight"] as? [String: Any])
        #expect(wte["dtype"] as? String == "F32")
        #expect(wte["shape"] as? [Int] == [5, 8])
        #expect(wte["data_offsets"] as? [Int] == [0, 160])
        let meta = try #require(header["__metadata__"] as? [String: String])
        #expect(meta["d_model"] == "8" && meta["norm"] == "layernorm" && meta["tied_embeddings"] == "true")
        // First float is wte[0,0], little-endian.
        let first = UInt32(data[8 + Int(n)]) | UInt32(data[9 + Int(n)]) << 8 | UInt32(data[10 + Int(n)]) << 16
            | UInt32(data[11 + Int(n)]) << 24
        #expect(Float(bitPattern: first) == m.parameters[0])
    }

    /// Each malformed file gives a `CheckpointError` that names the file.
    @Test func malformedFilesGiveClearErrors() throws {
        let m = try Transformer(config: ModelConfig(vocab: 5, context: 4, dModel: 8, layers: 1, heads: 2), seed: 1)
        let good = Checkpoint.encode(m)
        var n = 0
        for i in 0..<8 { n |= Int(good[i]) << (8 * i) }
        let header = String(decoding: good[8..<(8 + n)], as: UTF8.self)
        func withHeader(_ h: String) -> Data {
            var d = Data()
            withUnsafeBytes(of: UInt64(h.utf8.count).littleEndian) { d.append(contentsOf: $0) }
            d.append(Data(h.utf8))
            d.append(good[(8 + n)...])
            return d
        }
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "truncated"),
            ("short", good.prefix(5), "truncated"),
            ("huge header length", Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0]) + good[8...], "header length"),
            ("not json", withHeader("not json at all!"), "not a JSON object"),
            ("truncated data", good.prefix(good.count - 17), "truncated"),
            ("missing metadata key", withHeader(header.replacingOccurrences(of: "\"d_model\"", with: "\"d_modle\"")), "'d_model' is missing"),
            ("bad metadata value", withHeader(header.replacingOccurrences(of: "\"layernorm\"", with: "\"batchnorm\"")), "invalid value 'batchnorm'"),
            ("bad dtype", withHeader(header.replacingOccurrences(of: "\"F32\"", with: "\"F16\"")), "is not F32"),
            ("missing tensor", withHeader(header.replacingOccurrences(of: "transformer.ln_f.bias", with: "transformer.ln_f.bias2")), "'transformer.ln_f.bias' is missing"),
        ]
        let dir = temporaryDirectory()
        for (name, data, needle) in cases {
            let path = dir + "/\(name.replacingOccurrences(of: " ", with: "_")).safetensors"
            try data.write(to: URL(fileURLWithPath: path))
            do {
                _ = try Checkpoint.load(path)
                Issue.record("\(name): loaded without error")
            } catch {
                #expect(error.description.contains(path), "\(name): \(error)")
                #expect(error.description.contains(needle), "\(name): \(error)")
            }
        }
        #expect(throws: CheckpointError.self) { try Checkpoint.load(dir + "/does-not-exist.safetensors") }
    }
}
