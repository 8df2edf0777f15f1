import Foundation
import Laws
import RLCommon
import ResultSchema
import Testing

/// Evenly spaced values from lo to hi.
func linSpace(_ lo: Double, _ hi: Double, _ count: Int) -> [Double] {
    (0..<count).map { lo + (hi - lo) * Double($0) / Double(count - 1) }
}

/// The argmax and max of `f` on a fine grid of (0, hi]: an independent check of the closed
/// forms of d* and R*.
func numericPeak(_ f: (Double) -> Double, upTo hi: Double) -> (d: Double, value: Double) {
    var best = (d: Double.nan, value: -Double.infinity)
    for i in 1...200_000 {
        let d = hi * Double(i) / 200_000
        let v = f(d)
        if v > best.value { best = (d, v) }
    }
    return best
}

/// A done cell document of a run on a proxy reward whose evaluation points carry reward
/// diagnostics: step 0 at d = 0 with gold `base`, then `gold(d)` (plus `noise`·N(0, 1) from
/// `rng`) at each d of `ds`; the proxy keeps rising (base + 0.2 d).
func rewardCell(seed: UInt64, budget: Double = 1e12, base: Double = 0.2, ds: [Double], noise: Double = 0,
                rng: inout SeededRNG, gold: (Double) -> Double) -> CellResult {
    var config = CellConfig(method: "grpo", rolloutsPerProblem: 8, budgetFLOPs: budget, seed: seed)
    config.rewardSource = .contains(maxLength: 8)
    func point(_ step: Int, _ d: Double, _ g: Double) -> EvalPoint {
        let r = RewardDiagnostics(samples: 400, proxy: base + 0.2 * d, proxySE: 0.01, gold: g, goldSE: 0.01, hackRate: 0.05 * d,
                                  hackRateSE: 0.01, sequenceKL: d * d, sequenceKLSE: 0.01)
        return EvalPoint(step: step, compute: ComputeLedger(), wallSeconds: 0, groups: [], supportExpansion: 0, baseUnsolved: 0,
                         klToBase: 0, entropy: 0, reward: r)
    }
    var curve = [point(0, 0, base)]
    for (i, d) in ds.enumerated() { curve.append(point(10 * (i + 1), d, base + gold(d) + noise * rng.gaussian())) }
    return CellResult(config: config, baseKey: "xs-key", baseName: "xs", baseParameters: 25_472, status: "done",
                      steps: 10 * ds.count, curve: curve, windows: [], compute: ComputeLedger(), wallSeconds: 0)
}

@Suite("Reward over-optimisation: Gao laws")
struct OverOptimisationTests {
    static let (alpha, beta) = (0.5, 0.2)

    // MARK: Forms

    /// gao_rl recovers α = 0.5, β = 0.2 from 60 points with σ = 0.01 noise to within 0.01
    /// each (their standard errors are a few 1e-3), and its d*, R* are the closed forms
    /// exp(α/β − 1), β d* of the fitted values, which are the law's numerical argmax and max
    /// (and within 3% of the true d* = e^1.5, R* = 0.2 e^1.5).
    @Test func gaoRLRecoversAlphaBetaAndPeak() {
        var rng = SeededRNG(seed: 21)
        let d = linSpace(0.1, 6, 60)
        let y = d.map { $0 * (Self.alpha - Self.beta * log($0)) + 0.01 * rng.gaussian() }
        let fit = Laws.fit(.gaoRL, LawData(x: d, y: y))
        #expect(fit.isOK, "\(fit.status)")
        #expect(abs(fit.value("alpha") - Self.alpha) < 0.01, "alpha \(fit.value("alpha"))")
        #expect(abs(fit.value("beta") - Self.beta) < 0.01, "beta \(fit.value("beta"))")
        #expect(fit.r2 > 0.99)
        #expect(fit.nPoints == 60)
        let (a, b) = (fit.value("alpha"), fit.value("beta"))
        let peak = GaoPeak(fit)
        #expect(abs(peak.d - exp(a / b - 1)) <= 1e-12 * peak.d)
        #expect(abs(peak.gain - b * exp(a / b - 1)) <= 1e-12 * peak.gain)
        let numeric = numericPeak({ fit.predict($0) }, upTo: 12)
        #expect(abs(numeric.d - peak.d) < 1e-3, "numerical argmax \(numeric.d), closed form \(peak.d)")
        #expect(abs(numeric.value - peak.gain) < 1e-9, "numerical max \(numeric.value), closed form \(peak.gain)")
        #expect(relClose(peak.d, exp(1.5), 0.03))
        #expect(relClose(peak.gain, 0.2 * exp(1.5), 0.03))
        // The law passes through 0 at d = 0.
        #expect(fit.predict(0) == 0)
    }

    /// gao_bon recovers α, β the same way; d* = α / (2β), R* = α² / (4β) are the law's
    /// numerical argmax and max (true values 1.25 and 0.3125).
    @Test func gaoBoNRecoversAlphaBetaAndPeak() {
        var rng = SeededRNG(seed: 22)
        let d = linSpace(0.1, 6, 60)
        let y = d.map { $0 * (Self.alpha - Self.beta * $0) + 0.01 * rng.gaussian() }
        let fit = Laws.fit(.gaoBoN, LawData(x: d, y: y))
        #expect(fit.isOK, "\(fit.status)")
        #expect(abs(fit.value("alpha") - Self.alpha) < 0.01, "alpha \(fit.value("alpha"))")
        #expect(abs(fit.value("beta") - Self.beta) < 0.01, "beta \(fit.value("beta"))")
        let (a, b) = (fit.value("alpha"), fit.value("beta"))
        let peak = GaoPeak(fit)
        #expect(abs(peak.d - a / (2 * b)) <= 1e-12 * peak.d)
        #expect(abs(peak.gain - a * a / (4 * b)) <= 1e-12 * peak.gain)
        let numeric = numericPeak({ fit.predict($0) }, upTo: 6)
        #expect(abs(numeric.d - peak.d) < 1e-3, "numerical argmax \(numeric.d), closed form \(peak.d)")
        #expect(abs(numeric.value - peak.gain) < 1e-9)
        #expect(relClose(peak.d, 1.25, 0.03))
        #expect(relClose(peak.gain, 0.3125, 0.03))
    }

    /// Noise-free data (a robust σ of 0) are fitted exactly; rows at d = 0 are ignored; a few
    /// gross outliers barely move the Huber fit.
    /// Which laws have a peak. gao_rl: any β > 0 (R″ = −β/d < 0), also with α ≤ 0 — an
    /// early peak below 1/e, at the numerically found maximum; never with β ≤ 0. gao_bon:
    /// α > 0 and β > 0 (else its maximum sits at d ≤ 0).
    @Test func whichLawsHaveAPeak() {
        for (a, b) in [(-0.1, 0.2), (0.0, 0.2), (0.1, 0.2)] {
            let p = GaoPeak(.gaoRL, alpha: a, beta: b)
            let grid = (1...200_000).map { Double($0) * 1e-5 }
            let best = grid.max { $0 * (a - b * log($0)) < $1 * (a - b * log($1)) } ?? .nan
            #expect(abs(p.d - best) < 2e-5 && abs(p.gain - best * (a - b * log(best))) < 1e-9, "α \(a): d* \(p.d), search \(best)")
        }
        for (a, b) in [(0.1, -0.2), (-0.1, -0.2), (0.1, 0.0)] {
            #expect(GaoPeak(.gaoRL, alpha: a, beta: b).d.isNaN, "gao_rl α \(a) β \(b)")
        }
        for (a, b) in [(-0.1, 0.2), (0.1, -0.2), (-0.1, -0.2), (0, 0.2)] {
            let p = GaoPeak(.gaoBoN, alpha: a, beta: b)
            #expect(p.d.isNaN && p.gain.isNaN, "gao_bon α \(a) β \(b): d* \(p.d)")
        }
        #expect(GaoPeak(.gaoBoN, alpha: 0.1, beta: 0.2).d == 0.25)
    }

    @Test func exactDataZeroRowsAndOutliers() {
        let d = linSpace(0.2, 5, 25)
        for form in [LawForm.gaoRL, .gaoBoN] {
            let y = d.map { LawFit(form: form, values: [Self.alpha, Self.beta]).predict($0) }
            let fit = Laws.fit(form, LawData(x: [0, 0] + d, y: [0, 0.3] + y))
            #expect(fit.isOK, "\(form): \(fit.status)")
            #expect(fit.nPoints == 25)
            #expect(abs(fit.value("alpha") - Self.alpha) < 1e-9 && abs(fit.value("beta") - Self.beta) < 1e-9, "\(form): \(fit.values)")
        }
        var rng = SeededRNG(seed: 23)
        var y = linSpace(0.1, 6, 40).map { $0 * (Self.alpha - Self.beta * log($0)) + 0.01 * rng.gaussian() }
        for i in [5, 17, 30] { y[i] += 0.5 }
        let robust = Laws.fit(.gaoRL, LawData(x: linSpace(0.1, 6, 40), y: y))
        #expect(abs(robust.value("alpha") - Self.alpha) < 0.02 && abs(robust.value("beta") - Self.beta) < 0.02, "\(robust.values)")
        #expect(Laws.fit(.gaoRL, LawData(x: [-1, 1, 2, 3], y: [0, 1, 2, 3])).status.hasPrefix("negative d"))
        #expect(Laws.fit(.gaoBoN, LawData(x: [2, 2, 2, 0], y: [0.1, 0.2, 0.3, 0])).status.hasPrefix("flat: every d"))
        #expect(GaoPeak(.gaoRL, alpha: -0.1, beta: 0.2).d == exp(-1.5) && GaoPeak(.gaoRL, alpha: 0.5, beta: -0.2).gain.isNaN)
        #expect(GaoPeak(.gaoBoN, alpha: 0.5, beta: 0).d.isNaN && GaoPeak(.powerLaw, alpha: 1, beta: 1).d.isNaN)
        #expect(LawForm(rawValue: "gao_rl") == .gaoRL && LawForm.gaoBoN.parameterNames == ["alpha", "beta"])
        #expect(LawForm.fitted.contains(.gaoRL) && HoldoutMetric(.gaoBoN) == .maxGain)
    }

    // MARK: Holdout

    /// The holdout refits on the points at or below the 75th percentile of d only and scores
    /// the rest against the largest |gain|: recomputed here by hand on data that collapse
    /// above the cut (a leak would see the collapse and score far better).
    @Test func holdoutIsLeakFreeAndNeedsThreeHeldOutPoints() throws {
        let d = linSpace(0.25, 5, 20)
        let y = d.map { $0 <= 3.9 ? 0.3 * $0 : 0.3 * $0 - 2 * ($0 - 3.9) }
        let data = LawData(x: [0] + d, y: [0] + y)
        let cut = 0.25 + 0.75 * (5 - 0.25)  // type-7 quantile of 20 evenly spaced values
        let train = d.indices.filter { d[$0] <= cut }, test = d.indices.filter { d[$0] > cut }
        #expect(test.count == 5)
        let refit = Laws.fit(.gaoRL, LawData(x: train.map { d[$0] }, y: train.map { y[$0] }))
        let scale = y.map { abs($0) }.max() ?? .nan
        let want = test.map { abs(refit.predict(d[$0]) - y[$0]) }.reduce(0, +) / Double(test.count) / scale
        let got = try Holdout.upperQuantileError(.gaoRL, data).get()
        #expect(abs(got - want) < 1e-12, "holdout \(got), by hand \(want)")
        #expect(got > 0.5)
        // Laws.estimate uses the same check for the Gao forms.
        let e = Laws.estimate(.gaoRL, data, bootstrap: BootstrapOptions(resamples: 0))
        #expect(e.holdoutError == got && e.holdoutMetric == .maxGain)
        // 8 points: 2 above the 75th percentile, too few.
        let few = Holdout.upperQuantileError(.gaoRL, LawData(x: linSpace(0.5, 4, 8), y: linSpace(0.5, 4, 8).map { 0.3 * $0 }))
        guard case .failure(let why) = few else { Issue.record("expected no holdout"); return }
        #expect(why.reason.hasPrefix("2 point(s) above the 75th percentile"), "\(why.reason)")
    }

    // MARK: Arms from cell documents

    /// Six runs (two seeds, three runs each, one budget) whose gold rises then falls along d (α = 0.5, β = 0.2, peak at d ≈ 4.48, measured to d = 8):
    /// graded pass with the peak observed, d* and R* within 2% of the truth and inside their
    /// intervals. (Whether an interval covers the truth is a coverage statement that a
    /// percentile bootstrap over six runs makes only ~85% of the time, so it is not asserted.)
    @Test func overOptimisedArmPasses() throws {
        var rng = SeededRNG(seed: 31)
        let ds = linSpace(0.3, 8, 24)
        let cells = (0..<6).map { i in
            rewardCell(seed: UInt64(i % 2), ds: ds, noise: 0.01, rng: &rng) { $0 * (Self.alpha - Self.beta * log($0)) }
        }
        let report = OverOptimisation.analyse(cells: cells, options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 200, seed: 3)))
        #expect(report.skipped.isEmpty)
        let arm = try #require(report.arms.first)
        #expect(report.arms.count == 1)
        #expect(arm.key.method == "grpo[reward=contains:8]" && arm.key.reward == "contains:8" && arm.key.base == "xs")
        #expect(arm.runs.count == 6 && arm.fittedPoints == 6 * 24 && arm.seeds == [0, 1])
        let law = try #require(arm.law(.gaoRL))
        #expect(law.fit.isOK, "\(law.status)")
        #expect(abs(law.value("alpha") - Self.alpha) < 0.02 && abs(law.value("beta") - Self.beta) < 0.02)
        #expect(law.interval("beta").low > 0)
        #expect(relClose(law.value("d_star"), exp(1.5), 0.02) && relClose(law.value("r_star"), 0.2 * exp(1.5), 0.02))
        for name in ["alpha", "beta", "d_star", "r_star"] {
            let iv = law.interval(name)
            #expect(iv.contains(law.value(name)) && iv.high - iv.low < 0.1 * abs(law.value(name)), "\(name): \(iv)")
        }
        #expect(law.law.estimate.holdoutError < 0.1)
        #expect(law.law.seedFits.count == 2)
        #expect(arm.peakObserved)
        #expect(law.quality == .pass, "\(law.quality) \(law.status)")
        // Final means at the largest d.
        #expect(abs(arm.finalProxy - (0.2 + 0.2 * 8)) < 1e-9)
        #expect(abs(arm.finalHackRate - 0.4) < 1e-9)
        #expect(abs(arm.finalGold - (0.2 + 8 * (Self.alpha - Self.beta * log(8)))) < 0.02)
        #expect(abs(arm.dMax - 8) < 1e-9)
    }

    /// A monotone rising arm (gold gain 0.1·d): β is about 0, so either its interval
    /// includes 0 or the law's peak lies far beyond the measured d; the data show no peak.
    @Test func risingArmHasNoPeak() throws {
        var rng = SeededRNG(seed: 32)
        let ds = linSpace(0.3, 6, 20)
        let cells = (0..<5).map { i in rewardCell(seed: UInt64(i), ds: ds, noise: 0.01, rng: &rng) { 0.1 * $0 } }
        let report = OverOptimisation.analyse(cells: cells, options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 200)))
        let arm = try #require(report.arms.first)
        let law = try #require(arm.law(.gaoRL))
        #expect(law.fit.isOK)
        #expect(abs(law.value("beta")) < 0.005 && abs(law.value("alpha") - 0.1) < 0.01, "\(law.fit.values)")
        #expect(law.interval("beta").low <= 0 || !(law.peak.d <= 1.5 * arm.dMax), "\(law.interval("beta")), d* \(law.peak.d)")
        #expect(!arm.peakObserved)
        #expect(law.quality == .noPeak, "\(law.quality) \(law.status)")
    }

    /// Gold that is pure noise (uniform on [0, 1)) along d does not pass.
    @Test func garbageDoesNotPass() throws {
        var rng = SeededRNG(seed: 33)
        var noise = SeededRNG(seed: 34)
        let ds = linSpace(0.3, 6, 20)
        let cells = (0..<5).map { i in rewardCell(seed: UInt64(i), ds: ds, rng: &rng) { _ in noise.uniform() - 0.2 } }
        let report = OverOptimisation.analyse(cells: cells, options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 200)))
        let law = try #require(report.arms.first?.law(.gaoRL))
        #expect(law.quality != .pass, "\(law.quality) \(law.status)")
    }

    /// Arms split by reward source and base; failed cells and cells without reward diagnostics
    /// are skipped with the reason; a single run gets no interval (so no pass).
    @Test func armsAndSkippedCells() throws {
        var rng = SeededRNG(seed: 35)
        let ds = linSpace(0.3, 8, 12)
        let gao = { (d: Double) in d * (Self.alpha - Self.beta * log(d)) }
        var gold = rewardCell(seed: 0, ds: ds, rng: &rng, gold: gao)
        gold.config.rewardSource = .gold
        var failed = rewardCell(seed: 0, ds: ds, rng: &rng, gold: gao)
        failed.status = "failed"
        var old = rewardCell(seed: 0, ds: ds, rng: &rng, gold: gao)
        for i in old.curve.indices { old.curve[i].reward = nil }
        let cells = [rewardCell(seed: 0, ds: ds, rng: &rng, gold: gao), gold, failed, old]
        let report = OverOptimisation.analyse(cells: cells, ids: ["a", "b", "c", "d"],
                                              options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 20)))
        #expect(report.skipped.map(\.id) == ["c", "d"])
        #expect(report.skipped.first?.reason == "status failed")
        // Sorted by method label: "grpo" (gold) before "grpo[reward=contains:8]".
        #expect(report.arms.map(\.key.reward) == ["gold", "contains:8"])
        #expect(report.arms.map(\.runs) == [["b"], ["a"]])
        for arm in report.arms {
            let law = try #require(arm.law(.gaoRL))
            #expect(law.status.contains("bootstrap: one run, no interval"), "\(law.status)")
            #expect(law.quality == .noPeak)
        }
    }

    /// peak_observed needs the largest gain below the largest d and a fall to the final gain
    /// of more than 2 × the typical gold SE.
    @Test func peakObservedNeedsAFallBeyondTwoSE() {
        let key = OverOptimisationArmKey(method: "grpo", reward: "contains:8", base: "xs", parameters: 25_472, rolloutsPerProblem: 8)
        func arm(_ gains: [Double], se: Double) -> OverOptimisationArm {
            let points = gains.indices.map { i in
                OverOptimisationPoint(d: Double(i), gain: gains[i], gold: 0.2 + gains[i], goldSE: se, unit: 0, budget: 1,
                                      isFinal: i == gains.count - 1)
            }
            return OverOptimisation.analyseArm(key: key, runs: ["r"], points: points, bootstrap: BootstrapOptions(resamples: 0))
        }
        let fall = [0, 0.2, 0.3, 0.28, 0.25]  // falls by 0.05 from its peak
        #expect(arm(fall, se: 0.01).peakObserved)
        #expect(!arm(fall, se: 0.03).peakObserved)
        #expect(arm(fall, se: 0.03).typicalGoldSE == 0.03)
        #expect(!arm([0, 0.1, 0.2, 0.3, 0.4], se: 0.01).peakObserved)
    }

    /// The final means are over the last evaluations of the largest-budget runs only (they
    /// reach the largest d); a smaller-budget run that stops earlier does not count.
    @Test func finalsComeFromTheLargestBudgetRuns() throws {
        var rng = SeededRNG(seed: 36)
        let cells = [
            rewardCell(seed: 0, budget: 1e12, ds: linSpace(0.5, 8, 16), rng: &rng) { 0.1 * $0 },
            rewardCell(seed: 1, budget: 1e12, ds: linSpace(0.5, 8, 16), rng: &rng) { 0.1 * $0 },
            rewardCell(seed: 2, budget: 1e11, ds: linSpace(0.5, 4, 8), rng: &rng) { 0.1 * $0 },
        ]
        let arm = try #require(OverOptimisation.analyse(cells: cells, options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 0))).arms.first)
        #expect(arm.runs.count == 3)
        #expect(abs(arm.finalGold - 1.0) < 1e-9 && abs(arm.finalProxy - 1.8) < 1e-9 && abs(arm.finalHackRate - 0.4) < 1e-9,
                "\(arm.finalGold) \(arm.finalProxy) \(arm.finalHackRate)")
    }

    /// The no_peak gate on hand-made laws: β's interval above 0 and d* within
    /// [min d, 1.5 × max d] pass it; then the holdout and seeds gates follow.
    @Test func noPeakGate() {
        let data = LawData(x: linSpace(0.5, 4, 10), y: [Double](repeating: 0, count: 10))
        func grade(_ beta: Interval, values: [Double] = [0.5, 0.2], holdout: Double = 0.05, seeds: [SeedFit] = []) -> LawQuality {
            LawResult(quantity: "gold_gain", fit: LawFit(form: .gaoRL, values: values),
                      intervals: [Interval(low: 0.4, high: 0.6), beta], holdoutError: holdout, nPoints: 10, seedFits: seeds, data: data).quality
        }
        // d* = e^1.5 ≈ 4.48 ≤ 1.5 × 4.
        #expect(grade(Interval(low: 0.1, high: 0.3)) == .pass)
        #expect(grade(Interval(low: -0.01, high: 0.3)) == .noPeak)
        #expect(grade(.unknown) == .noPeak)
        // d* = e^(0.5/0.1 − 1) ≈ 54.6 > 6: the peak is far outside the measured range.
        #expect(grade(Interval(low: 0.05, high: 0.3), values: [0.5, 0.1]) == .noPeak)
        // d* = e^(0.1/0.2 − 1) ≈ 0.61 ≥ 0.5 passes; e^(0.05/0.2 − 1) ≈ 0.47 < 0.5 does not.
        #expect(grade(Interval(low: 0.1, high: 0.3), values: [0.1, 0.2]) == .pass)
        #expect(grade(Interval(low: 0.1, high: 0.3), values: [0.05, 0.2]) == .noPeak)
        #expect(grade(Interval(low: 0.1, high: 0.3), holdout: 0.2) == .holdoutAbove10Percent)
        #expect(grade(Interval(low: 0.1, high: 0.3), seeds: [SeedFit(seed: 1, values: [0.5, 0.35], intervals: [])]) == .seedsDisagree)
        // Without data the range is unknown: not resolved.
        let bare = LawResult(quantity: "gold_gain", fit: LawFit(form: .gaoRL, values: [0.5, 0.2]),
                             intervals: [Interval(low: 0.4, high: 0.6), Interval(low: 0.1, high: 0.3)], holdoutError: 0.05, nPoints: 10)
        #expect(bare.quality == .noPeak)
        #expect(LawQuality.noPeak.rawValue == "no_peak" && LawQuality.noPeak.words.contains("over-optimisation not resolved"))
    }

    // MARK: Best-of-n and output

    /// A best-of-n table (5 units, n = 1…1024, d from n): gao_bon recovers α, β, the gain is
    /// measured against each unit's best-of-1 gold, and the peak shows in the per-n means.
    @Test func bestOfNTable() throws {
        #expect(OverOptimisation.bonDistance(n: 1) == 0)
        #expect(abs(OverOptimisation.bonDistance(n: 2) - (log(2.0) - 0.5).squareRoot()) < 1e-15)
        #expect(OverOptimisation.bonDistance(n: 0).isNaN)
        var rng = SeededRNG(seed: 41)
        let (a, b) = (0.6, 0.25)  // peak at d* = 1.2, R* = 0.36; d(1024) ≈ 2.4
        var rows: [(n: Int, d: Double, gold: Double, goldSE: Double, unit: Int)] = []
        for unit in 0..<5 {
            let base = 0.1 + 0.05 * Double(unit)
            for k in 0...10 {
                let n = 1 << k, d = OverOptimisation.bonDistance(n: n)
                rows.append((n, d, base + d * (a - b * d) + (n == 1 ? 0 : 0.005 * rng.gaussian()), 0.005, unit))
            }
        }
        let key = OverOptimisationArmKey(method: "bon", reward: "contains:8", base: "xs", parameters: 25_472, rolloutsPerProblem: 1024)
        let arm = OverOptimisation.fitBoN(points: rows + [(n: 0, d: 0, gold: 0.5, goldSE: 0.01, unit: 9)], key: key,
                                          options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 200)))
        let law = try #require(arm.law(.gaoBoN))
        #expect(arm.laws.count == 1 && arm.runs == ["0", "1", "2", "3", "4"])
        #expect(law.fit.isOK, "\(law.status)")
        #expect(abs(law.value("alpha") - a) < 0.02 && abs(law.value("beta") - b) < 0.02, "\(law.fit.values)")
        #expect(relClose(law.value("d_star"), 1.2, 0.03) && law.interval("d_star").contains(law.value("d_star")))
        #expect(law.status.contains("1 row(s) dropped"))
        #expect(arm.peakObserved)
        #expect(arm.finalProxy.isNaN && abs(arm.finalGold - (0.2 + 2.4 * (a - b * 2.4))) < 0.05)
        // No n = 1 row: no baseline, no fit.
        let none = OverOptimisation.fitBoN(points: rows.filter { $0.n > 1 }, key: key)
        #expect(none.laws.first?.quality == .noFit)
        #expect(none.laws.first?.status.hasPrefix("no best-of-1 row") == true)
    }

    /// overoptimisation.csv has one row per (arm, form) with the documented columns, and
    /// write(to:) puts it and one SVG per arm in the folder.
    @Test func tableAndFiles() throws {
        var rng = SeededRNG(seed: 51)
        let ds = linSpace(0.3, 8, 12)
        var cells = (0..<3).map { i in
            rewardCell(seed: UInt64(i), ds: ds, noise: 0.01, rng: &rng) { $0 * (Self.alpha - Self.beta * log($0)) }
        }
        var rm = rewardCell(seed: 0, ds: ds, noise: 0.01, rng: &rng) { 0.1 * $0 }
        rm.config.rewardSource = .learned
        rm.config.rewardModel = RewardModelSpec(size: "s", labels: 512, labelNoise: 0.1, ensemble: .mean(members: 4))
        cells.append(rm)
        let report = OverOptimisation.analyse(
            cells: cells, options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 50), forms: [.gaoRL, .gaoBoN, .scaleRL]))
        let table = try CSVTable.parse(report.table().render())
        #expect(table.header == OverOptimisationReport.columns)
        #expect(table.rows.count == 4)
        func column(_ name: String) -> [String] {
            let j = table.header.firstIndex(of: name) ?? 0
            return table.rows.map { $0[j] }
        }
        #expect(column("form") == ["gao_rl", "gao_bon", "gao_rl", "gao_bon"])
        #expect(column("reward") == ["contains:8", "contains:8", "rm", "rm"])
        #expect(column("rm_size") == ["", "", "s", "s"] && column("rm_ensemble")[2] == "mean:4" && column("rm_label_noise")[2] == "0.1")
        #expect(column("runs") == ["3", "3", "1", "1"] && column("points")[0] == "36" && column("n")[0] == "8")
        #expect(column("params")[0] == "25472" && column("base")[0] == "xs" && Double(column("d_max")[0]).map { abs($0 - 8) < 1e-9 } == true)
        #expect(column("peak_observed")[0] == "true" && column("peak_observed")[2] == "false")
        #expect(column("quality").allSatisfy { LawQuality(rawValue: $0) != nil })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("overopt-\(getpid())-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let written = try report.write(to: dir)
        let names = written.map { ($0 as NSString).lastPathComponent }
        #expect(names.first == "overoptimisation.csv")
        #expect(names.count == 3 && names.dropFirst().allSatisfy { $0.hasPrefix("overopt_") && $0.hasSuffix(".svg") })
        #expect(Set(names).count == names.count)
        let svg = try String(contentsOfFile: written[1], encoding: .utf8)
        #expect(svg.contains("gao_rl law (gold)") && svg.contains("proxy") && svg.hasPrefix("<svg"))
        #expect(try String(contentsOfFile: written[0], encoding: .utf8) == report.table().render())
    }

    /// The analysis is deterministic: the same cells and seed give the same table.
    @Test func deterministic() {
        func run() -> String {
            var rng = SeededRNG(seed: 61)
            let cells = (0..<4).map { i in
                rewardCell(seed: UInt64(i), ds: linSpace(0.3, 8, 10), noise: 0.02, rng: &rng) { $0 * (0.5 - 0.2 * log($0)) }
            }
            return OverOptimisation.analyse(cells: cells, options: OverOptimisationOptions(bootstrap: BootstrapOptions(resamples: 50, seed: 9)))
                .table().render()
        }
        #expect(run() == run())
    }
}
