/// The version of the harness's numerics: everything that changes what a base or a cell
/// computes from the same configuration and seed (the engine's kernels and their summation
/// order, the tasks and their verifiers, the RL methods, the evaluation). It enters every
/// base key and cell id, so results from different numerics never share an identity: after
/// a bump, `rlscale run` computes new cells instead of skipping "finished" ones, and
/// `rlscale fit` refuses a store that mixes versions. Bump it with any such change.
public enum Numerics {
    /// 2: the RL core as loss terms — expert iteration became supervised NLL (it had an
    /// importance ratio), the policy-gradient loss past the IS cap continues
    /// logarithmically, and windows gained per-method no-gradient fractions. GRPO, Dr. GRPO,
    /// RLOO, DAPO, process and opsd cells compute bitwise what they computed under 1.
    /// 3: self-distillation that works — privileged pretraining examples write the solution
    /// they show (every base changes), rollouts are capped per problem so a teacher's
    /// privileged prompt plus any rollout fits the context, and the self-distillation
    /// methods and knobs were redesigned (teacher, divergence, distill, distill_on).
    /// 4: the engine packs each batch's sequences end to end (no padding, no FLOP spent
    /// or charged on it: every pass is charged each sequence at its own length) and
    /// attends over each query's causal keys only, in hand-written SIMD code instead of
    /// per-head sgemm calls; AdamW and the gradient norm run eight lanes at a time.
    public static let version = 4
}
