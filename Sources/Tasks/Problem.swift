/// Which rendering of a problem a prompt uses.
public enum PromptRendering: String, Codable, Sendable, CaseIterable {
    /// `BOS text SEP`: what the policy is prompted with.
    case plain
    /// `BOS text # solution SEP`: the problem with its reference solution shown.
    case privileged
}

/// One problem instance with its reference solution.
///
/// Every family writes a solution the same way: its steps separated by ',', then '=' and
/// the final answer, e.g. addition `A123+459` → `21,80,50=582` (one step per column: sum
/// digit then carry). The model sees `BOS problem SEP` and must write `solution EOS`.
public struct Problem: Hashable, Sendable, Codable {
    /// The family's name, e.g. "add".
    public var family: String
    public var difficulty: Int
    /// The rendering shown to the policy, starting with the family's tag letter.
    public var text: String
    /// Reference intermediate steps, in order.
    public var steps: [String]
    /// Reference final answer.
    public var answer: String

    public init(family: String, difficulty: Int, text: String, steps: [String], answer: String) {
        self.family = family
        self.difficulty = difficulty
        self.text = text
        self.steps = steps
        self.answer = answer
    }

    /// The reference solution text, without EOS.
    public var solution: String { Problem.render(steps: steps, answer: answer) }

    public static func render(steps: [String], answer: String) -> String {
        steps.joined(separator: ",") + "=" + answer
    }

    /// `BOS text SEP`: what the policy is prompted with.
    public var promptTokens: [Int32] {
        [Vocabulary.bos] + Vocabulary.encode(text) + [Vocabulary.sep]
    }

    /// The privileged rendering for self-distillation teachers: `BOS text # solution SEP`,
    /// i.e. the problem with its reference solution shown before the answer is due.
    public var privilegedPromptTokens: [Int32] {
        [Vocabulary.bos] + Vocabulary.encode(text + "#" + solution) + [Vocabulary.sep]
    }

    /// The privileged rendering with another written solution shown in place of the
    /// reference (a successful sibling rollout, for `sdpo`'s teacher): `BOS text # shown SEP`.
    public func privilegedPromptTokens(showing shown: [Int32]) -> [Int32] {
        [Vocabulary.bos] + Vocabulary.encode(text + "#") + shown + [Vocabulary.sep]
    }

    /// The prompt in a given rendering.
    public func promptTokens(_ rendering: PromptRendering) -> [Int32] {
        switch rendering {
        case .plain: promptTokens
        case .privileged: privilegedPromptTokens
        }
    }

    /// Most tokens a policy may generate for this problem: `maxSolutionTokens`, or fewer
    /// where the privileged prompt plus that many tokens would not fit the context, so
    /// that a teacher reading a rollout behind the privileged prompt never runs past the
    /// context (and never reads positions pretraining did not train). Every sampler
    /// (training, evaluation, pools) uses it, for every method alike. It is at least the
    /// reference solution plus EOS (tests check every family and difficulty).
    public var completionLimit: Int {
        min(maxSolutionTokens, taskContext - privilegedPromptTokens.count)
    }

    /// `solution EOS` for a given written solution (reference or noisy).
    public static func completionTokens(_ solution: String) -> [Int32] {
        Vocabulary.encode(solution) + [Vocabulary.eos]
    }
}
