import KernelsPortable
import PolicyModel
import RLCommon
import Testing

@Suite struct GradientTests {
    /// Loss of the current parameters on a fixed batch.
    func loss(_ m: Transformer, _ batch: (tokens: [Int32], targets: [Int32], weights: [Float]), B: Int, T: Int) throws -> Double {
        try m.forward(tokens: batch.tokens, batch: B, length: T)
        return try m.setWeightedNLLGradient(targets: batch.targets, weights: batch.weights)
    }

    @Test(arguments: NormKind.allCases)
    func everyTensorMatchesFiniteDifferences(norm: NormKind) throws {
        let cfg = tinyConfig(norm)
        let m = try Transformer(config: cfg, seed: 3)
        randomise(m, seed: 4)
        let B = 3, T = 6
        let batch = randomBatch(vocab: cfg.vocab, B: B, T: T, seed: 5)
        _ = try loss(m, batch, B: B, T: T)
        m.zeroGradients()
        m.backward()
        let analytic = Array(m.gradients)
        let p = m.parameters
        var rng = SeededRNG(seed: 6)
        // Steps of L2 length 1e-2 along unit directions: Float32 forward passes put a noise
        // floor near 1e-4 under each finite difference, and the O(eps²) truncation error
        // stays below 0.1%; a wrong gradient is off by far more than the slack.
        let eps: Float = 1e-2
        func close(_ fd: Double, _ an: Double) -> Bool { abs(fd - an) <= 1e-2 * max(abs(fd), abs(an)) + 5e-4 }
        for s in m.specs {
            // Directional derivatives over the whole tensor: along sign(g), where the
            // signal is the gradient's L1 norm, and along a random ±1 direction.
            let unit = 1 / Float(s.count).squareRoot()
            let signDir = (0..<s.count).map { analytic[s.offset + $0] >= 0 ? unit : -unit }
            let randomDir = (0..<s.count).map { _ in Float(rng.below(2) * 2 - 1) * unit }
            for dir in [signDir, randomDir] {
                for i in 0..<s.count { p[s.offset + i] += eps * dir[i] }
                let up = try loss(m, batch, B: B, T: T)
                for i in 0..<s.count { p[s.offset + i] -= 2 * eps * dir[i] }
                let down = try loss(m, batch, B: B, T: T)
                for i in 0..<s.count { p[s.offset + i] += eps * dir[i] }
                let fd = (up - down) / (2 * Double(eps))
                var an = 0.0
                for i in 0..<s.count { an += Double(analytic[s.offset + i]) * Double(dir[i]) }
                #expect(close(fd, an), "\(s.name): finite difference \(fd) vs analytic \(an)")
            }

            // The single entry with the largest analytic gradient.
            var k = 0
            for i in 0..<s.count where abs(analytic[s.offset + i]) > abs(analytic[s.offset + k]) { k = i }
            let idx = s.offset + k
            let saved = p[idx]
            p[idx] = saved + eps
            let u1 = try loss(m, batch, B: B, T: T)
            p[idx] = saved - eps
            let d1 = try loss(m, batch, B: B, T: T)
            p[idx] = saved
            let fd1 = (u1 - d1) / (2 * Double(eps))
            let an1 = Double(analytic[idx])
            #expect(close(fd1, an1), "\(s.name)[\(k)]: finite difference \(fd1) vs analytic \(an1)")
        }
    }

    @Test func maskedPositionsGetNoGradient() throws {
        let cfg = tinyConfig(.layerNorm)
        let m = try Transformer(config: cfg, seed: 1)
        randomise(m, seed: 2)
        let tokens: [Int32] = [1, 2, 3, 4, 5, 6]
        try m.forward(tokens: tokens, batch: 1, length: 6)
        let loss = try m.setWeightedNLLGradient(targets: [2, 3, -1, 5, 6, -1], weights: [1, 0, 1, 0, 0, 1])
        let lp = try m.logProbs(targets: [2, 3, -1, 5, 6, -1])
        #expect(abs(loss + Double(lp[0])) < 1e-5)
        let g = m.logitGradient
        for n in 1..<6 {
            for v in 0..<cfg.vocab { #expect(g[n * cfg.vocab + v] == 0) }
        }
    }

    /// Activations are laid out once for the largest batch seen: a smaller batch run inside
    /// them after a larger one gives bitwise the logits and gradients of a fresh model.
    @Test func smallerBatchAfterALargerOneMatchesAFreshModel() throws {
        let cfg = tinyConfig(.layerNorm)
        let used = try Transformer(config: cfg, seed: 1), fresh = try Transformer(config: cfg, seed: 1)
        randomise(used, seed: 2)
        randomise(fresh, seed: 2)
        let big = randomBatch(vocab: cfg.vocab, B: 5, T: 6, seed: 3)
        try used.forward(tokens: big.tokens, batch: 5, length: 6)
        try used.setWeightedNLLGradient(targets: big.targets, weights: big.weights)
        used.backward()
        let small = randomBatch(vocab: cfg.vocab, B: 2, T: 4, seed: 4)
        for m in [used, fresh] {
            try m.forward(tokens: small.tokens, batch: 2, length: 4)
            m.zeroGradients()
            try m.setWeightedNLLGradient(targets: small.targets, weights: small.weights)
            m.backward()
        }
        #expect(used.logits.map(\.bitPattern) == fresh.logits.map(\.bitPattern))
        #expect(bits(used.gradients) == bits(fresh.gradients))
    }

    /// Norms run four rows at a time and the last rows of a batch one by one; a row's
    /// outputs, mean, rstd and input gradient are bitwise those of the row run alone, and the
    /// parameter gradients those of the rows accumulated one after another (11 rows: two
    /// groups of four and three alone; C = 13 is not a multiple of any vector width).
    @Test(arguments: NormKind.allCases)
    func normRowsAreBitwiseTheRowsAlone(norm: NormKind) {
        let N = 11, C = 13
        var rng = SeededRNG(seed: 8)
        func draw(_ n: Int, _ s: Double = 1, _ m: Double = 0) -> [Float] { (0..<n).map { _ in Float(m + s * rng.gaussian()) } }
        let x = draw(N * C, 2, 0.5), dout = draw(N * C), w = draw(C, 0.3, 1), bias = draw(C)
        var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
        Kernels.normForward(norm, &out, &mean, &rstd, x, w, bias, N: N, C: C, eps: 1e-5)
        var dinp = draw(N * C), dw = draw(C), db = draw(C)
        var dinpRef = dinp, dwRef = dw, dbRef = db
        Kernels.normBackward(norm, &dinp, &dw, &db, dout, x, w, mean, rstd, N: N, C: C)
        for n in 0..<N {
            let row = Array(x[(n * C)..<((n + 1) * C)]), d = Array(dout[(n * C)..<((n + 1) * C)])
            var o = [Float](repeating: 0, count: C), m: [Float] = [0], r: [Float] = [0]
            Kernels.normForward(norm, &o, &m, &r, row, w, bias, N: 1, C: C, eps: 1e-5)
            #expect(o.map(\.bitPattern) == out[(n * C)..<((n + 1) * C)].map(\.bitPattern), "row \(n)")
            #expect(m[0].bitPattern == mean[n].bitPattern && r[0].bitPattern == rstd[n].bitPattern, "row \(n)")
            var di = Array(dinpRef[(n * C)..<((n + 1) * C)])
            Kernels.normBackward(norm, &di, &dwRef, &dbRef, d, row, w, m, r, N: 1, C: C)
            dinpRef.replaceSubrange((n * C)..<((n + 1) * C), with: di)
        }
        #expect(dinp.map(\.bitPattern) == dinpRef.map(\.bitPattern))
        #expect(dw.map(\.bitPattern) == dwRef.map(\.bitPattern))
        #expect(db.map(\.bitPattern) == dbRef.map(\.bitPattern))
    }
}
