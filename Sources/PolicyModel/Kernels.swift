import COpenBLAS
import Foundation

// One function per layer, forward and backward, in the style of llm.c. Every function
// works on raw row-major float buffers; every matrix product goes through cblas_sgemm
// (cblas_sgemv for the single-query attention of cached sampling). Backward functions
// accumulate (+=) into parameter gradients and, where noted, into input gradients.

typealias FMut = UnsafeMutablePointer<Float>
typealias FPtr = UnsafePointer<Float>

/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, row-major.
@inline(__always)
func sgemm(
    transA: Bool = false, transB: Bool = false, _ M: Int, _ N: Int, _ K: Int,
    alpha: Float = 1, _ A: FPtr, lda: Int, _ B: FPtr, ldb: Int,
    beta: Float, _ C: FMut, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
}

public enum Kernels {
    // MARK: embeddings

    /// out[n,:] = wte[tokens[n],:] + wpe[n % T,:]
    static func encoderForward(
        _ out: FMut, _ tokens: UnsafePointer<Int32>, _ wte: FPtr, _ wpe: FPtr, B: Int, T: Int, C: Int
    ) {
        for b in 0..<B {
            for t in 0..<T {
                let o = out + (b * T + t) * C
                let e = wte + Int(tokens[b * T + t]) * C
                let p = wpe + t * C
                for i in 0..<C { o[i] = e[i] + p[i] }
            }
        }
    }

    static func encoderBackward(
        _ dwte: FMut, _ dwpe: FMut, _ dout: FPtr, _ tokens: UnsafePointer<Int32>, B: Int, T: Int, C: Int
    ) {
        for b in 0..<B {
            for t in 0..<T {
                let d = dout + (b * T + t) * C
                let e = dwte + Int(tokens[b * T + t]) * C
                let p = dwpe + t * C
                for i in 0..<C {
                    e[i] += d[i]
                    p[i] += d[i]
                }
            }
        }
    }

    // MARK: normalisation

    /// LayerNorm or RMSNorm over the last dimension of `inp[N, C]`. Saves the per-row
    /// mean (zero for RMSNorm) and reciprocal standard deviation for the backward pass.
    static func normForward(
        _ kind: NormKind, _ out: FMut, _ mean: FMut, _ rstd: FMut, _ inp: FPtr,
        _ w: FPtr, _ bias: FPtr?, N: Int, C: Int, eps: Float
    ) {
        let invC = 1 / Float(C)
        for n in 0..<N {
            let x = inp + n * C
            let o = out + n * C
            var m: Float = 0
            if kind == .layerNorm {
                for i in 0..<C { m += x[i] }
                m *= invC
            }
            var v: Float = 0
            for i in 0..<C {
                let d = x[i] - m
                v += d * d
            }
            let s = 1 / (v * invC + eps).squareRoot()
            if let bias {
                for i in 0..<C { o[i] = (x[i] - m) * s * w[i] + bias[i] }
            } else {
                for i in 0..<C { o[i] = (x[i] - m) * s * w[i] }
            }
            mean[n] = m
            rstd[n] = s
        }
    }

    /// Backward of `normForward`; accumulates into dinp, dw and dbias.
    static func normBackward(
        _ kind: NormKind, _ dinp: FMut, _ dw: FMut, _ dbias: FMut?, _ dout: FPtr, _ inp: FPtr,
        _ w: FPtr, _ mean: FPtr, _ rstd: FPtr, N: Int, C: Int
    ) {
        let invC = 1 / Float(C)
        for n in 0..<N {
            let x = inp + n * C
            let d = dout + n * C
            let di = dinp + n * C
            let m = mean[n], s = rstd[n]
            var dnormMean: Float = 0
            var dnormNormMean: Float = 0
            for i in 0..<C {
                let norm = (x[i] - m) * s
                let dnorm = w[i] * d[i]
                dnormMean += dnorm
                dnormNormMean += dnorm * norm
            }
            dnormMean *= invC
            dnormNormMean *= invC
            if kind == .rmsNorm { dnormMean = 0 }
            for i in 0..<C {
                let norm = (x[i] - m) * s
                let dnorm = w[i] * d[i]
                dw[i] += norm * d[i]
                di[i] += (dnorm - dnormMean - norm * dnormNormMean) * s
            }
            if let dbias {
                for i in 0..<C { dbias[i] += d[i] }
            }
        }
    }

    // MARK: linear layers

    /// out[N, OUT] (= or +=) inp[N, IN] · wᵀ + bias, with w stored [OUT, IN].
    static func linearForward(
        _ out: FMut, _ inp: FPtr, _ w: FPtr, _ bias: FPtr, N: Int, IN: Int, OUT: Int, accumulate: Bool
    ) {
        if accumulate {
            for n in 0..<N {
                let o = out + n * OUT
                for j in 0..<OUT { o[j] += bias[j] }
            }
        } else {
            for n in 0..<N { (out + n * OUT).update(from: bias, count: OUT) }
        }
        sgemm(transB: true, N, OUT, IN, inp, lda: IN, w, ldb: IN, beta: 1, out, ldc: OUT)
    }

    /// Backward of `linearForward`: dinp (= or +=) dout · w, dw += doutᵀ · inp,
    /// dbias += column sums of dout.
    static func linearBackward(
        _ dinp: FMut, _ dw: FMut, _ dbias: FMut, _ dout: FPtr, _ inp: FPtr, _ w: FPtr,
        N: Int, IN: Int, OUT: Int, accumulateInput: Bool
    ) {
        sgemm(N, IN, OUT, dout, lda: OUT, w, ldb: IN, beta: accumulateInput ? 1 : 0, dinp, ldc: IN)
        sgemm(transA: true, OUT, IN, N, dout, lda: OUT, inp, ldb: IN, beta: 1, dw, ldc: IN)
        for n in 0..<N {
            let d = dout + n * OUT
            for j in 0..<OUT { dbias[j] += d[j] }
        }
    }

    // MARK: attention

    /// Multi-head causal self-attention. `qkv[B, T, 3C]` holds q, k, v; `att[B, NH, T, T]`
    /// receives the softmax probabilities (zero above the diagonal); `out[B, T, C]` the
    /// heads' outputs side by side.
    static func attentionForward(
        _ out: FMut, _ att: FMut, _ qkv: FPtr, B: Int, T: Int, C: Int, NH: Int
    ) {
        let hs = C / NH
        let scale = 1 / Float(hs).squareRoot()
        let C3 = 3 * C
        for b in 0..<B {
            for h in 0..<NH {
                let q = qkv + b * T * C3 + h * hs
                let k = q + C, v = q + 2 * C
                let a = att + (b * NH + h) * T * T
                sgemm(transB: true, T, T, hs, alpha: scale, q, lda: C3, k, ldb: C3, beta: 0, a, ldc: T)
                for t in 0..<T {
                    let row = a + t * T
                    VectorMath.softmax(row, count: t + 1)
                    (row + t + 1).update(repeating: 0, count: T - t - 1)
                }
                sgemm(T, hs, T, a, lda: T, v, ldb: C3, beta: 0, out + b * T * C + h * hs, ldc: C)
            }
        }
    }

    /// Backward of `attentionForward`: writes (not accumulates) dqkv; `scratch[T, T]` is
    /// a work buffer.
    static func attentionBackward(
        _ dqkv: FMut, _ scratch: FMut, _ dout: FPtr, _ qkv: FPtr, _ att: FPtr,
        B: Int, T: Int, C: Int, NH: Int
    ) {
        let hs = C / NH
        let scale = 1 / Float(hs).squareRoot()
        let C3 = 3 * C
        for b in 0..<B {
            for h in 0..<NH {
                let q = qkv + b * T * C3 + h * hs
                let k = q + C, v = q + 2 * C
                let dq = dqkv + b * T * C3 + h * hs
                let dk = dq + C, dv = dq + 2 * C
                let a = att + (b * NH + h) * T * T
                let d = dout + b * T * C + h * hs
                // dA = dout · vᵀ ; dv = Aᵀ · dout
                sgemm(transB: true, T, T, hs, d, lda: C, v, ldb: C3, beta: 0, scratch, ldc: T)
                sgemm(transA: true, T, hs, T, a, lda: T, d, ldb: C, beta: 0, dv, ldc: C3)
                // softmax backward, row by row: dS = A ⊙ (dA − Σ A·dA)
                for t in 0..<T {
                    let ar = a + t * T, dr = scratch + t * T
                    let dot = VectorMath.dot(ar, dr, count: t + 1)
                    for s in 0...t { dr[s] = ar[s] * (dr[s] - dot) }
                    (dr + t + 1).update(repeating: 0, count: T - t - 1)
                }
                // dq = scale · dS · k ; dk = scale · dSᵀ · q
                sgemm(T, hs, T, alpha: scale, scratch, lda: T, k, ldb: C3, beta: 0, dq, ldc: C3)
                sgemm(transA: true, T, hs, T, alpha: scale, scratch, lda: T, q, ldb: C3, beta: 0, dk, ldc: C3)
            }
        }
    }

    /// Single-query attention of one decoding row over its t + 1 cached positions, head by
    /// head: `out[C]` = Σⱼ softmax(scale · q·kⱼ)ⱼ · vⱼ, with kⱼ, vⱼ at `kCache`, `vCache` +
    /// j·C (+ the head's offset). `scores` is scratch for t + 1 floats.
    ///
    /// Bitwise `VectorMath.dot` per key and `VectorMath.axpy` per key in key order; it
    /// only reorders the work: four keys' dot products at once, and each 32-float slice of
    /// a head's output kept in registers across all keys instead of loaded and stored per
    /// key.
    public static func decodeAttention(
        _ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ kCache: UnsafePointer<Float>,
        _ vCache: UnsafePointer<Float>, scores s: UnsafeMutablePointer<Float>,
        t: Int, C: Int, NH: Int, scale: Float
    ) {
        let hs = C / NH, chunks = hs / 8, tail = hs - 8 * chunks, n = t + 1
        for head in 0..<NH {
            let qh = q + head * hs, kh = kCache + head * hs, vh = vCache + head * hs
            // scores, four keys at a time; each is VectorMath.dot's lanes, sum and tail
            var j = 0
            while j + 4 <= n {
                let k0 = kh + j * C, k1 = k0 + C, k2 = k1 + C, k3 = k2 + C
                var a0 = Float8(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                for c in 0..<chunks {
                    let qv = VectorMath.load(qh + 8 * c)
                    a0 += qv * VectorMath.load(k0 + 8 * c)
                    a1 += qv * VectorMath.load(k1 + 8 * c)
                    a2 += qv * VectorMath.load(k2 + 8 * c)
                    a3 += qv * VectorMath.load(k3 + 8 * c)
                }
                var d0 = a0.sum(), d1 = a1.sum(), d2 = a2.sum(), d3 = a3.sum()
                for i in (8 * chunks)..<(8 * chunks + tail) {
                    d0 += qh[i] * k0[i]
                    d1 += qh[i] * k1[i]
                    d2 += qh[i] * k2[i]
                    d3 += qh[i] * k3[i]
                }
                s[j] = scale * d0
                s[j + 1] = scale * d1
                s[j + 2] = scale * d2
                s[j + 3] = scale * d3
                j += 4
            }
            while j < n {
                s[j] = scale * VectorMath.dot(qh, kh + j * C, count: hs)
                j += 1
            }
            let inv = 1 / VectorMath.exp(s, s, count: n, shift: VectorMath.max(s, count: n))
            // out = Σⱼ (s[j]·inv)·vⱼ in key order, 32 floats (4 vectors) at a time
            let o = out + head * hs
            var c = 0
            while c < chunks {
                let w = Swift.min(4, chunks - c)
                var y0 = Float8(repeating: 0), y1 = y0, y2 = y0, y3 = y0
                let base = vh + 8 * c
                for j in 0..<n {
                    let av = Float8(repeating: s[j] * inv), v = base + j * C
                    y0 = y0 + av * VectorMath.load(v)
                    if w > 1 { y1 = y1 + av * VectorMath.load(v + 8) }
                    if w > 2 { y2 = y2 + av * VectorMath.load(v + 16) }
                    if w > 3 { y3 = y3 + av * VectorMath.load(v + 24) }
                }
                VectorMath.store(y0, o + 8 * c)
                if w > 1 { VectorMath.store(y1, o + 8 * c + 8) }
                if w > 2 { VectorMath.store(y2, o + 8 * c + 16) }
                if w > 3 { VectorMath.store(y3, o + 8 * c + 24) }
                c += w
            }
            for i in (8 * chunks)..<hs {
                var y: Float = 0
                for j in 0..<n { y += s[j] * inv * vh[j * C + i] }
                o[i] = y
            }
        }
    }

    // MARK: GELU (tanh approximation, as GPT-2)

    /// out = gelu(inp); `gate` (or nil) receives σ(2u) for `geluBackward`.
    @inline(__always)
    static func geluForward(_ out: FMut, gate: FMut?, _ inp: FPtr, N: Int) {
        VectorMath.gelu(out, gate: gate, inp, count: N)
    }

    /// dinp = gelu'(inp) · dout from the forward pass's gate (written, not accumulated;
    /// dinp may alias dout).
    @inline(__always)
    static func geluBackward(_ dinp: FMut, _ inp: FPtr, gate: FPtr, _ dout: FPtr, N: Int) {
        VectorMath.geluBackward(dinp, inp, gate: gate, dout, count: N)
    }

    // MARK: output head

    /// logits[N, V] = inp[N, C] · wteᵀ; also writes each row's log-sum-exp and its
    /// softmax probabilities `probs[N, V]` (which the loss and its gradient reuse).
    static func headForward(
        _ logits: FMut, _ lse: FMut, _ probs: FMut, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int
    ) {
        sgemm(transB: true, N, V, C, inp, lda: C, wte, ldb: C, beta: 0, logits, ldc: V)
        for n in 0..<N {
            let z = logits + n * V, p = probs + n * V
            let mx = VectorMath.max(z, count: V)
            let sum = VectorMath.exp(p, z, count: V, shift: mx)
            lse[n] = mx + logf(sum)
            VectorMath.scale(p, count: V, by: 1 / sum)
        }
    }

    /// dinp (=) dlogits · wte ; dwte += dlogitsᵀ · inp
    static func headBackward(
        _ dinp: FMut, _ dwte: FMut, _ dlogits: FPtr, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int
    ) {
        sgemm(N, C, V, dlogits, lda: V, wte, ldb: C, beta: 0, dinp, ldc: C)
        sgemm(transA: true, V, C, N, dlogits, lda: V, inp, ldb: C, beta: 1, dwte, ldc: C)
    }
}
