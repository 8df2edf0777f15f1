import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Rewards
import Tasks
import Testing

@testable import RLTraining

/// Multi-turn episodes: their layout, what is charged, what is trained, and credit over turns.
@Suite struct MultiTurnTests {
    let problem = Problem(family: "sort", difficulty: 2, text: "S914", steps: ["1", "4", "9"], answer: "149")

    /// A hand-made 2-turn rollout of `problem`: a wrong attempt, the `reason` feedback, the
    /// right attempt.
    func twoTurns() -> Rollout {
        let wrong = Problem.completionTokens("1,4,8=148"), right = Problem.completionTokens("1,4,9=149")
        let feedback = Feedback.reason.tokens(problem, attempt: wrong)
        let turns = [
            EpisodeTurn(start: 0, end: wrong.count, feedbackEnd: wrong.count + feedback.count, correct: false),
            EpisodeTurn(start: wrong.count + feedback.count, end: wrong.count + feedback.count + right.count,
                        feedbackEnd: wrong.count + feedback.count + right.count, correct: true),
        ]
        let tokens = wrong + feedback + right
        return Rollout(completion: tokens, behaviorLogProbs: [Float](repeating: -1, count: tokens.count), reward: 1, gold: 1, steps: [], turns: turns)
    }

    @Test func feedbackIsWrittenWithExistingTokens() {
        let sep = Vocabulary.sep, eos = Vocabulary.eos
        func d(_ c: Character) -> Int32 { Vocabulary.token(c)! }
        let wrong = Problem.completionTokens("1,4,8=148")
        #expect(Feedback.retry.tokens(problem, attempt: wrong) == [sep])
        #expect(Feedback.reason.tokens(problem, attempt: wrong) == [d("0"), sep])
        #expect(Feedback.reason.tokens(problem, attempt: Problem.completionTokens("1,4,9")) == [d("1"), sep])
        // A truncated attempt is closed with EOS first.
        #expect(Feedback.reason.tokens(problem, attempt: Vocabulary.encode("1,4,9=14")) == [eos, d("2"), sep])
        // The first wrong step: step 2 (0-based) of "1,4,8", then the answer is step 3.
        #expect(Feedback.step.tokens(problem, attempt: wrong) == [d("2"), sep])
        #expect(Feedback.step.tokens(problem, attempt: Problem.completionTokens("1,4,9=194")) == [d("3"), sep])
        #expect(Feedback.step.tokens(problem, attempt: Problem.completionTokens("7,4,9=149")) == [d("0"), sep])
        for f in Feedback.allCases {
            for a in [wrong, Vocabulary.encode(String(repeating: "1,", count: 24))] {
                #expect(f.tokens(problem, attempt: a).count <= f.maxLength(problem))
            }
        }
    }

    @Test func episodeLayoutKeepsRoomForEveryTurn() {
        // One turn is a single-turn rollout.
        for f in TaskFamilies.all {
            var rng = SeededRNG(seed: 9)
            for d in 1...f.maxDifficulty {
                let p = f.generate(difficulty: d, rng: &rng)
                #expect(EpisodeLayout(turns: 1, feedback: .step).limit(p, turn: 1, used: p.promptTokens.count) == p.completionLimit)
            }
        }
        // Sort level 2 (prompt 6 tokens, reference + EOS 10, reason feedback at most 3): with 4
        // turns the first keeps 3 × 13 in reserve (96 − 6 − 39 = 51, capped at the completion
        // limit), and whatever the earlier turns wrote, the last keeps the reference's 10.
        let layout = EpisodeLayout(turns: 4, feedback: .reason)
        #expect(layout.limit(problem, turn: 1, used: 6) == min(problem.completionLimit, 96 - 6 - 3 * 13))
        #expect(layout.limit(problem, turn: 4, used: 96 - 10) == 10)
        #expect(layout.fits(problem))
        #expect(!EpisodeLayout(turns: 9, feedback: .reason).fits(problem))
        #expect(EpisodeLayout.maxTurns(Sorting(), difficulty: 2, feedback: .reason) == 7)
    }

    @Test func anEpisodeMasksItsFeedbackAndIsChargedWhole() throws {
        let r = twoTurns()
        let mask = try #require(r.policyTokens)
        #expect(mask == Array(repeating: true, count: 10) + [false, false] + Array(repeating: true, count: 10))
        #expect(Rollout(completion: [4, 2], behaviorLogProbs: [0, 0], reward: 0, gold: 0, steps: []).policyTokens == nil)
        // Trained in a group beside a failed single attempt: the feedback rows of the logit
        // gradient are exactly 0, the attempts' rows are not, and the training forward and
        // backward are charged on each whole episode at its own length.
        let (model, record) = try toyBase()
        var cfg = CellConfig(method: "grpo", rolloutsPerProblem: 2, problemsPerBatch: 1, budgetFLOPs: 1e15)
        _ = cfg.set(.turns, to: "2")
        var state = try TrainingState(config: cfg, method: try #require(cfg.makeMethod()), base: model, baseRecord: record, baseEval: record.evaluation!)
        let failed = Rollout(
            completion: Problem.completionTokens("1,9,4=194"), behaviorLogProbs: [Float](repeating: -1, count: 10), reward: 0, gold: 0, steps: [])
        let group = RolloutGroup(problem: problem, rollouts: [r, failed])
        var stats = TrainStepStats()
        _ = try state.lossAndGradient([group], stats: &stats)
        let V = model.config.vocab
        let lengths = [r, failed].map { problem.promptTokens.count + $0.completion.count - 1 }
        #expect(state.ledger.training == FLOPs.trainSequence(model.config, length: lengths[0]) + FLOPs.trainSequence(model.config, length: lengths[1]))
        #expect(stats.tokens == 10 + 10 + 10, "feedback tokens are not trained tokens")
        let g = state.policy.logitGradient
        for j in 0..<r.completion.count {
            let n = problem.promptTokens.count - 1 + j
            let row = (0..<V).map { abs(g[n * V + $0]) }.max() ?? 0
            if mask[j] { #expect(row > 0, "attempt token \(j) has no gradient") } else { #expect(row == 0, "feedback token \(j) got gradient \(row)") }
        }
    }

    @Test func sampledEpisodesChargeEveryTurn() throws {
        setBLASThreads(1)
        let (model, record) = try toyBase()
        var cfg = CellConfig(method: "grpo", rolloutsPerProblem: 3, problemsPerBatch: 2, budgetFLOPs: 1e15)
        _ = cfg.set(.turns, to: "3")
        _ = cfg.set(.feedback, to: "step")
        var state = try TrainingState(config: cfg, method: try #require(cfg.makeMethod()), base: model, baseRecord: record, baseEval: record.evaluation!)
        let other = Problem(family: "sort", difficulty: 1, text: "S72", steps: ["2", "7"], answer: "27")
        let (groups, flops) = try state.sampleGroups([problem, other])
        var sampling = 0.0, written = 0
        for (g, f) in zip(groups, flops) {
            var perGroup = 0.0
            for r in g.rollouts {
                let x = FLOPs.forwardSequence(model.config, length: g.problem.promptTokens.count + r.completion.count - 1)
                sampling += x
                perGroup += x
                // An untrained policy fails: three attempts, each followed (but the last) by its feedback.
                #expect(r.turns.count == 3 && r.reward == 0)
                for (t, turn) in r.turns.enumerated() {
                    written += turn.end - turn.start
                    let attempt = Array(r.completion[turn.start..<turn.end])
                    let fb = Array(r.completion[turn.end..<turn.feedbackEnd])
                    #expect(fb == (t < 2 ? Feedback.step.tokens(g.problem, attempt: attempt) : []))
                    #expect(turn.end - turn.start <= EpisodeLayout(turns: 3, feedback: .step).limit(g.problem, turn: t + 1, used: g.problem.promptTokens.count + turn.start))
                }
                #expect(r.completion.count == r.turns.last?.feedbackEnd)
            }
            #expect(abs(f - perGroup) <= 1e-9 * perGroup)
        }
        #expect(abs(state.ledger.sampling - sampling) <= 1e-9 * sampling)
        #expect(state.ledger.generatedTokens == written)
        #expect(state.ledger.rollouts == 6)
    }

    /// TurnReturns on hand-computed groups: A solved at turn 1, B at turn 2, C failed twice.
    @Test func discountedTurnAdvantagesMatchHandComputedValues() throws {
        func rollout(_ outcomes: [Bool]) -> Rollout {
            // Attempts of 3 tokens, feedback of 2 between them.
            var turns: [EpisodeTurn] = [], at = 0
            for (t, ok) in outcomes.enumerated() {
                let fb = t < outcomes.count - 1 ? 2 : 0
                turns.append(EpisodeTurn(start: at, end: at + 3, feedbackEnd: at + 3 + fb, correct: ok))
                at += 3 + fb
            }
            return Rollout(
                completion: [Int32](repeating: 4, count: at), behaviorLogProbs: [Float](repeating: 0, count: at),
                reward: outcomes.contains(true) ? 1 : 0, gold: 0, steps: [], turns: turns)
        }
        let g = RolloutGroup(problem: problem, rollouts: [rollout([true]), rollout([false, true]), rollout([false, false])])
        // γ = 0.5, α = 0: returns A [1], B [0.5, 1], C [0, 0]; mean 0.5, std √0.2.
        let s = 0.2.squareRoot() + 1e-6
        let a = TurnReturns(gamma: 0.5)(g)
        #expect(a[0] == [0.5 / s, 0.5 / s, 0.5 / s])
        #expect(a[1] == [0, 0, 0, 0, 0, 0.5 / s, 0.5 / s, 0.5 / s])
        #expect(a[2] == [-0.5 / s, -0.5 / s, -0.5 / s, 0, 0, -0.5 / s, -0.5 / s, -0.5 / s])
        // γ = 1, α = 1: B's success after feedback is worth 1 + α = 2: returns A [1], B [2, 2],
        // C [0, 0]; mean 1, std √0.8.
        let s2 = 0.8.squareRoot() + 1e-6
        let b = TurnReturns(gamma: 1, bonus: 1)(g)
        #expect(b[0].allSatisfy { abs($0 - 0) < 1e-12 })
        #expect(b[1] == [1 / s2, 1 / s2, 1 / s2, 0, 0, 1 / s2, 1 / s2, 1 / s2])
        #expect(b[2][0] == -1 / s2 && b[2][3] == 0)
        #expect(TurnReturns(gamma: 0.9).returns([0, 0, 1]) == [0.81, 0.9, 1])
        // On single-turn groups it is GRPO's advantage, bitwise.
        let single = RolloutGroup(problem: problem, rollouts: [0.0, 1, 1, 0, 1].map {
            Rollout(completion: [4, 5, 2], behaviorLogProbs: [0, 0, 0], reward: $0, gold: $0, steps: [])
        })
        #expect(TurnReturns(gamma: 0.7, bonus: 0.5)(single) == GroupNormalized()(single))
    }

    /// Expert iteration imitates only the accepted attempt of an episode, and the repeat share
    /// is a ratio over second attempts (every attempt weighted alike) with its cluster SE.
    @Test func expertIterationImitatesOnlyTheAcceptedAttemptAndRepeatShareIsARatio() {
        let r = twoTurns()
        let marks = CorrectOnly()(RolloutGroup(problem: problem, rollouts: [r]))[0]
        #expect(marks == Array(repeating: 0.0, count: 12) + Array(repeating: 1.0, count: 10))
        // Problem 1: two second attempts, one repeats; problem 2: one, repeating; problem 3: none.
        // R = 2/3; residuals 1 − 2·(2/3) = −1/3 and 1 − 2/3 = 1/3: SE = √(2 · 2/9) / 3 = 2/9.
        let q = TrainingState.ratio([[1, 0], [1], []])
        #expect(q.map { abs($0.mean - 2.0 / 3) < 1e-15 && abs(($0.se ?? 0) - 2.0 / 9) < 1e-15 } == true)
        #expect(TrainingState.ratio([[], []]) == nil)
    }

    @Test func turnCreditSelectsTheEstimatorOnlyForEpisodes() throws {
        var c = CellConfig(method: "grpo", budgetFLOPs: 1e12)
        #expect(c.makeMethod()?.advantages is GroupNormalized)
        _ = c.set(.turns, to: "2")
        #expect(c.set(.turnCredit, to: "discounted:0.9,0.5") == nil)
        #expect((c.makeMethod()?.advantages as? TurnReturns).map { $0.gamma == 0.9 && $0.bonus == 0.5 } == true)
        #expect(c.methodLabel == "grpo[turns=2,turn_credit=discounted:0.9,0.5]")
        #expect(c.validationError() == nil)
        // Episode knobs away from their defaults on a single-turn cell are refused, as are
        // turns for methods that do not read them and proxy rewards on episodes.
        var single = CellConfig(method: "grpo", budgetFLOPs: 1e12)
        _ = single.set(.feedback, to: "step")
        #expect(single.validationError()?.hasPrefix("feedback: feedback = step is not used: it is read only with turns > 1 or eval_turns > 1") == true)
        single.evalTurns = 3
        #expect(single.validationError() == nil, "the multi-turn evaluation reads the feedback")
        var teacher = CellConfig(method: "opsd", budgetFLOPs: 1e12)
        _ = teacher.set(.turns, to: "2")
        #expect(teacher.validationError()?.hasPrefix("turns: turns = 2 is not used by opsd") == true)
        _ = c.set(.reward, to: "lenient")
        #expect(c.validationError()?.hasPrefix("reward: multi-turn episodes") == true)
        var probe = CellConfig(method: "grpo", budgetFLOPs: 1)
        #expect(probe.set(.turns, to: "0") != nil && probe.set(.turns, to: "17") != nil)
        #expect(TurnCredit("discounted:0") == nil && TurnCredit("discounted:1,-1") == nil && TurnCredit(" final ") == .final)
    }
}
