import Foundation
import RLCommon
import ResultSchema
import Testing

@testable import RLTraining

/// Every loss term on single logit rows: its gradient against central finite differences
/// of its own loss, and its loss against an independent formula. Rows are sharp (logit
/// std 2.5, teacher rows std 3 and unrelated to the student), ratios sit on both sides of
/// 1 ± ε and above the IS cap, advantages take both signs.
@Suite struct LossTermTests {
    static let V = 23

    /// A random logit row with standard deviation `sd`.
    static func logits(_ rng: inout SeededRNG, sd: Double) -> [Double] { (0..<V).map { _ in sd * rng.gaussian() } }

    /// log-softmax, softmax and entropy of a row, in Double.
    static func softmax(_ z: [Double]) -> (lp: [Double], p: [Double], h: Double) {
        let m = z.max() ?? 0
        let lse = m + log(z.reduce(0) { $0 + exp($1 - m) })
        let lp = z.map { $0 - lse }, p = lp.map { exp($0) }
        return (lp, p, -zip(p, lp).reduce(0) { $0 + $1.0 * $1.1 })
    }

    /// One token's inputs apart from the student's logits.
    struct Fixed {
        var target = 3
        /// log π_θ(target) − log π_behavior(target) at the unperturbed logits: log ρ.
        var logRatio = 0.0
        /// log π_ref(target) − log π_θ(target) at the unperturbed logits.
        var refGap = 0.0
        var advantage = 1.0
        var teacher: [Double] = []
    }

    /// The term's loss and row gradient at logits `z` (behavior and reference log-probs are
    /// fixed numbers, so only the student moves under finite differences).
    static func evaluate(_ term: any LossTerm, z: [Double], z0: [Double], _ f: Fixed, scale: Double) -> (loss: Double, grad: [Double]) {
        let (lp, p, h) = softmax(z)
        let lp0 = softmax(z0).lp[f.target]
        let t = f.teacher.isEmpty ? [Double](repeating: 0, count: V) : softmax(f.teacher).lp
        let tlp = t.map { Float($0) }, tp = t.map { Float(exp($0)) }
        return lp.withUnsafeBufferPointer { lpb in
            p.withUnsafeBufferPointer { pb in
                tlp.withUnsafeBufferPointer { tlpb in
                    tp.withUnsafeBufferPointer { tpb in
                        let view = TokenView(
                            vocab: V, target: f.target, logProb: Float(lp[f.target]), behaviorLogProb: Float(lp0 - f.logRatio),
                            referenceLogProb: Float(lp0 + f.refGap), advantage: f.advantage, logProbs: lpb, probs: pb, entropy: h,
                            teacherLogProbs: tlpb, teacherProbs: tpb)
                        let r = term.rowLossAndGradient(view, scale: scale)
                        return (r.loss, r.gradient)
                    }
                }
            }
        }
    }

    /// Checks the analytic row gradient against central differences; returns the loss.
    @discardableResult
    static func checkGradient(_ term: any LossTerm, _ f: Fixed, seed: UInt64, sourceLocation: SourceLocation = #_sourceLocation) -> Double {
        var rng = SeededRNG(seed: seed)
        let z = logits(&rng, sd: 2.5)
        let scale = 0.37
        let (loss, grad) = evaluate(term, z: z, z0: z, f, scale: scale)
        let eps = 1e-3
        var worst = 0.0
        let size = max(1e-3, grad.map { abs($0) }.max() ?? 0)
        for v in 0..<V {
            var up = z, down = z
            up[v] += eps
            down[v] -= eps
            let fd = (evaluate(term, z: up, z0: z, f, scale: scale).loss - evaluate(term, z: down, z0: z, f, scale: scale).loss) / (2 * eps)
            worst = max(worst, abs(fd - grad[v]))
        }
        #expect(worst <= 2e-3 * size, "\(term): worst |fd − analytic| \(worst), gradient scale \(size)", sourceLocation: sourceLocation)
        return loss
    }

    @Test(arguments: [0.5, 0.9, 1.1, 1.5, 3.0], [1.3, -0.7])
    func clippedPolicyGradient(ratio: Double, advantage: Double) {
        let term = ClippedPolicyGradient(clipLow: 0.2, clipHigh: 0.28, isCap: 2)
        let f = Fixed(target: 5, logRatio: log(ratio), advantage: advantage)
        let loss = Self.checkGradient(term, f, seed: 1)
        // The loss itself: −min(ρA, clip(ρ)A), continued past the cap as −A·c·(1 + log(ρ/c)).
        let rho = ratio, a = advantage
        var expected = -min(rho * a, min(max(rho, 0.8), 1.28) * a)
        if rho * a <= min(max(rho, 0.8), 1.28) * a && rho > 2 { expected = -a * 2 * (1 + log(rho / 2)) }
        #expect(abs(loss - 0.37 * expected) < 1e-5 * max(1, abs(expected)), "loss \(loss) vs \(0.37 * expected)")
        // Which branch: clipped tokens carry no gradient, capped ones carry c·A.
        let pg = term.policyGradient(ratio: rho, advantage: a)
        switch (rho, a > 0) {
        case (0.5, false), (1.5, true), (3.0, true): #expect(pg.clipped && pg.weight == 0)
        case (3.0, false): #expect(!pg.clipped && pg.weight == 2 * a)
        default: #expect(!pg.clipped && abs(pg.weight - rho * a) < 1e-12)
        }
    }

    @Test(arguments: [1.0, -0.5])
    func supervisedNLL(advantage: Double) {
        let loss = Self.checkGradient(SupervisedNLL(coef: 1.7), Fixed(target: 7, advantage: advantage), seed: 2)
        var rng = SeededRNG(seed: 2)
        let lp = Self.softmax(Self.logits(&rng, sd: 2.5)).lp[7]
        #expect(abs(loss - 0.37 * -1.7 * advantage * lp) < 1e-5)
    }

    @Test(arguments: [-1.5, 2.0])
    func referenceKL(gap: Double) {
        let loss = Self.checkGradient(ReferenceKL(coef: 0.8), Fixed(target: 2, refGap: gap, advantage: 0), seed: 3)
        // k3 with r = log π_ref − log π_θ = gap: β(eʳ − 1 − r).
        #expect(abs(loss - 0.37 * 0.8 * (exp(gap) - 1 - gap)) < 1e-5)
    }

    @Test func entropyBonus() {
        let loss = Self.checkGradient(EntropyBonus(coef: 0.6), Fixed(target: 1, advantage: 0), seed: 4)
        var rng = SeededRNG(seed: 4)
        #expect(abs(loss - 0.37 * -0.6 * Self.softmax(Self.logits(&rng, sd: 2.5)).h) < 1e-9)
    }

    @Test(arguments: [Divergence.reverseKL, .forwardKL, .jsd(beta: 0.1), .jsd(beta: 0.5), .jsd(beta: 0.9)])
    func teacherDivergence(divergence: Divergence) {
        var trng = SeededRNG(seed: 50)
        let teacher = Self.logits(&trng, sd: 3)
        let loss = Self.checkGradient(
            TeacherDivergence(coef: 1.3, divergence: divergence), Fixed(target: 0, advantage: 0, teacher: teacher), seed: 5)
        // The value, from the definitions.
        var rng = SeededRNG(seed: 5)
        let s = Self.softmax(Self.logits(&rng, sd: 2.5)), t = Self.softmax(teacher)
        func kl(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + ($1.0 > 0 ? $1.0 * log($1.0 / $1.1) : 0) } }
        let expected: Double = switch divergence {
        case .reverseKL: kl(s.p, t.p)
        case .forwardKL: kl(t.p, s.p)
        case .jsd(let b):
            b * kl(t.p, zip(t.p, s.p).map { b * $0 + (1 - b) * $1 }) + (1 - b) * kl(s.p, zip(t.p, s.p).map { b * $0 + (1 - b) * $1 })
        }
        #expect(expected > 0.05, "the teacher is far from the student")
        #expect(abs(loss - 1.3 * 0.37 * expected) < 1e-5 * max(1, expected), "\(divergence): \(loss) vs \(1.3 * 0.37 * expected)")
    }

    /// The sampled-token form is a policy gradient with advantage log π_T(y) − log π_θ(y):
    /// averaged over y ~ π_θ, its gradient is exactly the full reverse KL's gradient and its
    /// reported loss is the reverse KL.
    @Test func sampledTokenDistillationIsTheReverseKLInExpectation() {
        var trng = SeededRNG(seed: 50), rng = SeededRNG(seed: 5)
        let teacher = Self.logits(&trng, sd: 3), z = Self.logits(&rng, sd: 2.5)
        let s = Self.softmax(z)
        var meanGrad = [Double](repeating: 0, count: Self.V), meanLoss = 0.0
        for y in 0..<Self.V {
            let r = Self.evaluate(SampledTokenDistillation(coef: 1.3), z: z, z0: z, Fixed(target: y, advantage: 0, teacher: teacher), scale: 0.37)
            for v in 0..<Self.V { meanGrad[v] += s.p[y] * r.grad[v] }
            meanLoss += s.p[y] * r.loss
        }
        let full = Self.evaluate(
            TeacherDivergence(coef: 1.3, divergence: .reverseKL), z: z, z0: z, Fixed(target: 0, advantage: 0, teacher: teacher), scale: 0.37)
        let worst = zip(meanGrad, full.grad).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-6 * max(1, full.grad.map(abs).max() ?? 0), "E[sampled gradient] vs reverse-KL gradient: \(worst)")
        #expect(abs(meanLoss - full.loss) < 1e-6 * max(1, full.loss) && full.loss > 0.05)
        // One sampled token is not the full gradient (it is an estimate).
        let one = Self.evaluate(SampledTokenDistillation(coef: 1.3), z: z, z0: z, Fixed(target: 0, advantage: 0, teacher: teacher), scale: 0.37)
        #expect(zip(one.grad, full.grad).contains { abs($0 - $1) > 1e-3 })
    }

    /// A token the trainer does not distil (no teacher row) gets nothing from a teacher term.
    @Test(arguments: [
        TeacherDivergence(coef: 1, divergence: .reverseKL) as any LossTerm, TeacherDivergence(coef: 1, divergence: .jsd(beta: 0.5)),
        SampledTokenDistillation(coef: 1),
    ])
    func aTokenWithoutATeacherRowIsNotDistilled(term: any LossTerm) {
        var rng = SeededRNG(seed: 9)
        let (lp, p, h) = Self.softmax(Self.logits(&rng, sd: 2.5))
        var row = [Float](repeating: 0, count: Self.V)
        let acc = lp.withUnsafeBufferPointer { lpb in
            p.withUnsafeBufferPointer { pb in
                row.withUnsafeMutableBufferPointer { r in
                    var acc = TermAccumulator(row: r)
                    term.apply(
                        TokenView(vocab: Self.V, target: 2, logProb: Float(lp[2]), behaviorLogProb: Float(lp[2]), advantage: 1,
                                  logProbs: lpb, probs: pb, entropy: h),
                        scale: 1, &acc)
                    return acc
                }
            }
        }
        #expect(acc.loss == 0 && acc.nllWeight == 0 && acc.distilled == 0 && row.allSatisfy { $0 == 0 })
    }
}
