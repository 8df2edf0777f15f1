import Foundation
import Laws
import Testing

@Suite("Frontiers and envelopes")
struct FrontierTests {
    @Test func empiricalFrontierOnHandMadeCurves() {
        // Cell a: 0.1 @0, 0.3 @10, 0.35 @100, 0.34 @1000
        // Cell b: 0.1 @0, 0.2 @10, 0.5 @200, 0.6 @1000
        // Cell c: 0.12 @0, 0.3 @5 (ties a's 0.3 later: a's point must not appear)
        let pts: [(compute: Double, score: Double, cellID: String)] = [
            (0, 0.1, "a"), (10, 0.3, "a"), (100, 0.35, "a"), (1000, 0.34, "a"),
            (0, 0.1, "b"), (10, 0.2, "b"), (200, 0.5, "b"), (1000, 0.6, "b"),
            (0, 0.12, "c"), (5, 0.3, "c"), (.nan, 0.9, "c"),
        ]
        let f = Frontier.empirical(pts)
        let expected = [
            FrontierPoint(compute: 0, score: 0.12, cellID: "c"),
            FrontierPoint(compute: 5, score: 0.3, cellID: "c"),
            FrontierPoint(compute: 100, score: 0.35, cellID: "a"),
            FrontierPoint(compute: 200, score: 0.5, cellID: "b"),
            FrontierPoint(compute: 1000, score: 0.6, cellID: "b"),
        ]
        #expect(f == expected)
        #expect(Frontier.value(f, at: 150) == 0.35)
        #expect(Frontier.value(f, at: 4.9) == 0.12)
        #expect(Frontier.value(f, at: 1e9) == 0.6)
    }

    @Test func equalComputeTieGoesToHigherScoreThenSmallerID() {
        let f = Frontier.empirical([(1, 0.5, "z"), (1, 0.5, "b"), (1, 0.4, "a")])
        #expect(f == [FrontierPoint(compute: 1, score: 0.5, cellID: "b")])
    }

    @Test func envelopeAndArgmaxOnHandMadeArms() {
        // Two ScaleRL arms crossing: arm 0 rises early to 0.5, arm 1 late to 0.9.
        let early = LawFit(form: .scaleRL, values: [0.1, 0.5, 2, 1e2])
        let late = LawFit(form: .scaleRL, values: [0.1, 0.9, 2, 1e4])
        let short = LawFit(form: .scaleRL, values: [0.1, 1.0, 2, 1e1])  // best everywhere, but data stop at 50
        let arms = [ArmLaw(value: 4, fit: early, maxCompute: 1e6), ArmLaw(value: 16, fit: late, maxCompute: 1e6),
                    ArmLaw(value: 64, fit: short, maxCompute: 50)]
        let budgets = [10.0, 100, 1000, 1e4, 1e5, 2e6]
        let env = Frontier.envelope(arms, budgets: budgets)
        #expect(env.map(\.arm) == [2, 0, 0, 1, 1, nil])
        #expect(env[0].armValue == 64)
        #expect(env[3].armValue == 16)
        #expect(abs(env[1].score - early.predict(100)) < 1e-15)
        #expect(abs(env[4].score - late.predict(1e5)) < 1e-15)
        #expect(env[5].score.isNaN)
        // The crossing: where the late arm overtakes, predictions agree on the winner.
        for p in env where p.arm != nil {
            let values = arms.enumerated().filter { p.budget <= $0.element.maxCompute }.map { $0.element.fit.predict(p.budget) }
            #expect(p.score == values.max())
        }
    }

    @Test func logGridEndpoints() {
        let g = Frontier.logGrid(from: 1e9, to: 1e12, count: 4)
        #expect(g.count == 4)
        #expect(g.first == 1e9 && g.last == 1e12)
        #expect(abs(g[1] - 1e10) < 1e-3)
        #expect(Frontier.logGrid(from: 0, to: 10, count: 3).isEmpty)
    }
}
