import PolicyModel
import RLCommon
import Tasks

/// One turn of a multi-turn episode: an attempt, then (unless it is the last turn) the
/// feedback the environment appended. Ranges index the episode's generated tokens.
public struct EpisodeTurn: Hashable, Sendable {
    /// The attempt: the policy's tokens, `start..<end` (ending with EOS unless cut).
    public var start: Int
    public var end: Int
    /// The feedback after it, `end..<feedbackEnd` (empty on the last turn).
    public var feedbackEnd: Int
    /// The exact verifier accepted the attempt.
    public var correct: Bool

    public init(start: Int, end: Int, feedbackEnd: Int, correct: Bool) {
        self.start = start
        self.end = end
        self.feedbackEnd = feedbackEnd
        self.correct = correct
    }
}

/// A sampled episode: the policy's attempts and the environment's feedback, in one
/// sequence after the prompt. It stops at the first accepted attempt, after `turns`
/// attempts, or when the context has no room for another turn.
public struct Episode: Hashable, Sendable {
    /// Everything generated after the prompt: attempts and feedback, in order.
    public var completion: Completion
    public var turns: [EpisodeTurn]

    /// The tokens of attempt `t` (0-based).
    public func attempt(_ t: Int) -> ArraySlice<Int32> { completion.tokens[turns[t].start..<turns[t].end] }

    /// The turn (1-based) whose attempt was accepted, nil when none was.
    public var solvedAt: Int? { turns.firstIndex(where: \.correct).map { $0 + 1 } }

    /// Whether the second attempt writes the same text as the first (nil with one turn).
    public var repeatsFirstAttempt: Bool? {
        guard turns.count >= 2 else { return nil }
        return Vocabulary.solutionText(Array(attempt(0))).text == Vocabulary.solutionText(Array(attempt(1))).text
    }
}

public enum EpisodeSampler {
    /// Samples one episode per problem with `model` (`EpisodeLayout` sets each turn's limit;
    /// the exact verifier decides whether an attempt is accepted and the layout's feedback
    /// follows a rejected one). A one-turn layout draws exactly what
    /// `Transformer.sample` draws for the same prompts and limits.
    public static func sample(
        _ model: Transformer, problems: [Problem], layout: EpisodeLayout, options: SamplingOptions, rng: inout SeededRNG
    ) throws(ModelError) -> (episodes: [Episode], result: SampleResult) {
        let prompts = problems.map(\.promptTokens)
        var turns = [[EpisodeTurn]](repeating: [], count: problems.count)
        var turnStart = [Int](repeating: 0, count: problems.count)
        let limits = problems.map { layout.limit($0, turn: 1, used: $0.promptTokens.count) }
        let r = try model.sample(prompts: prompts, options: options, limits: limits, rng: &rng) { row, generated in
            let p = problems[row], tokens = generated.tokens, start = turnStart[row]
            let attempt = Array(tokens[start...])
            let turn = turns[row].count + 1
            guard turn < layout.turns, !Verifier.verify(p, completion: attempt).correct else { return nil }
            let feedback = layout.feedback.tokens(p, attempt: attempt)
            let next = layout.limit(p, turn: turn + 1, used: prompts[row].count + tokens.count + feedback.count)
            guard next >= 1 else { return nil }
            turns[row].append(EpisodeTurn(start: start, end: tokens.count, feedbackEnd: tokens.count + feedback.count, correct: false))
            turnStart[row] = tokens.count + feedback.count
            return TurnContinuation(forced: feedback, limit: next)
        }
        // The last turn of every episode (the continuation recorded only the ones it continued).
        var episodes: [Episode] = []
        for (row, c) in r.completions.enumerated() {
            let start = turnStart[row]
            let ok = Verifier.verify(problems[row], completion: Array(c.tokens[start...])).correct
            episodes.append(Episode(
                completion: c, turns: turns[row] + [EpisodeTurn(start: start, end: c.tokens.count, feedbackEnd: c.tokens.count, correct: ok)]))
        }
        return (episodes, r)
    }
}
