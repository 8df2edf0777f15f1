import Foundation
import KernelInterface
import RLCommon

/// How to sample completions.
public struct SamplingOptions: Hashable, Sendable, Codable {
    /// Softmax temperature; 0 means greedy decoding.
    public var temperature: Float = 1
    /// Nucleus mass in (0, 1]; 1 disables top-p.
    public var topP: Float = 1
    /// Most tokens generated per completion (the context also bounds it).
    public var maxNewTokens: Int
    /// Generation of a row stops after it samples this token (it is kept in the output);
    /// nil generates to `maxNewTokens` or the end of the context.
    public var eos: Int32?

    public init(temperature: Float = 1, topP: Float = 1, maxNewTokens: Int, eos: Int32?) {
        self.temperature = temperature
        self.topP = topP
        self.maxNewTokens = maxNewTokens
        self.eos = eos
    }
}

/// One sampled continuation of a prompt.
public struct Completion: Hashable, Sendable {
    /// Generated tokens (the prompt excluded), ending with EOS when `stoppedAtEOS`.
    public var tokens: [Int32]
    /// Log-probability of each generated token under the sampling distribution (after
    /// temperature and top-p; 0 for greedy decoding).
    public var logProbs: [Float]
    public var stoppedAtEOS: Bool
}

/// How a row's generation goes on after one of its turns ends (`Transformer.sample`'s
/// continuation): tokens the environment appends (feedback), then a new turn of at most
/// `limit` sampled tokens.
public struct TurnContinuation: Hashable, Sendable {
    public var forced: [Int32]
    public var limit: Int
    public init(forced: [Int32], limit: Int) {
        self.forced = forced
        self.limit = limit
    }
}

/// Completions of a batch plus what they cost.
public struct SampleResult: Sendable {
    public var completions: [Completion]
    /// Tokens pushed through the model (prompt tokens included).
    public var processedTokens: Int
    /// Forward FLOPs spent, by `FLOPs.forwardToken` summed over processed positions.
    public var forwardFLOPs: Double
}

/// KV cache and single-position activations for batched decoding.
final class DecodeState {
    let rows: Int
    let kCache, vCache, x, h, mean, rstd, qkv, atty, fch, logits, scores, probs: FloatBuffer

    init(_ c: ModelConfig, rows: Int) {
        self.rows = rows
        let C = c.dModel
        kCache = FloatBuffer(c.layers * rows * c.context * C)
        vCache = FloatBuffer(c.layers * rows * c.context * C)
        x = FloatBuffer(rows * C); h = FloatBuffer(rows * C)
        mean = FloatBuffer(rows); rstd = FloatBuffer(rows)
        qkv = FloatBuffer(rows * 3 * C); atty = FloatBuffer(rows * C); fch = FloatBuffer(rows * c.hidden)
        logits = FloatBuffer(rows * c.vocab); scores = FloatBuffer(c.heads * attentionStride(c.context))
        probs = FloatBuffer(c.vocab)
    }
}

extension Transformer {
    /// Samples one completion per prompt with a KV cache.
    ///
    /// All rows advance through positions together from position 0; a row consumes its
    /// own prompt token by token and starts sampling after its last prompt token, so
    /// prompts of different lengths need no padding. A row stops at EOS, at
    /// `maxNewTokens` (or its own `limits[r]` when smaller), or when the context is full;
    /// finished rows leave the batch, so no FLOPs are spent on them.
    ///
    /// With a `continuation`, a row's generation is a sequence of turns in one context (a
    /// multi-turn episode): when a turn ends (EOS, or its limit of sampled tokens), the
    /// continuation is asked, with the row and everything generated so far, whether the row
    /// goes on. nil ends the row; otherwise its `forced` tokens are appended to the
    /// completion (log-probability 0) and read like a prompt (no random draw), and the next
    /// turn samples up to its `limit` tokens. The KV cache runs the whole episode, so every
    /// token of every turn, forced ones included, is processed (and charged) once. Without
    /// a continuation the result is bitwise what it was before turns existed.
    public func sample(
        prompts: [[Int32]], options: SamplingOptions, limits: [Int]? = nil, rng: inout SeededRNG,
        continuation: ((_ row: Int, _ generated: Completion) -> TurnContinuation?)? = nil
    ) throws(ModelError) -> SampleResult {
        let c = config, V = c.vocab, Tc = c.context
        for (i, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw .emptyPrompt(index: i) }
            guard p.count < Tc else { throw .sequenceTooLong(length: p.count + 1, context: Tc) }
            try validate(p)
        }
        if let eos = options.eos { try validate([eos]) }
        let R = prompts.count
        precondition(limits.map { $0.count == R } ?? true, "one limit per prompt")
        var limit = (0..<R).map { min(options.maxNewTokens, limits?[$0] ?? options.maxNewTokens) }
        var turnStart = [Int](repeating: 0, count: R)   // completion index where the row's turn began
        var forced = [[Int32]](repeating: [], count: R)  // forced tokens still to read, per row
        var forcedAt = [Int](repeating: 0, count: R)
        var completions = [Completion](
            repeating: Completion(tokens: [], logProbs: [], stoppedAtEOS: false), count: R)
        guard R > 0, options.maxNewTokens > 0 else {
            return SampleResult(completions: completions, processedTokens: 0, forwardFLOPs: 0)
        }
        let d: DecodeState
        if let old = decode, old.rows >= R { d = old } else { d = DecodeState(c, rows: R); decode = d }
        var active = Array(0..<R)           // rows still generating, in order
        var input = prompts.map { $0[0] }   // next token fed for each row
        var processed = 0
        var flops = 0.0
        var order = Array(0..<V)

        for t in 0..<Tc where !active.isEmpty {
            let A = active.count
            processed += A
            flops += Double(A) * FLOPs.forwardToken(c, position: t)
            decodeStep(d, rows: active, tokens: active.map { input[$0] }, position: t)
            var still: [Int] = []
            still.reserveCapacity(A)
            for (a, r) in active.enumerated() {
                let prompt = prompts[r]
                if t + 1 < prompt.count {  // still reading the prompt
                    input[r] = prompt[t + 1]
                    still.append(r)
                    continue
                }
                if forcedAt[r] < forced[r].count {  // reading a continuation's forced tokens
                    input[r] = forced[r][forcedAt[r]]
                    forcedAt[r] += 1
                    still.append(r)
                    continue
                }
                let (tok, lp) = Self.draw(
                    logits: d.logits.base + a * V, V: V, options: options, probs: d.probs.base, order: &order, rng: &rng,
                    kernels: kernels)
                completions[r].tokens.append(tok)
                completions[r].logProbs.append(lp)
                if tok == options.eos {
                    completions[r].stoppedAtEOS = true
                } else if completions[r].tokens.count - turnStart[r] < limit[r] && t + 1 < Tc {
                    input[r] = tok
                    still.append(r)
                    continue
                }
                // The row's turn is over: a continuation may start another one.
                guard t + 1 < Tc, let continuation, let next = continuation(r, completions[r]) else { continue }
                precondition(!next.forced.isEmpty && next.limit > 0, "a continuation forces at least one token and samples at least one")
                precondition(t + 1 + next.forced.count < Tc, "a continuation's forced tokens must leave room in the context")
                try validate(next.forced)
                completions[r].tokens += next.forced
                completions[r].logProbs += [Float](repeating: 0, count: next.forced.count)
                completions[r].stoppedAtEOS = false
                turnStart[r] = completions[r].tokens.count
                limit[r] = next.limit
                forced[r] = next.forced
                forcedAt[r] = 0
                input[r] = tok
                still.append(r)
            }
            active = still
        }
        return SampleResult(completions: completions, processedTokens: processed, forwardFLOPs: flops)
    }

    /// One decoding position for the batch rows `rows` (cache rows, in batch order), each
    /// reading `tokens[a]` at `position`: appends their keys and values to the cache and
    /// leaves the next-token logits of batch row a at `d.logits + a·V`.
    func decodeStep(_ d: DecodeState, rows: [Int], tokens: [Int32], position t: Int) {
        let c = config, C = c.dModel, N = rows.count, P = params.base, K = kernels
        for (a, token) in tokens.enumerated() {
            let xo = d.x.base + a * C, e = P + layout.wte + Int(token) * C, p = P + layout.wpe + t * C
            for i in 0..<C { xo[i] = e[i] + p[i] }
        }
        for l in 0..<c.layers { blockDecode(d, layer: l, rows: rows, position: t) }
        K.normForward(
            c.norm, d.h.base, d.mean.base, d.rstd.base, d.x.base, P + layout.lnfw, layout.lnfb.map { P + $0 },
            N: N, C: C, eps: c.normEpsilon)
        // Logits only: `draw` normalises the one distribution it samples from.
        K.headLogits(d.logits.base, d.h.base, P + layout.wte, N: N, C: C, V: c.vocab)
    }

    /// Block `l` at one position: `blockForward` for a single query per row, attending over
    /// the row's cache instead of its sequence.
    func blockDecode(_ d: DecodeState, layer l: Int, rows: [Int], position t: Int) {
        let c = config, C = c.dModel, F = c.hidden, N = rows.count, Tc = c.context, P = params.base, K = kernels
        let o = layout.layers[l], scale = 1 / Float(c.headDim).squareRoot()
        K.normForward(
            c.norm, d.h.base, d.mean.base, d.rstd.base, d.x.base, P + o.ln1w, o.ln1b.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
        K.linearForward(d.qkv.base, d.h.base, P + o.qkvw, P + o.qkvb, N: N, IN: C, OUT: 3 * C, accumulate: false)
        for (a, r) in rows.enumerated() {
            let q = d.qkv.base + a * 3 * C
            let kc = d.kCache.base + ((l * d.rows + r) * Tc) * C, vc = d.vCache.base + ((l * d.rows + r) * Tc) * C
            (kc + t * C).update(from: q + C, count: C)
            (vc + t * C).update(from: q + 2 * C, count: C)
            K.attendRow(d.atty.base + a * C, d.scores.base, q: q, k: kc, v: vc, ld: C, t: t, C: C, NH: c.heads, scale: scale)
        }
        K.linearForward(d.x.base, d.atty.base, P + o.projw, P + o.projb, N: N, IN: C, OUT: C, accumulate: true)
        K.normForward(
            c.norm, d.h.base, d.mean.base, d.rstd.base, d.x.base, P + o.ln2w, o.ln2b.map { P + $0 }, N: N, C: C, eps: c.normEpsilon)
        K.linearForward(d.fch.base, d.h.base, P + o.fcw, P + o.fcb, N: N, IN: C, OUT: F, accumulate: false)
        K.geluForward(d.fch.base, gate: nil, d.fch.base, N: N * F)
        K.linearForward(d.x.base, d.fch.base, P + o.fcprojw, P + o.fcprojb, N: N, IN: F, OUT: C, accumulate: true)
    }

    /// Draws one token from a row of logits; returns it with its log-probability under
    /// the distribution actually sampled from. `probs` is scratch for V floats.
    static func draw(
        logits z: FPtr, V: Int, options: SamplingOptions, probs: FMut, order: inout [Int],
        rng: inout SeededRNG, kernels K: any EngineKernels.Type
    ) -> (Int32, Float) {
        if options.temperature <= 0 {
            var best = 0
            for v in 1..<V where z[v] > z[best] { best = v }
            return (Int32(best), 0)
        }
        // probs[v] = exp((z[v] − max z) / temperature), unnormalised.
        let invT = 1 / options.temperature
        probs.update(from: z, count: V)
        if invT != 1 { K.scale(probs, count: V, by: invT) }
        let total = Double(K.exp(probs, probs, count: V, shift: K.max(probs, count: V)))
        var mass = total
        if options.topP < 1 {
            for v in 0..<V { order[v] = v }
            order.sort { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
            let target = Double(options.topP) * total
            var cum = 0.0
            var kept = 0
            while kept < V {
                cum += Double(probs[order[kept]])
                kept += 1
                if cum >= target { break }
            }
            mass = cum
            for i in kept..<V { probs[order[i]] = 0 }
        }
        let u = rng.uniform() * mass
        var acc = 0.0
        var chosen = -1
        for v in 0..<V where probs[v] > 0 {
            acc += Double(probs[v])
            chosen = v
            if u < acc { break }
        }
        // Non-finite logits (a diverged model) leave nothing to draw: emit token 0 with a
        // NaN log-probability, which the trainer reports as divergence.
        guard chosen >= 0, mass.isFinite else { return (0, .nan) }
        return (Int32(chosen), Float(log(Double(probs[chosen]) / mass)))
    }
}
