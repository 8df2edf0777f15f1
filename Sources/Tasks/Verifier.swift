/// Outcome of checking a written solution's final answer.
public struct Verdict: Hashable, Sendable, Codable {
    /// 1 when the final answer is exactly right, else 0.
    public var reward: Double
    /// Why the solution is wrong ("" when it is right).
    public var reason: String
    public var correct: Bool { reward == 1 }
}

/// Score of one written step, and which characters (= generated tokens) it spans.
public struct StepScore: Hashable, Sendable, Codable {
    /// Index of the step in the written solution; the final answer is the last score.
    public var index: Int
    /// Character range in the generated text (one character per generated token).
    public var start: Int
    public var end: Int
    /// 1 when the step matches the reference step at the same position, else 0.
    public var score: Double
    public var isAnswer: Bool

    public init(index: Int, start: Int, end: Int, score: Double, isAnswer: Bool) {
        self.index = index
        self.start = start
        self.end = end
        self.score = score
        self.isAnswer = isAnswer
    }
}

/// Exact verifiers. They accept any token sequence, including garbage, a missing EOS or
/// a truncated answer, and never crash: anything that is not exactly the reference
/// answer followed by EOS is wrong, with a reason.
public enum Verifier {
    /// Verifies the final answer of generated tokens (the completion after the prompt).
    public static func verify(_ problem: Problem, completion: [Int32]) -> Verdict {
        let (text, terminated) = Vocabulary.solutionText(completion)
        guard terminated else { return Verdict(reward: 0, reason: "no EOS (truncated)") }
        guard let eq = text.lastIndex(of: "=") else { return Verdict(reward: 0, reason: "no final answer ('=' missing)") }
        let answer = String(text[text.index(after: eq)...])
        if answer.isEmpty { return Verdict(reward: 0, reason: "empty final answer") }
        if answer != problem.answer { return Verdict(reward: 0, reason: "wrong answer \(answer), expected \(problem.answer)") }
        return Verdict(reward: 1, reason: "")
    }

    /// Scores each written step against the reference step at the same position, and
    /// the final answer as a last step. Steps are the ','-separated pieces before the
    /// last '='; a solution without '=' is all steps and has a zero-score empty answer.
    /// The ranges cover every generated character up to EOS (separators belong to the
    /// step they end), so dense rewards can be credited token by token.
    public static func stepScores(_ problem: Problem, completion: [Int32]) -> [StepScore] {
        let (text, terminated) = Vocabulary.solutionText(completion)
        let chars = Array(text)
        let eq = chars.lastIndex(of: "=")
        let stepsEnd = eq ?? chars.count
        var scores: [StepScore] = []
        var start = 0
        var i = 0
        while start < stepsEnd {
            var end = start
            while end < stepsEnd && chars[end] != "," { end += 1 }
            let written = String(chars[start..<end])
            let ok = i < problem.steps.count && written == problem.steps[i]
            let spanEnd = end < stepsEnd ? end + 1 : end  // include the ','
            scores.append(StepScore(index: i, start: start, end: spanEnd, score: ok ? 1 : 0, isAnswer: false))
            i += 1
            start = spanEnd
        }
        if let eq {
            let answer = String(chars[(eq + 1)...])
            let ok = terminated && answer == problem.answer
            scores.append(StepScore(index: i, start: eq, end: chars.count, score: ok ? 1 : 0, isAnswer: true))
        } else {
            scores.append(StepScore(index: i, start: chars.count, end: chars.count, score: 0, isAnswer: true))
        }
        return scores
    }
}
