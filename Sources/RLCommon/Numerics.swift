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
    public static let version = 3
}
