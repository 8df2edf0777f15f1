import COpenBLAS
import Foundation
import KernelInterface

// One function per layer, forward and backward, in the style of llm.c. Every function
// works on raw row-major float buffers of a packed batch (sequences end to end, no
// padding). The weight products go through cblas_sgemm, which runs them at this
// machine's sgemm peak even at the ladder's widths; attention is hand-written (`attendRow`:
// each query against its own causal keys only, all heads of a row, SIMD dot products and
// weighted sums), as are the element-wise passes. Backward functions accumulate (+=) into
// parameter gradients and, where noted, into input gradients.


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

public enum Kernels: EngineKernels {
    // MARK: embeddings

    /// out[n,:] = wte[tokens[n],:] + wpe[t,:], t = n's index in its own sequence.
    public static func encoderForward(
        _ out: FMut, _ tokens: UnsafePointer<Int32>, _ wte: FPtr, _ wpe: FPtr, layout: PackedLayout, C: Int
    ) {
        for n in 0..<layout.positions {
            let o = out + n * C, e = wte + Int(tokens[n]) * C, p = wpe + (n - layout.start[n]) * C
            for i in 0..<C { o[i] = e[i] + p[i] }
        }
    }

    public static func encoderBackward(
        _ dwte: FMut, _ dwpe: FMut, _ dout: FPtr, _ tokens: UnsafePointer<Int32>, layout: PackedLayout, C: Int
    ) {
        for n in 0..<layout.positions {
            let d = dout + n * C, e = dwte + Int(tokens[n]) * C, p = dwpe + (n - layout.start[n]) * C
            for i in 0..<C {
                e[i] += d[i]
                p[i] += d[i]
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
    public static func linearForward(
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
    public static func linearBackward(
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

    /// Causal attention of one query over its `t + 1` keys, every head of the row: for
    /// head h, pₕⱼ = softmax_j(scale · qₕ·kₕⱼ) and outₕ = Σⱼ pₕⱼ·vₕⱼ in key order, with
    /// key j at `k + j·ld` and its value at `v + j·ld` (+ the head's offset). Training
    /// reads keys and values from its qkv activations (ld = 3C), sampling from its cache
    /// (ld = C). `probs` receives each head's probabilities, head h's row at
    /// h · KernelInterface.attentionStride(t + 1), zeros in the padding slots.
    ///
    /// Only the causal keys are read: no masked scores, no per-head matrix product.
    /// Scores come four keys at a time (each a `VectorMath.dot`'s lanes, sum and tail);
    /// each 32-float slice of a head's output stays in registers across all keys.
    public static func attendRow(
        _ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int, t: Int, C: Int, NH: Int, scale: Float
    ) {
        let hs = C / NH, chunks = hs / 8, tail = hs - 8 * chunks, n = t + 1, width = KernelInterface.attentionStride(n)
        for head in 0..<NH {
            let qh = q + head * hs, kh = k + head * hs, vh = v + head * hs, s = probs + head * width
            var j = 0
            while j + 4 <= n {
                let k0 = kh + j * ld, k1 = k0 + ld, k2 = k1 + ld, k3 = k2 + ld
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
                s[j] = scale * VectorMath.dot(qh, kh + j * ld, count: hs)
                j += 1
            }
            causalSoftmaxRow(s, count: n, width: width)
            // out = Σⱼ pⱼ·vⱼ in key order, 32 floats (4 vectors) at a time
            let o = out + head * hs
            var c = 0
            while c < chunks {
                let w = Swift.min(4, chunks - c)
                var y0 = Float8(repeating: 0), y1 = y0, y2 = y0, y3 = y0
                let base = vh + 8 * c
                for j in 0..<n {
                    let av = Float8(repeating: s[j]), vj = base + j * ld
                    y0 = y0 + av * VectorMath.load(vj)
                    if w > 1 { y1 = y1 + av * VectorMath.load(vj + 8) }
                    if w > 2 { y2 = y2 + av * VectorMath.load(vj + 16) }
                    if w > 3 { y3 = y3 + av * VectorMath.load(vj + 24) }
                }
                VectorMath.store(y0, o + 8 * c)
                if w > 1 { VectorMath.store(y1, o + 8 * c + 8) }
                if w > 2 { VectorMath.store(y2, o + 8 * c + 16) }
                if w > 3 { VectorMath.store(y3, o + 8 * c + 24) }
                c += w
            }
            for i in (8 * chunks)..<hs {
                var y: Float = 0
                for j in 0..<n { y += s[j] * vh[j * ld + i] }
                o[i] = y
            }
        }
    }

    /// Multi-head causal self-attention over a packed batch. `qkv[N, 3C]` holds q, k, v
    /// of every position; position n attends to the positions of its own sequence up to
    /// itself (`layout.start[n]` … n). `out[N, C]` receives the heads' outputs side by side,
    /// `att` (laid out by `layout.attention`) the probabilities the backward pass reads.
    public static func attentionForward(
        _ out: UnsafeMutablePointer<Float>, _ att: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>,
        layout: PackedLayout, C: Int, NH: Int
    ) {
        let scale = 1 / Float(C / NH).squareRoot(), C3 = 3 * C
        for n in 0..<layout.positions {
            let s0 = layout.start[n], keys = qkv + s0 * C3
            attendRow(
                out + n * C, att + layout.attention[n], q: qkv + n * C3, k: keys + C, v: keys + 2 * C, ld: C3,
                t: n - s0, C: C, NH: NH, scale: scale)
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

    /// Backward of `attentionForward`: writes (not accumulates) dqkv. Position by
    /// position and head by head: dAⱼ = d·vⱼ and dvⱼ += pⱼ·d, then the softmax backward
    /// dSⱼ = pⱼ(dAⱼ − Σ p·dA), dq = scale·Σⱼ dSⱼ·kⱼ and dkⱼ += scale·dSⱼ·q, each key's
    /// gradients summed over its queries in position order. `scratch` holds one row's dA.
    public static func attentionBackward(
        _ dqkv: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
        _ qkv: UnsafePointer<Float>, _ att: UnsafePointer<Float>, layout: PackedLayout, C: Int, NH: Int
    ) {
        let hs = C / NH, scale = 1 / Float(hs).squareRoot(), C3 = 3 * C
        dqkv.update(repeating: 0, count: layout.positions * C3)
        for n in 0..<layout.positions {
            let s0 = layout.start[n], count = n - s0 + 1, width = KernelInterface.attentionStride(count)
            for h in 0..<NH {
                let p = att + layout.attention[n] + h * width, d = dout + n * C + h * hs
                let q = qkv + n * C3 + h * hs, dq = dqkv + n * C3 + h * hs
                let k = qkv + s0 * C3 + C + h * hs, v = k + C
                let dk = dqkv + s0 * C3 + C + h * hs, dv = dk + C
                var pdA: Float = 0
                for j in 0..<count {
                    let dA = VectorMath.dot(d, v + j * C3, count: hs)
                    scratch[j] = dA
                    pdA += p[j] * dA
                    VectorMath.axpy(p[j], d, dv + j * C3, count: hs)
                }
                for j in 0..<count {
                    let dS = scale * (p[j] * (scratch[j] - pdA))
                    VectorMath.axpy(dS, k + j * C3, dq, count: hs)
                    VectorMath.axpy(dS, q, dk + j * C3, count: hs)
                }
            }
        }
    }

    // MARK: GELU (tanh approximation, as GPT-2)

    /// out = gelu(inp); `gate` (or nil) receives σ(2u) for `geluBackward`.
    public static func geluForward(_ out: FMut, gate: FMut?, _ inp: FPtr, N: Int) {
        VectorMath.gelu(out, gate: gate, inp, count: N)
    }

    /// dinp = gelu'(inp) · dout from the forward pass's gate (written, not accumulated;
    /// dinp may alias dout).
    public static func geluBackward(_ dinp: FMut, _ inp: FPtr, gate: FPtr, _ dout: FPtr, N: Int) {
        VectorMath.geluBackward(dinp, inp, gate: gate, dout, count: N)
    }

    // MARK: output head

    /// logits[N, V] = inp[N, C] · wteᵀ; also writes each row's log-sum-exp and its
    /// softmax probabilities `probs[N, V]` (which the loss and its gradient reuse).
    public static func headForward(
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
    public static func headBackward(
        _ dinp: FMut, _ dwte: FMut, _ dlogits: FPtr, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int
    ) {
        sgemm(N, C, V, dlogits, lda: V, wte, ldb: C, beta: 0, dinp, ldc: C)
        sgemm(transA: true, V, C, N, dlogits, lda: V, inp, ldb: C, beta: 1, dwte, ldc: C)
    }
}

// MARK: the element-wise helpers of the sampler and the optimiser

extension Kernels {
    public static func headLogits(_ logits: FMut, _ inp: FPtr, _ wte: FPtr, N: Int, C: Int, V: Int) {
        sgemm(transB: true, N, V, C, inp, lda: C, wte, ldb: C, beta: 0, logits, ldc: V)
    }

    public static func exp(_ out: FMut, _ inp: FPtr, count: Int, shift: Float) -> Float {
        VectorMath.exp(out, inp, count: count, shift: shift)
    }

    public static func max(_ x: FPtr, count: Int) -> Float { VectorMath.max(x, count: count) }

    public static func scale(_ x: FMut, count: Int, by a: Float) { VectorMath.scale(x, count: count, by: a) }

    /// Σ x[i]² in double precision: eight lanes, then across them, then the tail.
    public static func sumOfSquares(_ x: FPtr, count: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let v = SIMD8<Double>(VectorMath.load(x + i))
            acc += v * v
            i += 8
        }
        var s = acc.sum()
        while i < count {
            s += Double(x[i]) * Double(x[i])
            i += 1
        }
        return s
    }

    /// The AdamW update, eight parameters at a time (the same operations, lane by lane, as
    /// one at a time: the tail runs them on single floats).
    public static func adamUpdate(_ p: FMut, _ M: FMut, _ V: FMut, _ g: FPtr, count: Int, _ h: AdamStep) {
        @inline(__always) func lanes<S: SIMD>(_ p: S, _ m: S, _ v: S, _ g: S) -> (p: S, m: S, v: S) where S.Scalar == Float {
            let gi = g * h.scale
            let m = h.b1 * m + (1 - h.b1) * gi
            let v = h.b2 * v + (1 - h.b2) * gi * gi
            let update = (m * h.c1) / ((v * h.c2).squareRoot() + h.eps)
            return (p - (h.lr * update + h.decay * p), m, v)
        }
        var i = 0
        while i + 8 <= count {
            let r = lanes(VectorMath.load(p + i), VectorMath.load(M + i), VectorMath.load(V + i), VectorMath.load(g + i))
            VectorMath.store(r.p, p + i)
            VectorMath.store(r.m, M + i)
            VectorMath.store(r.v, V + i)
            i += 8
        }
        while i < count {
            let r = lanes(SIMD2(repeating: p[i]), SIMD2(repeating: M[i]), SIMD2(repeating: V[i]), SIMD2(repeating: g[i]))
            p[i] = r.p[0]
            M[i] = r.m[0]
            V[i] = r.v[0]
            i += 1
        }
    }
}
