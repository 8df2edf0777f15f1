// The register-blocked SIMD product kernel (below) against OpenBLAS's cblas_sgemm on
// the ladder's linear-layer shapes: forward (out = inp · wᵀ, w transposed once per call),
// input gradient (dinp = dout · w) and weight gradient (dw += doutᵀ · inp). Not part of the
// package: the README's engine section quotes its ratios (OpenBLAS kept the products).
//   swiftc -O -target-cpu haswell -import-objc-header Sources/COpenBLAS/shim.h analysis/small_gemm.swift -lopenblas -o /tmp/small_gemm
//   OPENBLAS_NUM_THREADS=1 /tmp/small_gemm
import Foundation
func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
func buf(_ n: Int) -> UnsafeMutablePointer<Float> { let p = UnsafeMutablePointer<Float>.allocate(capacity: n); for i in 0..<n { p[i] = Float.random(in: -1...1) }; return p }
// shapes: name, kind (fwd: C=A·Wᵀ, dinp: C=dout·W, dw: C+=doutᵀ·inp), N tokens, IN, OUT
func bench(_ kind: String, T: Int, IN: Int, OUT: Int) {
    let inp = buf(T * IN), w = buf(OUT * IN), dout = buf(T * OUT), out = buf(T * OUT), out2 = buf(T * OUT)
    let dinp = buf(T * IN), dinp2 = buf(T * IN), dw = buf(OUT * IN), dw2 = buf(OUT * IN), wt = buf(OUT * IN)
    let flops = 2.0 * Double(T * IN * OUT)
    func blas() {
        switch kind {
        case "fwd": cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(OUT), Int32(IN), 1, inp, Int32(IN), w, Int32(IN), 0, out, Int32(OUT))
        case "dinp": cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(IN), Int32(OUT), 1, dout, Int32(OUT), w, Int32(IN), 0, dinp, Int32(IN))
        default: cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(OUT), Int32(IN), Int32(T), 1, dout, Int32(OUT), inp, Int32(IN), 1, dw, Int32(IN))
        }
    }
    func mine() {
        switch kind {
        case "fwd":
            for o in 0..<OUT { for i in 0..<IN { wt[i * OUT + o] = w[o * IN + i] } }
            gemm(T, OUT, IN, inp, sam: IN, sak: 1, wt, ldb: OUT, out2, ldc: OUT, accumulate: false)
        case "dinp": gemm(T, IN, OUT, dout, sam: OUT, sak: 1, w, ldb: IN, dinp2, ldc: IN, accumulate: false)
        default: gemm(OUT, IN, T, dout, sam: 1, sak: OUT, inp, ldb: IN, dw2, ldc: IN, accumulate: true)
        }
    }
    // correctness
    for i in 0..<OUT*IN { dw[i] = 0; dw2[i] = 0 }
    blas(); mine()
    var md: Float = 0
    switch kind { case "fwd": for i in 0..<T*OUT { md = max(md, abs(out[i]-out2[i])) }
    case "dinp": for i in 0..<T*IN { md = max(md, abs(dinp[i]-dinp2[i])) }
    default: for i in 0..<OUT*IN { md = max(md, abs(dw[i]-dw2[i])) } }
    var tb: [Double] = [], tm: [Double] = []
    let reps = max(1, Int(2e8 / flops))
    for _ in 0..<7 {
        var t0 = now(); for _ in 0..<reps { blas() }; tb.append((now() - t0) / Double(reps))
        t0 = now(); for _ in 0..<reps { mine() }; tm.append((now() - t0) / Double(reps))
    }
    let b = tb.sorted()[3], m = tm.sorted()[3]
    print(String(format: "%-5@ T=%4d IN=%3d OUT=%3d  blas %6.1f GF/s  mine %6.1f GF/s  ratio %.2f  maxdiff %.1e", kind, T, IN, OUT, flops/b/1e9, flops/m/1e9, b/m, md))
}
for (d, T) in [(16, 640), (32, 640), (32, 32), (64, 640), (64, 64), (96, 1024), (128, 1024)] {
    bench("fwd", T: T, IN: d, OUT: 3 * d); bench("fwd", T: T, IN: 4 * d, OUT: d)
    bench("dinp", T: T, IN: d, OUT: 3 * d); bench("dinp", T: T, IN: d, OUT: 4 * d)
    bench("dw", T: T, IN: d, OUT: 3 * d); bench("dw", T: T, IN: 4 * d, OUT: d)
}

typealias F8 = SIMD8<Float>
@inline(__always) func ld(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
@inline(__always) func st(_ v: F8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self) }

/// C[M,N] (= or +=) Σ_k A(m,k)·B[k,n]; A(m,k) = a[m*sam + k*sak]; B row-major ldb; N % 8 == 0.
@inline(never)
func gemm(_ M: Int, _ N: Int, _ K: Int, _ a: UnsafePointer<Float>, sam: Int, sak: Int,
          _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    var j = 0
    while j + 16 <= N {
        var m = 0
        while m + 4 <= M {
            let c0 = c + m * ldc + j, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
            var a00 = F8(), a01 = F8(), a10 = F8(), a11 = F8(), a20 = F8(), a21 = F8(), a30 = F8(), a31 = F8()
            if accumulate {
                a00 = ld(c0); a01 = ld(c0 + 8); a10 = ld(c1); a11 = ld(c1 + 8)
                a20 = ld(c2); a21 = ld(c2 + 8); a30 = ld(c3); a31 = ld(c3 + 8)
            }
            var pa = a + m * sam
            var pb = b + j
            for _ in 0..<K {
                let b0 = ld(pb), b1 = ld(pb + 8)
                let x0 = F8(repeating: pa[0]), x1 = F8(repeating: pa[sam]), x2 = F8(repeating: pa[2 * sam]), x3 = F8(repeating: pa[3 * sam])
                a00 += x0 * b0; a01 += x0 * b1
                a10 += x1 * b0; a11 += x1 * b1
                a20 += x2 * b0; a21 += x2 * b1
                a30 += x3 * b0; a31 += x3 * b1
                pa += sak; pb += ldb
            }
            st(a00, c0); st(a01, c0 + 8); st(a10, c1); st(a11, c1 + 8)
            st(a20, c2); st(a21, c2 + 8); st(a30, c3); st(a31, c3 + 8)
            m += 4
        }
        while m < M {
            let c0 = c + m * ldc + j
            var a00 = accumulate ? ld(c0) : F8(), a01 = accumulate ? ld(c0 + 8) : F8()
            var pa = a + m * sam, pb = b + j
            for _ in 0..<K {
                let x0 = F8(repeating: pa[0]); a00 += x0 * ld(pb); a01 += x0 * ld(pb + 8); pa += sak; pb += ldb
            }
            st(a00, c0); st(a01, c0 + 8); m += 1
        }
        j += 16
    }
    while j + 8 <= N {
        for m in 0..<M {
            let c0 = c + m * ldc + j
            var a00 = accumulate ? ld(c0) : F8()
            var pa = a + m * sam, pb = b + j
            for _ in 0..<K { a00 += F8(repeating: pa[0]) * ld(pb); pa += sak; pb += ldb }
            st(a00, c0)
        }
        j += 8
    }
}
