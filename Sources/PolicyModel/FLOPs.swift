/// The harness's one FLOP formula. Every budget, every MFU figure and every compute
/// axis of every law is computed from these functions and nothing else.
///
/// Forward FLOPs for the token at position `t` (0-based, so it attends to `t + 1` keys):
///
///     F_fwd(t) = 2·(12·L·C² + C·V)  +  4·L·C·(t + 1)
///
/// The first term is the multiply–adds of every weight matrix the token passes through
/// (per layer: q,k,v 3C², output projection C², MLP 8C²; then the tied output head C·V).
/// The second is causal attention: q·kᵀ over `t + 1` keys and the weighted sum of as many
/// values, 2·C·(t + 1) each, per layer. Biases, norms, GELU, softmax and embeddings are
/// O(C) per token and are not counted (as in Kaplan et al. and Chinchilla).
///
/// A backward pass costs twice its forward (gradients with respect to activations and
/// to weights): F_bwd = 2·F_fwd, so one training token costs 3·F_fwd.
public enum FLOPs {
    /// FLOPs of the weight matrices per token (2 per multiply–add).
    @inlinable
    public static func matmulPerToken(_ c: ModelConfig) -> Double {
        let C = Double(c.dModel), L = Double(c.layers), V = Double(c.vocab)
        return 2 * (12 * L * C * C + C * V)
    }

    /// Forward FLOPs of one token at 0-based position `position`.
    @inlinable
    public static func forwardToken(_ c: ModelConfig, position: Int) -> Double {
        matmulPerToken(c) + 4 * Double(c.layers) * Double(c.dModel) * Double(position + 1)
    }

    /// Forward FLOPs of one sequence of `length` tokens at positions `0..<length`.
    @inlinable
    public static func forwardSequence(_ c: ModelConfig, length: Int) -> Double {
        guard length > 0 else { return 0 }
        let S = Double(length)
        return S * matmulPerToken(c) + 4 * Double(c.layers) * Double(c.dModel) * S * (S + 1) / 2
    }

    /// Backward FLOPs of one sequence: twice its forward.
    @inlinable
    public static func backwardSequence(_ c: ModelConfig, length: Int) -> Double {
        2 * forwardSequence(c, length: length)
    }

    /// Forward plus backward FLOPs of one training sequence.
    @inlinable
    public static func trainSequence(_ c: ModelConfig, length: Int) -> Double {
        3 * forwardSequence(c, length: length)
    }
}
