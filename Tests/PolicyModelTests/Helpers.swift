import Foundation
import PolicyModel
import RLCommon

/// A tiny config for exhaustive checks.
func tinyConfig(_ norm: NormKind) -> ModelConfig {
    ModelConfig(vocab: 7, context: 6, dModel: 8, layers: 2, heads: 2, norm: norm)
}

/// Re-draws every parameter with larger magnitudes than the GPT-2 initialisation, so that
/// biases and norm scales are non-trivial and every gradient path is exercised.
func randomise(_ model: Transformer, seed: UInt64, scale: Double = 0.3) {
    var rng = SeededRNG(seed: seed)
    for s in model.specs {
        let p = model.parameters.baseAddress! + s.offset
        let isNormScale = s.shape.count == 1 && !s.name.hasSuffix(".bias")
        for i in 0..<s.count {
            let g = rng.gaussian()
            p[i] = Float(isNormScale ? 1 + 0.2 * g : scale * g)
        }
    }
}

/// Random tokens, next-token targets (−1 past each row's end) and signed weights.
func randomBatch(vocab: Int, B: Int, T: Int, seed: UInt64) -> (tokens: [Int32], targets: [Int32], weights: [Float]) {
    var rng = SeededRNG(seed: seed)
    var tokens = [Int32](repeating: 0, count: B * T)
    var targets = [Int32](repeating: -1, count: B * T)
    var weights = [Float](repeating: 0, count: B * T)
    for b in 0..<B {
        let len = T - b % 2  // odd rows are one shorter (right padding with token 0)
        for t in 0..<len { tokens[b * T + t] = Int32(rng.below(vocab)) }
        for t in 0..<(len - 1) {
            targets[b * T + t] = tokens[b * T + t + 1]
            weights[b * T + t] = Float(rng.uniform() * 2 - 0.5)  // advantages can be negative
        }
    }
    return (tokens, targets, weights)
}

func bits(_ b: UnsafeMutableBufferPointer<Float>) -> [UInt32] { b.map(\.bitPattern) }

func temporaryDirectory() -> String {
    let dir = NSTemporaryDirectory() + "rlscale-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
