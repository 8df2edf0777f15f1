import ArgumentParser
import BasePolicies
import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import RLTraining
import Rewards
import Tasks

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one grid cell: RL post-train a base policy until its compute budget is spent.",
        discussion: """
            Takes a base from the cache (pretraining it first if needed), post-trains a copy \
            with one method (\(Methods.names.joined(separator: ", "))) at n rollouts per \
            problem and Bp problems per batch until the budget C (FLOPs: sampling, training, \
            teacher and reference passes) is spent, and evaluates at log-spaced compute \
            points. Writes the cell document (learning curve, diagnostics, compute) as JSON.
            """)

    @Option(help: "Base ladder size (\(BaseLadder.sizes.map(\.name).joined(separator: ", "))).") var base: String = "s"
    @Option(help: "Base pretraining tokens per non-embedding parameter.") var baseTokensPerParam: Double = 8
    @Option(help: "Base minimum pretraining tokens.") var baseMinTokens: Int = 2_000_000
    @Option(help: "Base: share of privileged pretraining examples.") var basePrivilegedFraction: Double = CorpusConfig.defaultPrivilegedFraction
    @Option(help: "Base: share of plain pretraining examples written as multi-turn episodes.") var baseEpisodeFraction: Double = 0
    @Option(help: "Results directory (bases are cached in RESULTS/bases).") var results: String = "results"

    @Option(help: "RL method.") var method: String = CellDefaults.method
    @Option(help: "Rollouts per problem (n).") var n: Int = CellDefaults.rolloutsPerProblem
    @Option(help: "Problems per batch (Bp).") var bp: Int = CellDefaults.problemsPerBatch
    @Option(help: "Compute budget in FLOPs, e.g. 2e12.") var budget: Double
    @Option(help: "Learning rate (constant after warmup).") var lr: Float = CellDefaults.learningRate
    @Option(help: "Warmup steps.") var warmup: Int = CellDefaults.warmupSteps
    @Option(help: "Training task mixture (default: all families).") var tasks: String?
    @Option(help: "Lowest training difficulty.") var minDifficulty: Int = CellDefaults.minDifficulty
    @Option(help: "Highest training difficulty (default: the base's pretraining range).") var maxDifficulty: Int?
    @Option(help: "uniform, easy_to_hard or pass_rate[:low-high].") var curriculum: String = "uniform"
    @Option(help: "Train on a fixed pool of this many distinct problems (D) instead of fresh ones.") var poolSize: Int?
    @Option(help: "Only pool problems whose base pass rate is in this bucket (easy, medium, hard, solved, unsolved); needs --pool-size.")
    var trainBucket: String?
    @Option(help: "Policy lag k: rollouts from weights k updates old.") var lag: Int = CellDefaults.policyLag
    @Option(help: "KL-to-base coefficient (grpo).") var kl: Double = CellDefaults.klCoef
    @Option(help: "Entropy bonus coefficient (grpo).") var entropy: Double = CellDefaults.entropyCoef
    @Option(help: "Self-distillation teacher (opsd, sdpo, sdpg): base, lag:k, ema:r or policy.")
    var teacher: String = CellDefaults.teacher.description
    @Option(help: "Self-distillation divergence: reverse_kl, forward_kl, jsd:β or sampled.")
    var divergence: String = CellDefaults.divergence.description
    @Option(help: "Distillation weight α (λ for sdpg).") var distill: Double = CellDefaults.distill
    @Option(help: "Distilled tokens: all, failed or confident:τ.") var distillOn: String = CellDefaults.distillOn.description
    @Option(help: "Training reward: \(RewardSource.spellings).") var reward: String = CellDefaults.reward.description
    @Option(help: "Reward model (--reward rm): the ladder size it starts from, or base (the policy's).")
    var rmSize: String = CellDefaults.rmSize
    @Option(help: "Reward model: labelled base samples it learns from.") var rmLabels: Int = CellDefaults.rmLabels
    @Option(help: "Reward model: probability that a training label is flipped.") var rmLabelNoise: Double = CellDefaults.rmLabelNoise
    @Option(help: "Reward model ensemble: \(RewardEnsemble.spellings).") var rmEnsemble: String = CellDefaults.rmEnsemble.description
    @Option(help: "Attempts per training episode (1: single-turn rollouts).") var turns: Int = CellDefaults.turns
    @Option(help: "Feedback after a rejected attempt (--turns > 1): \(Feedback.spellings).")
    var feedback: String = CellDefaults.feedback.description
    @Option(help: "Credit over turns (--turns > 1; grpo, dapo): \(TurnCredit.spellings).")
    var turnCredit: String = CellDefaults.turnCredit.description
    @Option(help: "Turns of the multi-turn evaluation at each point (default: --turns).") var evalTurns: Int?
    @Option(help: "Support expansion: samples K per held-out unsolved and hard problem, from the base at step 0 and the policy at the end.")
    var supportSamples: Int?
    @Flag(help: "Reward diagnostics (sequence KL to the base, proxy beside gold) at every evaluation point on the gold reward too (always measured on a proxy or learned reward).")
    var evalKL = false
    @Option(help: "Held-out levels each evaluation point samples: all (every level of the cell's families) or train (the training levels only).")
    var evalLevels: EvalLevels = .all
    @Option(help: "Seed.") var seed: UInt64 = CellDefaults.seed
    @Option(help: "Evaluation points (step 0 included).") var evalPoints: Int = CellDefaults.evalPoints
    @Option(help: "Samples per eval problem.") var evalSamples: Int = CellDefaults.evalSamples
    @Option(help: "Eval problems per family and difficulty.") var evalProblems: Int = CellDefaults.evalProblemsPerLevel
    @Option(help: "BLAS threads.") var threads: Int = 1
    @Option(help: "Write the cell document here (default: print it).") var out: String?
    @Flag(help: "Log every step to stderr.") var verbose = false

    func run() throws {
        setBLASThreads(threads)
        let mixture: TaskMixture
        do { mixture = try tasks.map { try TaskMixture.parse($0) } ?? .uniform } catch {
            throw ValidationError("--tasks: \(error)")
        }
        guard let cur = Curriculum.parse(curriculum) else {
            throw ValidationError("--curriculum: '\(curriculum)' is not uniform, easy_to_hard or pass_rate[:low-high]")
        }
        var bucket: PassBucket?
        if let b = trainBucket {
            guard let pb = PassBucket(rawValue: b) else {
                throw ValidationError("--train-bucket: '\(b)' is not one of \(PassBucket.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            bucket = pb
        }
        for (option, x) in [("--base-privileged-fraction", basePrivilegedFraction), ("--base-episode-fraction", baseEpisodeFraction)]
        where !(0...1).contains(x) {
            throw ValidationError("\(option): \(x) is not in [0, 1]")
        }
        let corpus = CorpusConfig(privilegedFraction: basePrivilegedFraction, episodeFraction: baseEpisodeFraction)
        guard let spec = BaseLadder.spec(base, corpus: corpus, tokensPerParameter: baseTokensPerParam, minTokens: baseMinTokens) else {
            throw ValidationError("--base: unknown size '\(base)'")
        }
        var config = CellConfig(
            method: method, rolloutsPerProblem: n, problemsPerBatch: bp, budgetFLOPs: budget, learningRate: lr,
            warmupSteps: warmup, tasks: mixture, maxDifficulty: maxDifficulty, minDifficulty: minDifficulty,
            curriculum: cur, trainBucket: bucket, poolSize: poolSize, policyLag: lag, klCoef: kl, entropyCoef: entropy, distill: distill,
            seed: seed, evalPoints: evalPoints, evalSamples: evalSamples,
            evalProblemsPerLevel: evalProblems)
        let rewardKnobs: [(MethodKnob, String)] = [
            (.reward, reward), (.rmSize, rmSize), (.rmLabels, String(rmLabels)), (.rmLabelNoise, knobNumber(rmLabelNoise)),
            (.rmEnsemble, rmEnsemble), (.turns, String(turns)), (.feedback, feedback), (.turnCredit, turnCredit),
        ]
        for (knob, spelled) in [(MethodKnob.teacher, teacher), (.divergence, divergence), (.distillOn, distillOn)] + rewardKnobs {
            if let why = config.set(knob, to: spelled) {
                FileHandle.standardError.write(Data(("Error: " + Self.namingTheOption("\(knob.rawValue): \(why)") + "\n").utf8))
                throw ExitCode(2)
            }
        }
        config.evalTurns = evalTurns == config.episodeSpec.turns ? nil : evalTurns
        config.supportSamples = supportSamples
        config.evalKL = evalKL ? true : nil
        config.evalLevels = evalLevels == .all ? nil : evalLevels
        if let why = config.validationError() ?? config.episodeFitError(corpus: spec.corpus) {
            // The options parsed but do not make a runnable cell (e.g. --kl with dapo): like a
            // bad grid file, say why without the usage banner and exit with status 2.
            FileHandle.standardError.write(Data(("Error: " + Self.namingTheOption(why) + "\n").utf8))
            throw ExitCode(2)
        }
        let stderr = { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) }
        let (model, record) = try BaseCache(directory: results + "/bases").obtain(spec, log: stderr)
        let cache = BaseCache(directory: results + "/bases")
        let pool = try config.poolRequest(base: record).map { try cache.obtainPool(spec, $0, base: model, log: stderr) }
        var rewardModel: RewardModel?
        if let size = config.rewardModel?.size {
            guard let rmSpec = size == "base" ? spec : BaseLadder.spec(size, corpus: corpus, tokensPerParameter: baseTokensPerParam, minTokens: baseMinTokens)
            else { throw ValidationError("--rm-size: unknown size '\(size)'") }
            let (rmBase, rmRecord) = try cache.obtain(rmSpec, log: stderr)
            if let request = config.rewardModelRequest(policyBase: record, rmBase: rmRecord) {
                rewardModel = try RewardModelCache(directory: cache.directory).obtain(request, policyBase: model, rmBase: rmBase, log: stderr)
            }
        }
        let result = try CellRunner(
            config: config, base: model, baseRecord: record, pool: pool, rewardModel: rewardModel, log: verbose ? stderr : nil
        ).run()
        let data = try CellResult.encoder.encode(result)
        if let out {
            try AtomicFile.write(data, to: out)
            print(CellSummary.render(result))
        } else {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

extension Train {
    /// A `CellConfig.validationError()` message with its leading grid key written as the
    /// option that sets it: "distill_on: …" becomes "--distill-on: …".
    static func namingTheOption(_ why: String) -> String {
        guard let colon = why.firstIndex(of: ":") else { return why }
        let key = why[..<colon]
        guard !key.isEmpty, key.allSatisfy({ $0.isLowercase || $0 == "_" }) else { return why }
        return "--" + key.replacingOccurrences(of: "_", with: "-") + why[colon...]
    }
}

/// A short readable summary of a cell's learning curve.
enum CellSummary {
    static func avg4(_ p: EvalPoint, _ group: String) -> Double? {
        let gs = p.groups.filter { $0.group == group }
        guard !gs.isEmpty else { return nil }
        let total = gs.reduce(0) { $0 + $1.problems }
        return gs.reduce(0.0) { $0 + ($1.avg["4"] ?? 0) * Double($1.problems) } / Double(total)
    }

    static func render(_ r: CellResult) -> String {
        var s = "cell \(r.config.methodLabel) n=\(r.config.rolloutsPerProblem) Bp=\(r.config.problemsPerBatch): \(r.status)"
        if let f = r.failure { s += " (\(f))" }
        s += String(format: ", %d steps, %.3g FLOPs, %.0f s\n", r.steps, r.compute.total, r.wallSeconds)
        let teacher = r.curve.contains { $0.teacher != nil }
        let proxy = !r.config.rewardSource.isGold
        s += "      step       FLOPs  rollouts  avg@4 all  avg@4 easy  avg@4 hard  support+  KL(base)"
        s += teacher ? "  D(teacher)  uplift  distilled" : ""
        s += proxy ? "   proxy    gold    hack       d\n" : "\n"
        for p in r.curve {
            func f(_ x: Double?) -> String { x.map { String(format: "%10.3f", $0) } ?? "         -" }
            s += String(format: "%10d %11.3g %9d", p.step, p.compute.total, p.compute.rollouts)
            s += " " + f(avg4(p, "all")) + "  " + f(avg4(p, "easy")) + "  " + f(avg4(p, "hard"))
            s += String(format: "  %4d/%-4d %8.4f", p.supportExpansion, p.baseUnsolved, p.klToBase)
            if let t = p.teacher {
                s += String(format: "  %10.3f  %+6.3f  %9.2f", t.divergence, t.uplift.uplift, t.distilledFraction)
            }
            if proxy, let w = p.reward {
                s += String(format: "  %6.3f  %6.3f  %6.3f  %6.2f", w.proxy, w.gold, w.hackRate, w.d)
            }
            s += "\n"
        }
        if let rm = r.rewardModel {
            s += String(format: "reward model %@ (%@, %d labels, %d member(s)): held-out accuracy %.3f (majority %.3f), AUC %.3f\n",
                        String(rm.key.prefix(8)), rm.base, rm.labels, rm.members, rm.heldOutAccuracy, rm.majorityAccuracy, rm.heldOutAUC ?? .nan)
        }
        if r.curve.contains(where: { $0.multiTurn != nil }) {
            s += "      step  solved within t = 1 … T              turns  repeat  tokens/episode\n"
            for p in r.curve {
                guard let m = p.multiTurn else { continue }
                s += String(format: "%10d  ", p.step) + m.solvedWithin.map { String(format: "%.3f", $0) }.joined(separator: " ")
                s += String(format: "  %5.2f  %6@  %6.1f\n", m.meanTurns, m.repeatShare.map { String(format: "%.3f", $0) } ?? "-", m.tokensPerEpisode)
            }
        }
        if let sm = r.support {
            s += "support expansion (K = \(sm.samples), \(sm.problems.count) unsolved and hard problems): new support \(sm.newSupport) of \(sm.baseZero)"
            s += String(format: " (expected false discoveries %.2f), lost %d\n", sm.expectedFalseDiscoveries, sm.lostSupport)
            for c in sm.passAtK { s += String(format: "  pass@%-4d base %.3f  policy %.3f\n", c.k, c.base, c.policy) }
        }
        if let w = r.windows.last {
            s += String(format: "last window: reward %.3f, dead zone %.2f (%.2f of sampling FLOPs), clip %.3f, entropy %.3f\n",
                        w.meanReward, w.deadZoneFraction, w.deadZoneFLOPsShare, w.clipFraction, w.entropy)
        }
        return s
    }
}
extension EvalLevels: ExpressibleByArgument {}
