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

    /// `solution EOS` for a given written solution (reference or noisy).
    public static func completionTokens(_ solution: String) -> [Int32] {
        Vocabulary.encode(solution) + [Vocabulary.eos]
    }
}
