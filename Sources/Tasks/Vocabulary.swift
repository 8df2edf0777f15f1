/// The character-level vocabulary shared by every task family and every policy.
///
/// Token ids: 0 PAD, 1 BOS, 2 EOS, 3 SEP (between the prompt and the solution), then one
/// token per character of `Vocabulary.characters`.
public enum Vocabulary {
    public static let pad: Int32 = 0
    public static let bos: Int32 = 1
    public static let eos: Int32 = 2
    public static let sep: Int32 = 3
    /// Digits, operators, the step separator ',', the answer marker '=', the privileged
    /// marker '#' and one tag letter per task family.
    public static let characters: [Character] = Array("0123456789+*=,#ACMS")
    public static let size = 4 + characters.count

    static let index: [Character: Int32] = {
        var d: [Character: Int32] = [:]
        for (i, c) in characters.enumerated() { d[c] = Int32(4 + i) }
        return d
    }()

    /// Token of each ASCII byte (−1: not in the vocabulary): every vocabulary character is
    /// one ASCII byte, so encoding reads the string's UTF-8 bytes through this table.
    static let byteTokens: [Int32] = {
        var t = [Int32](repeating: -1, count: 128)
        for (c, token) in index {
            guard let a = c.asciiValue else { preconditionFailure("vocabulary character \(c) is not ASCII") }
            t[Int(a)] = token
        }
        return t
    }()

    /// Token of one character, or nil when the character is not in the vocabulary.
    public static func token(_ c: Character) -> Int32? { index[c] }

    /// Tokens of a string made of vocabulary characters (unknown characters are dropped;
    /// task renderings only ever use vocabulary characters).
    public static func encode(_ s: String) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 where b < 128 {
            let t = byteTokens[Int(b)]
            if t >= 0 { out.append(t) }
        }
        return out
    }

    /// Readable text of tokens; special tokens render as `<pad>`, `<bos>`, `<eos>`, `|`.
    public static func decode(_ tokens: some Sequence<Int32>) -> String {
        var s = ""
        for t in tokens {
            switch t {
            case pad: s += "<pad>"
            case bos: s += "<bos>"
            case eos: s += "<eos>"
            case sep: s += "|"
            case 4..<Int32(size): s.append(characters[Int(t) - 4])
            default: s += "<\(t)?>"
            }
        }
        return s
    }

    /// The characters of generated tokens up to (not including) the first EOS, and whether
    /// an EOS was found. Tokens that are not characters (PAD, BOS, SEP, out of range)
    /// render as '?', which no answer contains.
    public static func solutionText(_ tokens: [Int32]) -> (text: String, terminated: Bool) {
        var s = ""
        for t in tokens {
            if t == eos { return (s, true) }
            if t >= 4 && t < Int32(size) { s.append(characters[Int(t) - 4]) } else { s.append("?") }
        }
        return (s, false)
    }
}
