import ResultSchema
import Tasks
import Testing

@testable import RLTraining

/// A group with the given rewards; completions of the given lengths (default 3 tokens).
func group(_ rewards: [Double], lengths: [Int]? = nil, steps: [[StepScore]]? = nil) -> RolloutGroup {
    let p = Problem(family: "sort", difficulty: 1, text: "S31", steps: ["1", "3"], answer: "13")
    let rs = rewards.enumerated().map { i, r in
        let len = lengths?[i] ?? 3
        return Rollout(
            completion: Array(repeating: 4, count: len), behaviorLogProbs: Array(repeating: -1, count: len), reward: r, gold: r,
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
        let a = RLMethod.grpo().advantages(group([1, 0, 0, 1]))
        #expect(close(a, [[1, 1, 1], [-1, -1, -1], [-1, -1, -1], [1, 1, 1]]))
        // rewards 1,0,0,0: mean 0.25, std sqrt(3)/4 → 0.75/0.433 = 1.732, −0.25/0.433 = −0.577
        let b = RLMethod.grpo().advantages(group([1, 0, 0, 0], lengths: [1, 1, 1, 1]))
        let r3: Double = (3 as Double).squareRoot()
        let expected: [[Double]] = [[r3], [-1 / r3], [-1 / r3], [-1 / r3]]
        #expect(close(b, expected))
        // A dead group has zero advantages.
        #expect(RLMethod.grpo().advantages(group([1, 1, 1])).allSatisfy { $0.allSatisfy { $0 == 0 } })
        #expect(RLMethod.grpo().aggregation == .tokenMean)
    }

    @Test func drGRPODropsStdAndLengthNormalisation() {
        let a = RLMethod.drGRPO.advantages(group([1, 0, 0, 0], lengths: [1, 1, 1, 1]))
        #expect(close(a, [[0.75], [-0.25], [-0.25], [-0.25]]))
        #expect(RLMethod.drGRPO.aggregation == .constant)
    }

    @Test func rlooUsesTheLeaveOneOutBaseline() {
        let a = RLMethod.rloo.advantages(group([1, 0, 0, 1], lengths: [1, 1, 1, 1]))
        let hi: Double = 2.0 / 3, lo: Double = -2.0 / 3
        let expected: [[Double]] = [[hi], [lo], [lo], [hi]]
        #expect(close(a, expected))
        #expect(RLMethod.rloo.aggregation == .sequenceSum)
    }

    @Test func dapoClipsHigherAndSamplesDynamically() throws {
        let d = RLMethod.dapo
        #expect(d.sampling == .dynamic(maxRounds: 8))
        let clip = try #require(d.terms.first as? ClippedPolicyGradient)
        #expect(clip.clipLow == 0.2 && clip.clipHigh == 0.28)
        #expect(close(d.advantages(group([1, 0])), RLMethod.grpo().advantages(group([1, 0]))))
    }

    @Test func expertIterationImitatesCorrectSamplesOnly() {
        let a = RLMethod.expertIteration.advantages(group([1, 0, 1], lengths: [2, 2, 2]))
        #expect(close(a, [[1, 1], [0, 0], [1, 1]]))
        // Supervised: no ratio, so nothing clips or truncates the imitation signal.
        #expect(RLMethod.expertIteration.terms.count == 1 && RLMethod.expertIteration.terms[0] is SupervisedNLL)
    }

    @Test func processRewardCreditsStepsNotSequences() {
        // Two rollouts of "1,3=13" (6 chars + EOS = 7 tokens): spans [0,2) [2,3) answer [3,6).
        func scores(_ s0: Double, _ s1: Double, _ ans: Double) -> [StepScore] {
            [StepScore(index: 0, start: 0, end: 2, score: s0, isAnswer: false),
             StepScore(index: 1, start: 2, end: 3, score: s1, isAnswer: false),
             StepScore(index: 2, start: 3, end: 6, score: ans, isAnswer: true)]
        }
        let g = group([1, 0], lengths: [7, 7], steps: [scores(1, 1, 1), scores(1, 0, 0)])
        let a = RLMethod.process.advantages(g)
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
        let o = ClippedPolicyGradient(clipLow: 0.2, clipHigh: 0.28)
        // A > 0: unclipped up to 1 + ε_high, then no gradient.
        #expect(o.policyGradient(ratio: 1, advantage: 2) == (loss: -2, weight: 2, clipped: false))
        #expect(o.policyGradient(ratio: 1.2, advantage: 1).weight == 1.2)
        let hi = o.policyGradient(ratio: 1.5, advantage: 1)
        #expect(hi.clipped && hi.weight == 0 && abs(hi.loss + 1.28) < 1e-12)
        // A < 0: unclipped down to 1 − ε_low, then no gradient.
        #expect(o.policyGradient(ratio: 0.9, advantage: -1).weight == -0.9)
        let lo = o.policyGradient(ratio: 0.5, advantage: -1)
        #expect(lo.clipped && lo.weight == 0 && abs(lo.loss - 0.8) < 1e-12)
        // Large ratio with negative advantage stays unclipped but the IS weight is truncated,
        // and the loss continues as −A·c·(1 + log(ρ/c)) (continuous at ρ = c).
        let far = o.policyGradient(ratio: 10, advantage: -1)
        #expect(far.weight == -2 && abs(far.loss - 2 * (1 + log(5.0))) < 1e-12)
        let atCap = o.policyGradient(ratio: 2, advantage: -1), past = o.policyGradient(ratio: 2 + 1e-9, advantage: -1)
        #expect(atCap.loss == 2 && abs(past.loss - 2) < 1e-8)
        #expect(o.policyGradient(ratio: 3, advantage: 0) == (loss: 0, weight: 0, clipped: false))
    }

    @Test func whetherAGroupCarriesGradientDependsOnTheMethod() {
        func carries(_ m: RLMethod, _ g: RolloutGroup) -> Bool { m.carriesGradient(g, m.advantages(g), context: taskContext) }
        let allRight = group([1, 1, 1]), allWrong = group([0, 0, 0]), mixed = group([1, 0, 1])
        // Reward-variance methods: a group of equal rewards is dead.
        for m in [RLMethod.grpo(), .drGRPO, .rloo, .dapo] {
            #expect(!carries(m, allRight) && !carries(m, allWrong) && carries(m, mixed), "\(m.name)")
        }
        // Expert iteration imitates any correct sample: all-correct trains, all-wrong does not.
        #expect(carries(.expertIteration, allRight) && !carries(.expertIteration, allWrong))
        // Process credit: equal final rewards but different step scores still train.
        let s = { (a: Double, b: Double) in
            [StepScore(index: 0, start: 0, end: 1, score: a, isAnswer: false),
             StepScore(index: 1, start: 1, end: 3, score: b, isAnswer: true)]
        }
        #expect(carries(.process, group([0, 0], steps: [s(1, 0), s(0, 0)])))
        #expect(!carries(.process, group([0, 0], steps: [s(0, 0), s(0, 0)])))
        // Dense terms always carry gradient: distillation from the reference, and GRPO with a
        // KL or entropy term.
        #expect(carries(.opsd(), allRight) && carries(.grpo(kl: 0.1), allRight) && carries(.grpo(entropy: 0.1), allWrong))
        // sdpo needs a successful sibling: not all-wrong, not a lone success of one.
        #expect(carries(.sdpo(), allRight) && carries(.sdpo(), mixed) && !carries(.sdpo(), allWrong) && !carries(.sdpo(), group([1])))
        // Distilling failures only: a group without a failure carries no distillation.
        #expect(!carries(.opsd(on: .failed), allRight) && carries(.opsd(on: .failed), allWrong))
        #expect(!carries(.sdpo(on: .failed), allRight) && !carries(.sdpo(on: .failed), allWrong) && carries(.sdpo(on: .failed), mixed))
        // sdpg still has GRPO's advantages: a mixed group trains even with nothing to distil.
        #expect(carries(.sdpg(on: .failed), mixed) && !carries(.sdpg(on: .failed), allRight))
    }

    /// sdpo's teacher reads the first successful rollout other than the student's own; a
    /// rollout without one (no success, or the group's only success) is not distilled; the
    /// failed-only mask leaves successes out; a teacher sequence that would not fit the
    /// context is not distilled.
    @Test func sdpoShowsTheFirstSuccessfulSiblingAndMasksTheRest() {
        var g = group([0, 1, 0, 1])
        for i in g.rollouts.indices { g.rollouts[i].completion = [Int32(5 + i), Int32(5 + i), Vocabulary.eos] }
        let t = Teacher(weights: .frozenBase, prompt: .sibling)
        func shown(_ i: Int, _ g: RolloutGroup, _ t: Teacher = Teacher(weights: .frozenBase, prompt: .sibling)) -> [Int32]? {
            t.prompt(for: i, of: g, context: taskContext)
        }
        let p = g.problem
        // EOS is stripped from the shown sibling.
        #expect(shown(0, g) == p.privilegedPromptTokens(showing: [6, 6]))
        #expect(shown(1, g) == p.privilegedPromptTokens(showing: [8, 8]))
        #expect(shown(2, g) == p.privilegedPromptTokens(showing: [6, 6]))
        #expect(shown(3, g) == p.privilegedPromptTokens(showing: [6, 6]))
        var lone = g
        lone.rollouts[3].reward = 0
        #expect(shown(1, lone) == nil && shown(0, lone) == p.privilegedPromptTokens(showing: [6, 6]))
        var none = g
        for i in none.rollouts.indices { none.rollouts[i].reward = 0 }
        #expect(none.rollouts.indices.allSatisfy { shown($0, none) == nil })
        let failedOnly = Teacher(weights: .frozenBase, prompt: .sibling, tokens: .failed)
        #expect(shown(1, g, failedOnly) == nil && shown(0, g, failedOnly) != nil)
        // Success is acceptance by the training reward (≥ 0.5), not a reward of exactly 1: a
        // reward model's scores (0.9 accepted, 0.2 rejected) and a corrected noisy reward
        // (1.75 accepted, −0.75 rejected) route the same way.
        for (yes, no) in [(0.9, 0.2), (1.75, -0.75)] {
            var soft = g
            for i in soft.rollouts.indices { soft.rollouts[i].reward = g.rollouts[i].reward == 1 ? yes : no }
            #expect(shown(0, soft) == p.privilegedPromptTokens(showing: [6, 6]) && shown(3, soft) == p.privilegedPromptTokens(showing: [6, 6]))
            #expect(shown(1, soft, failedOnly) == nil && shown(0, soft, failedOnly) != nil)
        }
        // The reference-showing teacher, and the context bound.
        let privileged = Teacher(weights: .frozenBase, prompt: .privileged)
        #expect(privileged.prompt(for: 0, of: g, context: taskContext) == p.privilegedPromptTokens)
        let tight = p.privilegedPromptTokens.count + 2
        #expect(privileged.prompt(for: 0, of: g, context: tight) == nil && privileged.prompt(for: 0, of: g, context: tight + 1) != nil)
        #expect(t.prompt(for: 0, of: g, context: p.privilegedPromptTokens(showing: [6, 6]).count + 2) == nil)
    }

    @Test func aDeclarationThatReadsAnUndeclaredForwardIsRefused() {
        var m = RLMethod.grpo(kl: 0.1)
        #expect(m.validationError == nil)
        m.reference = nil
        #expect(m.validationError?.contains("reference") == true)
        var o = RLMethod.opsd()
        o.teacher = nil
        #expect(o.validationError?.contains("teacher") == true)
        #expect(Methods.names.allSatisfy { Methods.make($0, CellDefaults.cell)?.validationError == nil })
        // The declarations read exactly the knobs the shared table says (labels and grid checks use it).
        #expect(Methods.names.allSatisfy { Methods.knobs(of: $0) == MethodKnob.read(by: $0) })
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
