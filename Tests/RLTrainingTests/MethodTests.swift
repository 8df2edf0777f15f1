import Tasks
import Testing

@testable import RLTraining

/// A group with the given rewards; completions of the given lengths (default 3 tokens).
func group(_ rewards: [Double], lengths: [Int]? = nil, steps: [[StepScore]]? = nil) -> RolloutGroup {
    let p = Problem(family: "sort", difficulty: 1, text: "S31", steps: ["1", "3"], answer: "13")
    let rs = rewards.enumerated().map { i, r in
        let len = lengths?[i] ?? 3
        return Rollout(
            completion: Array(repeating: 4, count: len), behaviorLogProbs: Array(repeating: -1, count: len), reward: r,
            steps: steps?[i] ?? [])
    }
    return RolloutGroup(problem: p, rollouts: rs)
}

@Suite struct MethodTests {
    func close(_ a: [[Double]], _ b: [[Double]], _ tol: Double = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) < tol } }
    }

    @Test func grpoNormalisesByGroupMeanAndStd() {
        // rewards 1,0,0,1: mean 0.5, std 0.5 → ±1
        let a = GRPO().advantages(group([1, 0, 0, 1]))
        #expect(close(a, [[1, 1, 1], [-1, -1, -1], [-1, -1, -1], [1, 1, 1]]))
        // rewards 1,0,0,0: mean 0.25, std sqrt(3)/4 → 0.75/0.433 = 1.732, −0.25/0.433 = −0.577
        let b = GRPO().advantages(group([1, 0, 0, 0], lengths: [1, 1, 1, 1]))
        let r3: Double = (3 as Double).squareRoot()
        let expected: [[Double]] = [[r3], [-1 / r3], [-1 / r3], [-1 / r3]]
        #expect(close(b, expected))
        // A dead group has zero advantages.
        #expect(GRPO().advantages(group([1, 1, 1])).allSatisfy { $0.allSatisfy { $0 == 0 } })
        #expect(GRPO().objective.aggregation == .tokenMean)
    }

    @Test func drGRPODropsStdAndLengthNormalisation() {
        let a = DrGRPO().advantages(group([1, 0, 0, 0], lengths: [1, 1, 1, 1]))
        #expect(close(a, [[0.75], [-0.25], [-0.25], [-0.25]]))
        #expect(DrGRPO().objective.aggregation == .constant)
    }

    @Test func rlooUsesTheLeaveOneOutBaseline() {
        let a = RLOO().advantages(group([1, 0, 0, 1], lengths: [1, 1, 1, 1]))
        let hi: Double = 2.0 / 3, lo: Double = -2.0 / 3
        let expected: [[Double]] = [[hi], [lo], [lo], [hi]]
        #expect(close(a, expected))
        #expect(RLOO().objective.aggregation == .sequenceSum)
    }

    @Test func dapoClipsHigherAndSamplesDynamically() {
        let d = DAPO()
        #expect(d.dynamicSampling)
        #expect(d.objective.clipLow == 0.2 && d.objective.clipHigh == 0.28)
        #expect(close(d.advantages(group([1, 0])), GRPO().advantages(group([1, 0]))))
    }

    @Test func expertIterationImitatesCorrectSamplesOnly() {
        let a = ExpertIteration().advantages(group([1, 0, 1], lengths: [2, 2, 2]))
        #expect(close(a, [[1, 1], [0, 0], [1, 1]]))
        // No clipping: the ratio never cuts the supervised signal.
        #expect(ExpertIteration().objective.policyGradient(ratio: 5, advantage: 1).weight == 2)  // truncated IS cap
    }

    @Test func processRewardCreditsStepsNotSequences() {
        // Two rollouts of "1,3=13" (6 chars + EOS = 7 tokens): spans [0,2) [2,3) answer [3,6).
        func scores(_ s0: Double, _ s1: Double, _ ans: Double) -> [StepScore] {
            [StepScore(index: 0, start: 0, end: 2, score: s0, isAnswer: false),
             StepScore(index: 1, start: 2, end: 3, score: s1, isAnswer: false),
             StepScore(index: 2, start: 3, end: 6, score: ans, isAnswer: true)]
        }
        let g = group([1, 0], lengths: [7, 7], steps: [scores(1, 1, 1), scores(1, 0, 0)])
        let a = ProcessReward().advantages(g)
        // All six step scores: 1,1,1,1,0,0 → mean 2/3, std sqrt(2)/3; normalised: +0.707 or −1.414.
        let sd: Double = (2 as Double).squareRoot() / 3
        let up: Double = (1 - 2.0 / 3) / sd, down: Double = (0 - 2.0 / 3) / sd
        // Rollout 2 is right on step 0, wrong on step 1 and the answer: its first step's
        // tokens get the suffix sum up + down + down, its later steps down + down and down.
        let first: Double = up + 2 * down, second: Double = 2 * down
        let wrong: [Double] = [first, first, second, down, down, down, down]
        let right: [Double] = [3 * up, 3 * up, 2 * up, up, up, up, up]
        #expect(close([a[1]], [wrong], 1e-4))
        #expect(close([a[0]], [right], 1e-4))
    }

    @Test func ppoClipTable() {
        let o = Objective(clipLow: 0.2, clipHigh: 0.28)
        // A > 0: unclipped up to 1 + ε_high, then no gradient.
        #expect(o.policyGradient(ratio: 1, advantage: 2) == (loss: -2, weight: 2, clipped: false))
        #expect(o.policyGradient(ratio: 1.2, advantage: 1).weight == 1.2)
        let hi = o.policyGradient(ratio: 1.5, advantage: 1)
        #expect(hi.clipped && hi.weight == 0 && abs(hi.loss + 1.28) < 1e-12)
        // A < 0: unclipped down to 1 − ε_low, then no gradient.
        #expect(o.policyGradient(ratio: 0.9, advantage: -1).weight == -0.9)
        let lo = o.policyGradient(ratio: 0.5, advantage: -1)
        #expect(lo.clipped && lo.weight == 0 && abs(lo.loss - 0.8) < 1e-12)
        // Large ratio with negative advantage stays unclipped but the IS weight is truncated.
        #expect(o.policyGradient(ratio: 10, advantage: -1).weight == -2)
        #expect(o.policyGradient(ratio: 3, advantage: 0) == (loss: 0, weight: 0, clipped: false))
    }

    @Test(arguments: [(0.5, 4), (0.2, 8), (0.05, 16), (0.9, 2)])
    func deadZoneFractionMatchesTheBinomialPrediction(p: Double, n: Int) {
        // Groups of n Bernoulli(p) rewards: zero variance with probability pⁿ + (1 − p)ⁿ.
        var rng = SeededRNG(seed: 11)
        let trials = 40_000
        var dead = 0
        for _ in 0..<trials {
            let g = group((0..<n).map { _ in rng.uniform() < p ? 1 : 0 })
            if g.hasZeroVariance { dead += 1 }
        }
        let expected = pow(p, Double(n)) + pow(1 - p, Double(n))
        let observed = Double(dead) / Double(trials)
        let sigma = (expected * (1 - expected) / Double(trials)).squareRoot()
        #expect(abs(observed - expected) < 5 * sigma + 1e-9, "observed \(observed) vs \(expected)")
    }

    @Test func evalPointsAreLogSpacedFromStepZero() {
        let t = CellRunner.evalThresholds(budget: 1024, points: 8)
        #expect(t == [0, 16, 32, 64, 128, 256, 512, 1024])
    }

    @Test func curriculumParsing() {
        #expect(Curriculum.parse("uniform") == .uniform)
        #expect(Curriculum.parse("pass_rate:0.1-0.5") == .passRate(low: 0.1, high: 0.5))
        #expect(Curriculum.parse("pass_rate:0.5-0.1") == nil)
        #expect(Curriculum.parse("hard_first") == nil)
    }
}

import RLCommon
import Foundation
