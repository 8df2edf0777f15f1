import Foundation
import RLCommon

/// A synthetic grid with known laws: configurations that differ in n, each following a
/// ScaleRL curve, run `runsPerConfiguration` times. Runs differ from each other (each has its
/// own asymptote and midpoint, drawn around the configuration's) and every evaluation point
/// carries noise with a known SE, as real cells do.
public struct SyntheticWorld: Sendable {
    /// One configuration's true law: the median run's A and C_mid.
    public struct Arm: Sendable {
        public var n: Int
        public var asymptote: Double
        public var midpoint: Double
        public init(n: Int, asymptote: Double, midpoint: Double) { self.n = n; self.asymptote = asymptote; self.midpoint = midpoint }
    }

    public var arms: [Arm]
    public var runsPerConfiguration: Int
    /// Score at compute 0, and the steepness B of every curve.
    public var initialScore = 0.1
    public var steepness = 1.0
    /// Run-to-run spread: SD of a run's asymptote, and of log10 of its midpoint.
    public var asymptoteSD = 0.03
    public var midpointDecadesSD = 0.05
    /// Whether run effects are heavy-tailed: Student's t with 3 degrees of freedom scaled to
    /// the same SDs, instead of normal (a few runs far from the rest, as RL runs can be).
    public var heavyTails = false
    /// SD of an evaluation point's noise (recorded as the point's SE).
    public var pointSD = 0.01
    /// Evaluation points per run after step 0, log-spaced over `decades` decades up to `budget`.
    public var points = 11
    public var decades = 3.0
    public var budget = 1e12
    /// Wall seconds recorded per run (the cost model of `core_hours_needed`).
    public var wallSeconds = 100.0

    /// Two arms (n = 4 and n = 16) whose curves bend inside three decades of compute.
    public init(runsPerConfiguration: Int,
                arms: [Arm] = [Arm(n: 4, asymptote: 0.6, midpoint: 2e10), Arm(n: 16, asymptote: 0.75, midpoint: 6e10)]) {
        self.runsPerConfiguration = runsPerConfiguration
        self.arms = arms
    }

    /// The world's cells for replication `seed` (every random draw flows from it).
    public func cells(seed: UInt64) -> [Cell] {
        var rng = SeededRNG(seed: seed).derived("synthetic-world")
        var cells: [Cell] = []
        let xs = (0..<points).map { budget * pow(10, -decades * Double(points - 1 - $0) / Double(max(1, points - 1))) }
        for arm in arms {
            for run in 0..<runsPerConfiguration {
                let a = arm.asymptote + asymptoteSD * runEffect(&rng)
                let mid = arm.midpoint * pow(10, midpointDecadesSD * runEffect(&rng))
                var curve = [CurvePoint(compute: 0, rollouts: 0, score: initialScore + pointSD * rng.gaussian(), se: pointSD)]
                for c in xs {
                    let y = initialScore + (a - initialScore) / (1 + pow(mid / c, steepness)) + pointSD * rng.gaussian()
                    curve.append(CurvePoint(compute: c, rollouts: c / 1e6, score: y, se: pointSD))
                }
                cells.append(Cell(id: "n\(arm.n)-run\(run)", method: "grpo", taskMix: "synthetic", parameters: 1e5,
                                  rolloutsPerProblem: arm.n, problemsPerBatch: 8, seed: UInt64(run), curve: curve,
                                  flopsPerRollout: 1e6, budget: budget, wallSeconds: wallSeconds, evalProblems: 100))
            }
        }
        return cells
    }

    /// One standardised run effect (mean 0, SD 1): normal, or t with 3 degrees of freedom / √3.
    func runEffect(_ rng: inout SeededRNG) -> Double {
        let z = rng.gaussian()
        guard heavyTails else { return z }
        let chi2 = (0..<3).reduce(0.0) { acc, _ in let g = rng.gaussian(); return acc + g * g }
        return z / (chi2 / 3).squareRoot() / 3.0.squareRoot()
    }
}

/// The coverage of a grid analysis's 95% intervals, measured on synthetic worlds with known
/// laws: the share of (world, arm) trials whose arm law's interval of A, and of C_mid,
/// contains the arm's true value.
public struct Coverage: Sendable {
    public var trials: Int
    public var asymptote: Double
    public var midpoint: Double
    /// Trials whose arm law was graded `too_few_runs`.
    public var tooFewRuns: Int

    /// Runs `replications` worlds (seeds 0 …) of `world` through `GridAnalysis.analyse` with
    /// `options` (replication by seed off) and counts the trials.
    public static func measure(_ world: SyntheticWorld, replications: Int, options: AnalysisOptions) -> Coverage {
        var o = options
        o.replicate = false
        var trials = 0, coverA = 0, coverC = 0, few = 0
        for r in 0..<replications {
            let cells = world.cells(seed: UInt64(r))
            let g = GridAnalysis.analyse(method: "grpo", taskMix: "synthetic", cells: cells, options: o)
            for arm in world.arms {
                guard let law = g.law("score[n=\(arm.n)]", .scaleRL) else { continue }
                trials += 1
                if LawQuality.interval(law, "A").contains(arm.asymptote) { coverA += 1 }
                if LawQuality.interval(law, "C_mid").contains(arm.midpoint) { coverC += 1 }
                if law.quality == .tooFewRuns { few += 1 }
            }
        }
        let t = Double(max(1, trials))
        return Coverage(trials: trials, asymptote: Double(coverA) / t, midpoint: Double(coverC) / t, tooFewRuns: few)
    }
}
