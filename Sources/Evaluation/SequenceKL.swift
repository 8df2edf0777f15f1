import PolicyModel
import Tasks

/// KL(π ‖ q) between two policies over whole completions, estimated on samples of π.
///
/// For each sample y ~ π, the sum over its positions of the exact per-token
/// KL(π(·|prefix) ‖ q(·|prefix)) over the full vocabulary. By the chain rule its expectation
/// under π is the sequence-level KL, and it has lower variance than Σ log π(y)/q(y) (the
/// per-token sums are Rao–Blackwellised over the vocabulary).
public enum SequenceKL {
    /// One value per (prompt, completion) pair, and the forward FLOPs spent (two forwards
    /// per sequence): batches of 256 rows, each run `Transformer.passRows` sequences per
    /// forward pass.
    public static func perSample(
        policy: Transformer, reference: Transformer, _ pairs: [(prompt: [Int32], completion: [Int32])]
    ) throws(ModelError) -> (kl: [Double], flops: Double) {
        let V = policy.config.vocab
        var out: [Double] = []
        out.reserveCapacity(pairs.count)
        var flops = 0.0
        var start = 0
        while start < pairs.count {
            let chunk = Array(pairs[start..<min(pairs.count, start + 256)])
            start += chunk.count
            let b = SequenceBatch(chunk)
            flops += b.forwardFLOPs(policy.config) + b.forwardFLOPs(reference.config)
            for pass in b.passes {
                try b.forward(policy, rows: pass)
                let pz = Array(policy.logits), plse = Array(policy.logSumExp), pp = Array(policy.probabilities)
                try b.forward(reference, rows: pass)
                let qz = reference.logits, qlse = reference.logSumExp
                let first = b.positions(pass).lowerBound
                for row in pass {
                    var sum = 0.0
                    for t in 0..<b.lengths[row] where b.targets[b.position(row, t)] >= 0 {
                        let n = b.position(row, t) - first
                        var kl = 0.0
                        for v in 0..<V {
                            let p = Double(pp[n * V + v])
                            guard p > 0 else { continue }
                            kl += p * (Double(pz[n * V + v] - plse[n]) - Double(qz[n * V + v] - qlse[n]))
                        }
                        sum += kl
                    }
                    out.append(sum)
                }
            }
        }
        return (out, flops)
    }
}
