import COpenBLAS
import Foundation

// One function per layer, forward and backward, in the style of llm.c. Every function
// works on raw row-major float buffers; every matrix product goes through cblas_sgemm,
// except the single-query attention of cached sampling (`decodeAttention`: one query
// against each row's own cache, SIMD dot products and weighted sums). Backward functions
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
    public static func normForward(
        _ kind: NormKind, _ out: UnsafeMutablePointer<Float>, _ mean: UnsafeMutablePointer<Float>,
        _ rstd: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
        _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, N: Int, C: Int, eps: Float
    ) {
        let invC = 1 / Float(C)
        var n = 0
        // Four rows at a time: each row's sums run in the same order as one row alone
        // (bitwise the same), four independent chains at once.
        while n + 4 <= N {
            let x0 = inp + n * C, x1 = x0 + C, x2 = x1 + C, x3 = x2 + C
            var m0: Float = 0, m1: Float = 0, m2: Float = 0, m3: Float = 0
            if kind == .layerNorm {
                for i in 0..<C {
                    m0 += x0[i]
                    m1 += x1[i]
                    m2 += x2[i]
                    m3 += x3[i]
                }
                m0 *= invC
                m1 *= invC
                m2 *= invC
                m3 *= invC
            }
            var v0: Float = 0, v1: Float = 0, v2: Float = 0, v3: Float = 0
            for i in 0..<C {
                let d0 = x0[i] - m0, d1 = x1[i] - m1, d2 = x2[i] - m2, d3 = x3[i] - m3
                v0 += d0 * d0
                v1 += d1 * d1
                v2 += d2 * d2
                v3 += d3 * d3
            }
            normRow(out + n * C, x0, w, bias, C: C, mean: m0, variance: v0, invC: invC, eps: eps, &mean[n], &rstd[n])
            normRow(out + (n + 1) * C, x1, w, bias, C: C, mean: m1, variance: v1, invC: invC, eps: eps, &mean[n + 1], &rstd[n + 1])
            normRow(out + (n + 2) * C, x2, w, bias, C: C, mean: m2, variance: v2, invC: invC, eps: eps, &mean[n + 2], &rstd[n + 2])
            normRow(out + (n + 3) * C, x3, w, bias, C: C, mean: m3, variance: v3, invC: invC, eps: eps, &mean[n + 3], &rstd[n + 3])
            n += 4
        }
        while n < N {
            let x = inp + n * C
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
            normRow(out + n * C, x, w, bias, C: C, mean: m, variance: v, invC: invC, eps: eps, &mean[n], &rstd[n])
            n += 1
        }
    }

    /// One row of `normForward` from its mean and its sum of squared deviations.
    @inline(__always)
    static func normRow(
        _ o: FMut, _ x: FPtr, _ w: FPtr, _ bias: FPtr?, C: Int, mean m: Float, variance v: Float,
        invC: Float, eps: Float, _ mean: inout Float, _ rstd: inout Float
    ) {
        let s = 1 / (v * invC + eps).squareRoot()
        if let bias {
            for i in 0..<C { o[i] = (x[i] - m) * s * w[i] + bias[i] }
        } else {
            for i in 0..<C { o[i] = (x[i] - m) * s * w[i] }
        }
        mean = m
        rstd = s
    }

    /// Backward of `normForward`; accumulates into dinp, dw and dbias.
    public static func normBackward(
        _ kind: NormKind, _ dinp: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
        _ dbias: UnsafeMutablePointer<Float>?, _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>,
        _ w: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, N: Int, C: Int
    ) {
        let invC = 1 / Float(C)
        var n = 0
        // The two row sums of four rows at a time (each in its own order, as alone); the
        // parameter gradients then accumulate row after row, as before.
        while n + 4 <= N {
            let x0 = inp + n * C, x1 = x0 + C, x2 = x1 + C, x3 = x2 + C
            let d0 = dout + n * C, d1 = d0 + C, d2 = d1 + C, d3 = d2 + C
            let m0 = mean[n], m1 = mean[n + 1], m2 = mean[n + 2], m3 = mean[n + 3]
            let s0 = rstd[n], s1 = rstd[n + 1], s2 = rstd[n + 2], s3 = rstd[n + 3]
            var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
            var b0: Float = 0, b1: Float = 0, b2: Float = 0, b3: Float = 0
            for i in 0..<C {
                let wi = w[i]
                let dn0 = wi * d0[i], dn1 = wi * d1[i], dn2 = wi * d2[i], dn3 = wi * d3[i]
                a0 += dn0
                a1 += dn1
                a2 += dn2
                a3 += dn3
                b0 += dn0 * ((x0[i] - m0) * s0)
                b1 += dn1 * ((x1[i] - m1) * s1)
                b2 += dn2 * ((x2[i] - m2) * s2)
                b3 += dn3 * ((x3[i] - m3) * s3)
            }
            normBackwardRow(kind, dinp + n * C, dw, dbias, d0, x0, w, m0, s0, a0, b0, invC: invC, C: C)
            normBackwardRow(kind, dinp + (n + 1) * C, dw, dbias, d1, x1, w, m1, s1, a1, b1, invC: invC, C: C)
            normBackwardRow(kind, dinp + (n + 2) * C, dw, dbias, d2, x2, w, m2, s2, a2, b2, invC: invC, C: C)
            normBackwardRow(kind, dinp + (n + 3) * C, dw, dbias, d3, x3, w, m3, s3, a3, b3, invC: invC, C: C)
            n += 4
        }
        while n < N {
            let x = inp + n * C, d = dout + n * C
            let m = mean[n], s = rstd[n]
            var a: Float = 0, b: Float = 0
            for i in 0..<C {
                let dnorm = w[i] * d[i]
                a += dnorm
                b += dnorm * ((x[i] - m) * s)
            }
            normBackwardRow(kind, dinp + n * C, dw, dbias, d, x, w, m, s, a, b, invC: invC, C: C)
            n += 1
        }
    }

    /// One row of `normBackward` from its sums Σ dnorm and Σ dnorm·norm.
    @inline(__always)
    static func normBackwardRow(
        _ kind: NormKind, _ di: FMut, _ dw: FMut, _ dbias: FMut?, _ d: FPtr, _ x: FPtr, _ w: FPtr,
        _ m: Float, _ s: Float, _ sumDnorm: Float, _ sumDnormNorm: Float, invC: Float, C: Int
    ) {
        let dnormMean = kind == .rmsNorm ? 0 : sumDnorm * invC
        let dnormNormMean = sumDnormNorm * invC
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

    /// Row stride of the attention matrices: T rounded up to whole vectors, so that every
    /// row's last partial vector can be read and written whole.
    @inline(__always)
    static func attentionStride(_ T: Int) -> Int { (T + 7) & ~7 }

    /// Multi-head causal self-attention. `qkv[B, T, 3C]` holds q, k, v; `att[B, NH, T, Tp]`
    /// (Tp = `attentionStride(T)`) receives the softmax probabilities (zero above the
    /// diagonal and in the padding); `out[B, T, C]` the heads' outputs side by side.
    static func attentionForward(
        _ out: FMut, _ att: FMut, _ qkv: FPtr, B: Int, T: Int, C: Int, NH: Int
    ) {
        let hs = C / NH
        let scale = 1 / Float(hs).squareRoot()
        let C3 = 3 * C, Tp = attentionStride(T)
        for b in 0..<B {
            for h in 0..<NH {
                let q = qkv + b * T * C3 + h * hs
                let k = q + C, v = q + 2 * C
                let a = att + (b * NH + h) * T * Tp
                sgemm(transB: true, T, T, hs, alpha: scale, q, lda: C3, k, ldb: C3, beta: 0, a, ldc: Tp)
                for t in 0..<T { causalSoftmaxRow(a + t * Tp, count: t + 1, width: Tp) }
                sgemm(T, hs, T, a, lda: Tp, v, ldb: C3, beta: 0, out + b * T * C + h * hs, ldc: C)
            }
        }
    }

    /// Softmax of a row's first `count` scores in place, zeros in the rest of its `width`
    /// slots: bitwise `VectorMath.softmax` followed by zero-filling. When `width` is a
    /// multiple of 8, the last partial vector is read and written whole (lanes past `count`
    /// masked on read, overwritten by the zeros after), instead of element by element.
    @inline(__always)
    public static func causalSoftmaxRow(_ row: UnsafeMutablePointer<Float>, count n: Int, width: Int) {
        guard width % 8 == 0 else {
            VectorMath.softmax(row, count: n)
            (row + n).update(repeating: 0, count: width - n)
            return
        }
        let full = n & ~7, rem = n - full
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        let tailMask = lane .>= SIMD8<Int32>(repeating: Int32(rem))
        // max: VectorMath.max's vectors, then its scalar tail
        var m = Float8(repeating: -.infinity)
        var i = 0
        while i < full {
            m = VectorMath.vmax(m, VectorMath.load(row + i))
            i += 8
        }
        var mx = VectorMath.horizontalMax(m)
        for j in full..<n where row[j] > mx { mx = row[j] }
        // exp and its sum: VectorMath.exp's lanes, its vector sum, then the tail in order
        let shift = Float8(repeating: mx)
        var acc = Float8(repeating: 0)
        i = 0
        while i < full {
            let e = VectorMath.exp(VectorMath.load(row + i) - shift)
            VectorMath.store(e, row + i)
            acc += e
            i += 8
        }
        var sum = acc.sum()
        if rem > 0 {
            let e = VectorMath.exp(VectorMath.load(row + full).replacing(with: 0, where: tailMask) - shift)
            VectorMath.store(e, row + full)
            for j in 0..<rem { sum += e[j] }
        }
        let inv = Float8(repeating: 1 / sum)
        i = 0
        while i < n {
            VectorMath.store(VectorMath.load(row + i) * inv, row + i)
            i += 8
        }
        (row + n).update(repeating: 0, count: width - n)
    }

    /// Backward of `attentionForward`: writes (not accumulates) dqkv; `scratch[T, Tp]` is
    /// a work buffer.
    static func attentionBackward(
        _ dqkv: FMut, _ scratch: FMut, _ dout: FPtr, _ qkv: FPtr, _ att: FPtr,
        B: Int, T: Int, C: Int, NH: Int
    ) {
        let hs = C / NH
        let scale = 1 / Float(hs).squareRoot()
        let C3 = 3 * C, Tp = attentionStride(T)
        for b in 0..<B {
            for h in 0..<NH {
                let q = qkv + b * T * C3 + h * hs
                let k = q + C, v = q + 2 * C
                let dq = dqkv + b * T * C3 + h * hs
                let dk = dq + C, dv = dq + 2 * C
                let a = att + (b * NH + h) * T * Tp
                let d = dout + b * T * C + h * hs
                // dA = dout · vᵀ ; dv = Aᵀ · dout
                sgemm(transB: true, T, T, hs, d, lda: C, v, ldb: C3, beta: 0, scratch, ldc: Tp)
                sgemm(transA: true, T, hs, T, a, lda: Tp, d, ldb: C, beta: 0, dv, ldc: C3)
                // softmax backward, row by row: dS = A ⊙ (dA − Σ A·dA)
                for t in 0..<T {
                    let ar = a + t * Tp, dr = scratch + t * Tp
                    let dot = VectorMath.dot(ar, dr, count: t + 1)
                    for s in 0...t { dr[s] = ar[s] * (dr[s] - dot) }
                    (dr + t + 1).update(repeating: 0, count: T - t - 1)
                }
                // dq = scale · dS · k ; dk = scale · dSᵀ · q
                sgemm(T, hs, T, alpha: scale, scratch, lda: Tp, k, ldb: C3, beta: 0, dq, ldc: C3)
                sgemm(transA: true, T, hs, T, alpha: scale, scratch, lda: Tp, q, ldb: C3, beta: 0, dk, ldc: C3)
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
