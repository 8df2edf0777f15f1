import RLCommon

/// What the environment tells the policy after a rejected attempt of a multi-turn episode.
///
/// Feedback is written with tokens the vocabulary already has, so that every pretrained
/// base, and every cell id, stays what it was: after a rejected attempt the environment
/// appends EOS when the attempt did not end with one, then the feedback's body, then SEP
/// (which, as after a prompt, means "your answer follows"). The bodies:
///
/// - `retry`: nothing — `EOS SEP` alone says "wrong, try again";
/// - `reason`: one digit, the verifier's reason (`RejectionReason`: 0 wrong answer,
///   1 no answer, 2 truncated);
/// - `step`: the index of the first wrong step (the final answer is the last step), in
///   decimal digits, from the step verifier.
public enum Feedback: String, Codable, Sendable, CaseIterable, Hashable {
    case retry
    case reason
    case step

    /// The tokens appended after `attempt` (the attempt's own tokens, ending with EOS or
    /// cut at its limit) was rejected.
    public func tokens(_ problem: Problem, attempt: [Int32]) -> [Int32] {
        let close: [Int32] = attempt.last == Vocabulary.eos ? [] : [Vocabulary.eos]
        let body: String
        switch self {
        case .retry: body = ""
        case .reason: body = String(RejectionReason(problem, attempt: attempt).rawValue)
        case .step:
            let scores = Verifier.stepScores(problem, completion: attempt)
            body = String(scores.firstIndex { $0.score == 0 } ?? scores.count - 1)
        }
        return close + Vocabulary.encode(body) + [Vocabulary.sep]
    }

    /// The most tokens this feedback can take on `problem` (an unterminated attempt, and for
    /// `step` the largest step index an attempt of the episode's limit can reach).
    public func maxLength(_ problem: Problem) -> Int {
        switch self {
        case .retry: 2
        case .reason: 3
        case .step: 2 + String(maxSolutionTokens / 2).count
        }
    }
}

/// Why the verifier rejected an attempt, as the `reason` feedback spells it.
public enum RejectionReason: Int, Sendable, Codable, CaseIterable {
    /// A final answer was written, and it is wrong.
    case wrong = 0
    /// EOS came without a final answer ('=' missing or nothing after it).
    case noAnswer = 1
    /// The attempt ran into its limit without EOS.
    case truncated = 2

    public init(_ problem: Problem, attempt: [Int32]) {
        let (text, terminated) = Vocabulary.solutionText(attempt)
        if !terminated { self = .truncated; return }
        guard let eq = text.lastIndex(of: "="), text.index(after: eq) < text.endIndex else { self = .noAnswer; return }
        self = .wrong
    }
}

/// How an episode of up to `turns` attempts on one problem lays out in the context:
/// `BOS problem SEP attempt₁ [EOS] feedback SEP attempt₂ … attempt_T`, in one sequence of at
/// most `taskContext` positions.
///
/// Every turn is guaranteed room for the problem's reference solution and EOS: turn t may
/// sample up to `min(Problem.completionLimit, room − reserve)` tokens, where `room` is what
/// the context has left and `reserve` keeps, for each later turn, the longest feedback plus
/// the reference solution and EOS. A single-turn episode is exactly a single-turn rollout
/// (its limit is `Problem.completionLimit`).
public struct EpisodeLayout: Hashable, Sendable {
    public var turns: Int
    public var feedback: Feedback

    public init(turns: Int, feedback: Feedback) {
        self.turns = turns
        self.feedback = feedback
    }

    /// Tokens one later turn keeps in reserve: the longest feedback, then the reference
    /// solution and EOS.
    func reserve(_ problem: Problem) -> Int {
        feedback.maxLength(problem) + Problem.completionTokens(problem.solution).count
    }

    /// The limit of turn `turn` (1-based) when `used` positions (prompt, earlier attempts and
    /// feedback) are taken; below 1 when the turn has no room.
    public func limit(_ problem: Problem, turn: Int, used: Int) -> Int {
        min(problem.completionLimit, taskContext - used - (turns - turn) * reserve(problem))
    }

    /// Whether every turn of an episode on `problem` has room for the reference solution and
    /// EOS, whatever the earlier attempts wrote.
    public func fits(_ problem: Problem) -> Bool {
        limit(problem, turn: 1, used: problem.promptTokens.count) >= Problem.completionTokens(problem.solution).count
    }

    /// The most turns that fit every problem of `family` at `difficulty`, with `feedback`:
    /// checked on 512 problems the family generates from a fixed seed (its prompt lengths
    /// and reference lengths at one difficulty vary little, and their longest are reached
    /// far sooner). A rarer, longer problem is never overrun: a turn without room ends
    /// its episode early.
    public static func maxTurns(_ family: any TaskFamily, difficulty: Int, feedback: Feedback) -> Int {
        var rng = SeededRNG(seed: 0).derived("episode-fit:\(family.name):\(difficulty)")
        let problems = (0..<512).map { _ in family.generate(difficulty: difficulty, rng: &rng) }
        var turns = 1
        while turns < 64, problems.allSatisfy({ EpisodeLayout(turns: turns + 1, feedback: feedback).fits($0) }) { turns += 1 }
        return turns
    }
}
