import Foundation
import Grid
import ResultSchema
import RLTraining
import Testing

let minimalGrid = """
    name = "t"
    [base]
    sizes = ["xs"]
    [axes]
    budget = [1e9]

    """

@Suite struct GridFileTests {
    @Test func productZipAndConstraints() throws {
        let g = try GridFile.parse(
            """
            name = "g"
            description = "test"
            zip = [["n", "lr"]]
            constraints = ["n * bp <= 16"]
            [base]
            sizes = ["xs", "s"]
            [axes]
            method = ["grpo", "dapo"]
            n = [2, 4, 8]
            lr = [1e-4, 2e-4, 3e-4]
            bp = [2, 4]
            budget = {from = 1e9, to = 1e10, per_decade = 2}
            curriculum = ["easy_to_hard"]
            """, file: "g.toml")
        // size 2 × method 2 × (n,lr) zipped 3 × bp 2 × budget 3, minus n·bp > 16 (n=8, bp=4)
        #expect(g.cells.count == 2 * 2 * 3 * 2 * 3 - 2 * 2 * 1 * 1 * 3)
        #expect(g.cells.allSatisfy { $0.config.rolloutsPerProblem * $0.config.problemsPerBatch <= 16 })
        // zipped: n and lr advance together
        #expect(g.cells.allSatisfy { c in
            let n = c.config.rolloutsPerProblem, lr = Double(c.config.learningRate)
            return abs(lr - [2: 1e-4, 4: 2e-4, 8: 3e-4][n]!) < 1e-9
        })
        let budgets = Set(g.cells.map(\.config.budgetFLOPs)).sorted()
        #expect(budgets.count == 3)
        #expect(abs(budgets[1] / 1e9 - 10.0.squareRoot()) < 1e-9)
        #expect(Set(g.cells.map(\.id)).count == g.cells.count)
        #expect(g.bases.map(\.name) == ["xs", "s"])
    }

    @Test func cellIdentityIsStable() throws {
        let a = try GridFile.parse(minimalGrid, file: "a.toml"), b = try GridFile.parse(minimalGrid + "# a comment\n", file: "b.toml")
        #expect(a.cells.map(\.id) == b.cells.map(\.id))
        // Pinned: a change here means every finished cell of every store would be rerun (or,
        // worse, that changed results keep old ids). Change it only with a reason in the commit
        // (the last: numerics version 4, the packed engine). It sets lr = 5e-5, the grid default
        // before the defaults moved to CellDefaults (2e-4 now): a grid that leaves lr out
        // got new ids then, one that writes it did not.
        let pinned = try GridFile.parse(minimalGrid + "lr = [5e-5]\n", file: "p.toml")
        #expect(pinned.cells[0].id == "3112531ece0683db")
        #expect(a.cells[0].config.learningRate == CellDefaults.learningRate)
        let c = try GridFile.parse(minimalGrid.replacingOccurrences(of: "1e9", with: "2e9"), file: "c.toml")
        #expect(c.cells[0].id != a.cells[0].id)
        // The base's evaluation settings define the pass buckets and the evaluation set, so
        // they enter the id.
        let e = try GridFile.parse(minimalGrid.replacingOccurrences(of: "[base]\n", with: "[base]\neval_samples = 16\n"), file: "e.toml")
        #expect(e.baseEvalSamples == 16 && e.cells[0].id != a.cells[0].id)
        let d = try GridFile.parse(minimalGrid + "seed = [1]\n", file: "d.toml")
        #expect(d.cells[0].id != a.cells[0].id)
    }

    /// Each bad grid gives exactly this error: file, line, key, message.
    @Test(arguments: [
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\nrollouts = [4]\n",
         "bad.toml:6: rollouts: unknown key in [axes] (did you mean 'n'?)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\nmethdo = [\"grpo\"]\n",
         "bad.toml:6: methdo: unknown key in [axes] (did you mean 'method'?)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\nn = [\"four\"]\n",
         "bad.toml:6: n: in [axes] must hold integers, got string \"four\""),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\nn = [0]\n",
         "bad.toml:6: n: in [axes] must be at least 1, got 0"),
        ("name = \"t\"\n[base]\nsizes = [\"xxl\"]\n[axes]\nbudget = [1e9]\n",
         "bad.toml:3: sizes: unknown size \"xxl\" (ladder sizes: xs, s, m, l)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\nmethod = [\"ppo\"]\n",
         "bad.toml:6: method: unknown method 'ppo' (known: grpo, dr_grpo, rloo, dapo, expert_iteration, opsd, sdpo, sdpg, process)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = {from = 1e9, to = 1e8, per_decade = 2}\n",
         "bad.toml:5: budget: a range needs from > 0 and to >= from, got {from = 1000000000.0, to = 100000000.0, per_decade = 2}"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\ncurriculum = [\"hard_first\"]\n",
         "bad.toml:6: curriculum: 'hard_first' is not uniform, easy_to_hard or pass_rate[:low-high]"),
        ("name = \"t\"\nconstraints = [\"n * rollouts < 4\"]\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\n",
         "bad.toml:2: constraints: 'n * rollouts < 4': unknown variable 'rollouts' (known: bp, budget, lag, lr, n, params, seed)"),
        ("name = \"t\"\nconstraints = [\"n > 100\"]\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\n",
         "bad.toml:2: constraints: no cell satisfies the constraints"),
        ("name = \"t\"\nzip = [[\"n\", \"bp\"]]\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\nn = [1, 2]\nbp = [4]\n",
         "bad.toml:2: zip: axes [\"n\", \"bp\"] have different lengths [2, 1]"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\ntasks = \"add:1,division:1\"\n[axes]\nbudget = [1e9]\n",
         "bad.toml:4: tasks: unknown task family 'division' (known: add, mul, sort, chain)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9\n",
         "bad.toml:5: unterminated array"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[cell]\neval_samples = 2\n[axes]\nbudget = [1e9]\n",
         "bad.toml:5: eval_samples: in [cell] must be at least 4, got 2"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\neval_problems = 8\n[cell]\neval_problems = 32\n[axes]\nbudget = [1e9]\n",
         "bad.toml:6: eval_problems: in [cell] is 32, more than the 8 problems per level the base is evaluated on "
             + "([base] eval_problems); cells evaluate a subset of the base's problems, so raise [base] eval_problems"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\ntrain_bucket = [\"simple\"]\n",
         "bad.toml:6: train_bucket: 'simple' is not a base pass bucket (all, unsolved, hard, medium, easy, solved)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\npool_size = [0]\n",
         "bad.toml:6: pool_size: in [axes] must be at least 1, got 0"),
        ("name = \"t\"\n# a \"quoted # word\" in a comment\n[base]\nsizes = [\"xs\"]\ntasks = \"sort:1\" # \"\n[axes]\nbudget = [1e9]\nn = [\"a\\\"]#\"]\n",
         "bad.toml:8: n: in [axes] must hold integers, got string \"a\"]#\""),
        ("name = \"my grid\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\n",
         "bad.toml:1: name: 'my grid' must be letters, digits, '_' or '-' (it names the results folder)"),
        ("[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9]\n",
         "bad.toml:4: name: missing (every grid needs a name)"),
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\n",
         "bad.toml:4: budget: [axes] needs budget = [...] or {from, to, per_decade}"),
        // Budget crossed with seed: the smaller budget is a prefix of the larger run.
        ("name = \"t\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9, 1e10]\nseed = [0, 1]\n",
         "bad.toml:4: budget: cells 0 and 2 differ only in budget (1000000000 and 10000000000) with the same seed 0: the smaller "
             + "is the first part of the larger run (a run's learning curve already holds every smaller budget), so it would be "
             + "computed twice and counted as a second run. Use one budget per seed (the largest), or zip = [[\"budget\", \"seed\"]] "
             + "with a different seed for each budget"),
    ])
    func badGridsGiveExactErrors(text: String, expected: String) {
        do {
            _ = try GridFile.parse(text, file: "bad.toml")
            Issue.record("parsed without error; expected \(expected)")
        } catch {
            #expect(error.description == expected)
        }
    }

    /// Budgets that are not prefixes of each other are accepted: zipped with distinct seeds, or
    /// under a schedule that reads the budget (easy_to_hard).
    @Test func budgetsThatAreNotPrefixesAreAccepted() throws {
        let zipped = try GridFile.parse("name = \"z\"\nzip = [[\"budget\", \"seed\"]]\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9, 1e10]\nseed = [0, 1]\n",
                                        file: "z.toml")
        #expect(zipped.cells.count == 2)
        let schedule = try GridFile.parse(
            "name = \"e\"\n[base]\nsizes = [\"xs\"]\n[axes]\nbudget = [1e9, 1e10]\ncurriculum = [\"easy_to_hard\"]\n", file: "e.toml")
        #expect(schedule.cells.count == 2)
    }

    /// A method knob (kl, entropy: grpo; teacher, divergence, distill, distill_on: opsd, sdpo, sdpg) set in
    /// [cell] for a cell whose method does not read it is an error at that key's own line;
    /// left at its default it is not.
    @Test func unusedMethodKnobsNameTheirKeyAndLine() throws {
        func grid(cell: String, methods: String) -> String {
            "name = \"k\"\n[base]\nsizes = [\"xs\"]\n[cell]\neval_points = 4\n\(cell)\n[axes]\nbudget = [1e9]\nmethod = \(methods)\n"
        }
        for (text, expected) in [
            (grid(cell: "kl = 0.1", methods: "[\"grpo\", \"dapo\"]"), "k.toml:6: kl: kl = 0.1 is not used by dapo (it is read by grpo)"),
            (grid(cell: "teacher = \"lag:2\"", methods: "[\"grpo\"]"),
             "k.toml:6: teacher: teacher = lag:2 is not used by grpo (it is read by opsd, sdpo, sdpg)"),
            (grid(cell: "entropy = 0.01\ndistill = 0.5", methods: "[\"opsd\"]"),
             "k.toml:6: entropy: entropy = 0.01 is not used by opsd (it is read by grpo)"),
            (grid(cell: "teacher = \"ema:1.5\"", methods: "[\"opsd\"]"),
             "k.toml:6: teacher: in [cell] 'ema:1.5' is not base, lag:k (k ≥ 1), ema:r (0 < r < 1) or policy"),
            (grid(cell: "divergence = \"jsd\"", methods: "[\"sdpg\"]"),
             "k.toml:6: divergence: in [cell] 'jsd' is not reverse_kl, forward_kl, jsd:β (0 < β < 1) or sampled"),
            (grid(cell: "distill_on = 0.5", methods: "[\"sdpg\"]"),
             "k.toml:6: distill_on: in [cell] '0.5' is not all, failed or confident:τ (0 < τ ≤ 1)"),
        ] {
            do {
                _ = try GridFile.parse(text, file: "k.toml")
                Issue.record("parsed without error; expected \(expected)")
            } catch {
                #expect(error.description == expected)
            }
        }
        // At their defaults the knobs are no one's business; each method's own are fine.
        let atDefault = try GridFile.parse(grid(cell: "kl = 0", methods: "[\"grpo\", \"dapo\"]"), file: "k.toml")
        #expect(atDefault.cells.map(\.config.method) == ["grpo", "dapo"])
        let plain = try GridFile.parse(grid(cell: "", methods: "[\"grpo\", \"dapo\"]"), file: "k.toml")
        #expect(plain.cells.map(\.id) == atDefault.cells.map(\.id))
        let own = try GridFile.parse(grid(cell: "teacher = \"lag:2\"\ndistill = 0.5", methods: "[\"opsd\"]"), file: "k.toml")
        #expect(own.cells.map(\.config.teacher) == [.lagged(2)] && own.cells.map(\.config.distill) == [0.5])
    }

    /// A method-knob axis multiplies the cells of the methods that read it and collapses for
    /// the others; the law groups tell the variants apart; an axis no method reads, or set
    /// in [cell] too, is an error at its line.
    @Test func methodKnobAxesApplyToTheMethodsThatReadThem() throws {
        func grid(_ axes: String, cell: String = "") -> String {
            // (easy_to_hard reads the budget: the two budgets are different runs, not prefixes.)
            "name = \"k\"\n[base]\nsizes = [\"xs\"]\n[cell]\neval_points = 4\n\(cell)\n[axes]\nbudget = [1e9, 1e10]\n\(axes)\ncurriculum = [\"easy_to_hard\"]\n"
        }
        let g = try GridFile.parse(
            grid("method = [\"grpo\", \"sdpg\"]\nteacher = [\"base\", \"ema:0.05\"]\ndistill = [0.1, 1]"), file: "k.toml")
        let grpo = g.cells.filter { $0.config.method == "grpo" }, sdpg = g.cells.filter { $0.config.method == "sdpg" }
        #expect(grpo.count == 2 && sdpg.count == 8 && Set(g.cells.map(\.id)).count == 10)
        #expect(grpo.allSatisfy { $0.config.teacher == CellDefaults.teacher && $0.config.distill == CellDefaults.distill })
        #expect(Set(sdpg.map { "\($0.config.teacher)/\(compactNumber($0.config.distill))" }) == ["base/0.1", "base/1", "ema:0.05/0.1", "ema:0.05/1"])
        #expect(Set(g.cells.map(\.config.methodLabel)) == [
            "grpo", "sdpg", "sdpg[distill=1]", "sdpg[teacher=ema:0.05]", "sdpg[teacher=ema:0.05,distill=1]",
        ])
        // Knob values are written in documents as their spellings, and read back from them.
        var spelled = try #require(sdpg.first).config
        spelled.teacher = .ema(rate: 0.0125); spelled.divergence = .full(.jsd(beta: 0.3)); spelled.distillOn = .confident(0.9)
        let json = String(decoding: try JSONEncoder().encode(spelled), as: UTF8.self)
        #expect(json.contains("\"teacher\":\"ema:0.0125\"") && json.contains("\"divergence\":\"jsd:0.3\"")
                && json.contains("\"distillOn\":\"confident:0.9\""), "\(json)")
        #expect(try JSONDecoder().decode(CellConfig.self, from: Data(json.utf8)) == spelled)
        // A knob the method does not read never enters its label.
        var unread = try #require(grpo.first).config
        unread.distill = 1
        unread.teacher = .policy
        #expect(unread.methodLabel == "grpo")
        for (text, expected) in [
            (grid("method = [\"grpo\", \"dapo\"]\nteacher = [\"base\", \"policy\"]"),
             "k.toml:10: teacher: no method of this grid reads it (it is read by opsd, sdpo, sdpg)"),
            (grid("method = [\"opsd\"]\ndistill = [1, 2]", cell: "distill = 3"),
             "k.toml:10: distill: is both an axis and a [cell] key (line 6); keep one"),
            (grid("method = [\"opsd\"]\nteacher = [\"lag:0\"]"),
             "k.toml:10: teacher: in [axes] 'lag:0' is not base, lag:k (k ≥ 1), ema:r (0 < r < 1) or policy"),
        ] {
            do {
                _ = try GridFile.parse(text, file: "k.toml")
                Issue.record("parsed without error; expected \(expected)")
            } catch {
                #expect(error.description == expected)
            }
        }
    }

    /// Reward sources are an axis every method reads; the `rm_*` axes apply only to the cells
    /// whose reward is `rm` (and pull their starting base into the grid); a gold cell keeps
    /// the id it had before rewards existed; bad rewards and reward-model knobs are refused at
    /// their line with the key and value.
    @Test func rewardAxesExpandAndBadRewardsAreRefused() throws {
        func grid(_ axes: String, cell: String = "", sizes: String = "[\"xs\", \"s\"]") -> String {
            "name = \"r\"\n[base]\nsizes = \(sizes)\n[cell]\neval_points = 4\n\(cell)\n[axes]\nsize = [\"xs\"]\nbudget = [1e9]\n\(axes)\n"
        }
        let g = try GridFile.parse(
            grid("reward = [\"gold\", \"contains:6\", \"rm\", \"noisy:0.1,0.2,corrected\"]\nrm_size = [\"base\", \"s\"]\nrm_labels = [64, 256]"),
            file: "r.toml")
        let rm = g.cells.filter { $0.config.rewardSource == .learned }
        #expect(g.cells.count == 3 + 4 && rm.count == 4)
        #expect(Set(rm.compactMap { $0.config.rewardModel.map { "\($0.size)/\($0.labels)" } }) == ["base/64", "base/256", "s/64", "s/256"])
        #expect(g.cells.filter { $0.config.rewardSource != .learned }.allSatisfy { $0.config.rewardModel == nil })
        // An rm_* key of [cell] applies, like its axis, only to the cells on a reward model.
        let mixed = try GridFile.parse(grid("reward = [\" gold\", \" rm \"]", cell: "rm_labels = 64\nrm_size = \" s\""), file: "m.toml")
        #expect(mixed.cells.map { $0.config.rewardModel?.labels } == [nil, 64] && mixed.cells.last?.config.rewardModel?.size == "s")
        #expect(g.bases.map(\.name) == ["xs", "s"], "the reward model's base s is pretrained too")
        #expect(Set(g.cells.map(\.config.methodLabel)).contains("grpo[reward=rm,rm_size=s,rm_labels=64]"))
        let plain = try GridFile.parse(grid(""), file: "a.toml"), gold = try GridFile.parse(grid("reward = [\"gold\"]"), file: "b.toml")
        #expect(plain.cells.map(\.id) == gold.cells.map(\.id))
        let json = String(decoding: try JSONEncoder().encode(gold.cells[0].config), as: UTF8.self)
        #expect(!json.contains("reward"), "a gold cell's document has no reward key: \(json)")
        for (text, expected) in [
            (grid("reward = [\"oracle\"]"),
             "r.toml:10: reward: in [axes] 'oracle' is not \(RewardSource.spellings)"),
            (grid("reward = [\"noisy:0.5,0.5\"]"),
             "r.toml:10: reward: in [axes] 'noisy:0.5,0.5' is not \(RewardSource.spellings)"),
            (grid("reward = [\"digits:0\"]"), "r.toml:10: reward: in [axes] 'digits:0' is not \(RewardSource.spellings)"),
            (grid("reward = [\"rm\"]\nrm_labels = [-5]"),
             "r.toml:11: rm_labels: in [axes] must be a whole number of labelled samples >= 8, got -5"),
            (grid("reward = [\"rm\"]\nrm_size = [\"xl\"]"), "r.toml:11: rm_size: 'xl' is not a base of this grid ([base] sizes: xs, s) or base"),
            (grid("reward = [\"gold\", \"lenient\"]\nrm_labels = [64]"),
             "r.toml:11: rm_labels: no cell of this grid reads it: it is read only with reward = \"rm\""),
            (grid("", cell: "rm_labels = 64"),
             "r.toml:6: rm_labels: no cell of this grid reads it: it is read only with reward = \"rm\""),
            (grid("method = [\"process\"]\nreward = [\"lenient\"]"),
             "r.toml:7: cell 0: reward: process credits steps with the exact step verifier, which has no proxy form; it trains on gold only (got lenient)"),
        ] {
            do {
                _ = try GridFile.parse(text, file: "r.toml")
                Issue.record("parsed without error; expected \(expected)")
            } catch {
                #expect(error.description == expected)
            }
        }
    }

    /// Multi-turn knobs are axes: `feedback` and `turn_credit` apply to the cells with turns > 1
    /// (`feedback` also to cells evaluated over several turns), and episodes that cannot fit
    /// the context are refused.
    @Test func turnAxesExpandAndEpisodesThatCannotFitAreRefused() throws {
        func grid(_ axes: String, cell: String = "") -> String {
            "name = \"m\"\n[base]\nsizes = [\"xs\"]\n[cell]\nmax_difficulty = 3\n\(cell)\n[axes]\ntasks = [\"sort:1\"]\nbudget = [1e9]\n\(axes)\n"
        }
        let g = try GridFile.parse(grid("turns = [1, 2, 4]\nfeedback = [\"retry\", \"step\"]\nturn_credit = [\"final\", \"discounted:0.9\"]"), file: "m.toml")
        #expect(g.cells.count == 1 + 4 + 4)
        #expect(g.cells.filter { $0.config.episodeSpec.turns == 1 }.allSatisfy { $0.config.episode == nil })
        #expect(Set(g.cells.map(\.config.methodLabel)).contains("grpo[turns=4,feedback=step,turn_credit=discounted:0.9]"))
        // Evaluated over 4 turns, single-turn cells read the feedback too.
        let e = try GridFile.parse(grid("turns = [1, 2]\nfeedback = [\"retry\", \"step\"]", cell: "eval_turns = 4\nsupport_samples = 64"), file: "e.toml")
        #expect(e.cells.count == 4 && e.cells.allSatisfy { $0.config.evalTurns == 4 && $0.config.supportSamples == 64 })
        // eval_turns equal to the cell's own turns is its default: left unset, one id per behaviour.
        let same = try GridFile.parse(grid("turns = [1, 4]", cell: "eval_turns = 4"), file: "s.toml")
        #expect(same.cells.map(\.config.evalTurns) == [4, nil])
        // Without the new keys a cell's identity is what it was before episodes existed.
        let plain = try GridFile.parse(grid(""), file: "a.toml"), one = try GridFile.parse(grid("turns = [1]"), file: "b.toml")
        #expect(plain.cells.map(\.id) == one.cells.map(\.id))
        let json = String(decoding: try JSONEncoder().encode(one.cells[0].config), as: UTF8.self)
        #expect(!json.contains("episode") && !json.contains("evalTurns") && !json.contains("supportSamples"), "\(json)")
        for (text, expected) in [
            (grid("turns = [2, 8]"),
             "m.toml:7: turns: cell 1: 8 turns with reason feedback do not fit the 96-token context on sort difficulty 2 (at most 7 there); lower max_difficulty or the turns"),
            (grid("turns = [2]", cell: "eval_turns = 9"),
             "m.toml:6: eval_turns: cell 0: 9 turns with reason feedback do not fit the 96-token context on sort difficulty 2 (at most 7 there); lower max_difficulty or the turns"),
            (grid("feedback = [\"step\"]"), "m.toml:10: feedback: no cell of this grid reads it: it is read only with turns > 1 or eval_turns > 1"),
            (grid("turns = [1]\nturn_credit = [\"discounted:0.5\"]", cell: "eval_turns = 2"),
             "m.toml:11: turn_credit: no cell of this grid reads it: it is read only with turns > 1"),
            (grid("method = [\"process\"]\nturns = [2]"), "m.toml:11: turns: no method of this grid reads it (it is read by grpo, dr_grpo, rloo, dapo, expert_iteration)"),
            (grid("turns = [0]"), "m.toml:10: turns: in [axes] must be a whole number of turns in 1...16, got 0"),
            (grid("turns = [2]\nturn_credit = [\"discounted:2\"]"), "m.toml:11: turn_credit: in [axes] 'discounted:2' is not \(TurnCredit.spellings)"),
            (grid("", cell: "eval_turns = 20"), "m.toml:6: eval_turns: must be at most 16, got 20"),
        ] {
            do {
                _ = try GridFile.parse(text, file: "m.toml")
                Issue.record("parsed without error; expected \(expected)")
            } catch {
                #expect(error.description == expected)
            }
        }
    }

    /// `eval_levels` in [cell]: `train` reaches every cell's config, the default `all` is
    /// left out of it (cells of grids written before the key keep their ids), and any
    /// other value is refused at its line with the values it may take.
    @Test func evalLevelsReachesEveryCellAndAnUnknownValueIsRefused() throws {
        func grid(_ cell: String) -> String {
            "name = \"v\"\n[base]\nsizes = [\"xs\"]\n[cell]\nmax_difficulty = 3\n\(cell)\n[axes]\nbudget = [1e9]\nn = [2, 4]\n"
        }
        let plain = try GridFile.parse(grid(""), file: "v.toml"), all = try GridFile.parse(grid("eval_levels = \"all\""), file: "v.toml")
        let train = try GridFile.parse(grid("eval_levels = \"train\""), file: "v.toml")
        #expect(plain.cells.map(\.id) == all.cells.map(\.id) && plain.cells.allSatisfy { $0.config.evalLevels == nil })
        #expect(train.cells.count == 2 && train.cells.allSatisfy { $0.config.evalLevels == .train })
        #expect(Set(train.cells.map(\.id)).isDisjoint(with: plain.cells.map(\.id)), "a different evaluation is a different cell")
        do {
            _ = try GridFile.parse(grid("eval_levels = \"held_out\""), file: "v.toml")
            Issue.record("parsed without error")
        } catch {
            #expect(error.description == "v.toml:6: eval_levels: unknown value 'held_out' (expected one of: all, train)")
        }
    }

    /// Training pools are axes: every (bucket, D) pair is a cell, and a bucket needs a pool size.
    @Test func poolAxesExpandAndABucketNeedsAPoolSize() throws {
        let g = try GridFile.parse(minimalGrid + "train_bucket = [\"easy\", \"hard\"]\npool_size = [32, 128]\n", file: "p.toml")
        let pairs = Set(g.cells.map { "\($0.config.trainBucket?.rawValue ?? "-")/\($0.config.poolSize ?? 0)" })
        #expect(pairs == ["easy/32", "easy/128", "hard/32", "hard/128"])
        #expect(Set(g.cells.map(\.id)).count == 4)
        // Without the pool axes a cell's identity is what it was before they existed.
        let plain = try GridFile.parse(minimalGrid, file: "a.toml"), all = try GridFile.parse(minimalGrid + "train_bucket = [\"all\"]\n", file: "b.toml")
        #expect(plain.cells.map(\.id) == all.cells.map(\.id))
        do {
            _ = try GridFile.parse(minimalGrid + "train_bucket = [\"easy\"]\n", file: "q.toml")
            Issue.record("a bucket without a pool size parsed")
        } catch {
            #expect(error.description.contains("train_bucket: 'easy' needs pool_size"))
        }
    }

    /// Files that cannot be read as grids: the error names the file and a line ≥ 1.
    @Test func unreadableGridFilesSayWhy() throws {
        let dir = NSTemporaryDirectory() + "rlscale-gridfiles-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let latin1 = dir + "/latin1.toml"
        try Data("name = \"t\"\n[base]\nsizes = [\"xs\"]\n# caf".utf8 + [0xE9, 0x0A]).write(to: URL(fileURLWithPath: latin1))
        for (path, expected) in [(latin1, "\(latin1):4: is not UTF-8 text (a grid file is TOML, UTF-8 encoded)"),
                                 (dir + "/missing.toml", "\(dir)/missing.toml:1: no such file")] {
            do {
                _ = try GridFile.load(path)
                Issue.record("loaded \(path)")
            } catch {
                #expect(error.description == expected)
            }
        }
    }

    @Test func constraintsEvaluate() throws {
        let c = try Constraint("n * bp <= 4096")
        #expect(c.holds(["n": 64, "bp": 64]))
        #expect(!c.holds(["n": 64, "bp": 65]))
        let d = try Constraint("budget / (n * bp) >= 1e6")
        #expect(d.holds(["budget": 1e9, "n": 10, "bp": 100]))
        #expect(!d.holds(["budget": 1e8, "n": 10, "bp": 100]))
        #expect(throws: Constraint.ParseError.self) { try Constraint("n * bp") }
    }

    @Test func shardsPartitionTheCells() throws {
        let g = try GridFile.parse(minimalGrid.replacingOccurrences(of: "budget = [1e9]", with: "budget = [1e9]\nn = [1, 2, 3, 4, 5]\nseed = [0, 1]"), file: "s.toml")
        let shards = (0..<3).map { g.shard($0, of: 3).map(\.id) }
        #expect(shards.flatMap { $0 }.sorted() == g.cells.map(\.id).sorted())
        #expect(Set(shards[0]).isDisjoint(with: Set(shards[1])))
    }

    @Test func shippedGridsAreValid() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("grids")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".toml") }
        #expect(files.contains("quick.toml"))
        for f in files {
            let g = try GridFile.load(dir.appendingPathComponent(f).path)
            #expect(!g.cells.isEmpty, "\(f)")
        }
    }
}

/// The registry of cell settings (`CellSetting`) is the one list of names: a grid file's
/// `[axes]` and `[cell]` accept exactly its keys and read each one (a bad value is refused
/// naming that key, never ignored), and `rlscale train` has an option for each.
@Suite struct SettingRegistryTests {
    @Test func gridFilesReadEveryRegistryKeyWhereItBelongs() {
        for setting in CellSetting.all {
            for (place, table) in [(GridPlace.axis, "axes"), (GridPlace.cell, "cell")] {
                let bad = place == .axis ? "[\"?bad?\"]" : "\"?bad?\""
                var axes = ["budget = [1e9]"], cell: [String] = []
                if place == .cell {
                    cell.append("\(setting.key) = \(bad)")
                } else if setting.key == "budget" {
                    axes = ["budget = \(bad)"]
                } else {
                    axes.append("\(setting.key) = \(bad)")
                }
                let source = "name = \"r\"\n[base]\nsizes = [\"xs\"]\n" + (cell.isEmpty ? "" : "[cell]\n" + cell.joined(separator: "\n") + "\n")
                    + "[axes]\n" + axes.joined(separator: "\n") + "\n"
                do {
                    _ = try GridFile.parse(source, file: "r.toml")
                    Issue.record("\(setting.key) in [\(table)]: a bad value was accepted")
                } catch {
                    if setting.grid.contains(place) {
                        #expect(error.key == setting.key && !error.message.contains("unknown key"), "\(setting.key) in [\(table)]: \(error)")
                    } else {
                        #expect(error.message.contains("unknown key in [\(table)]"), "\(setting.key) in [\(table)]: \(error)")
                    }
                }
            }
        }
    }

    @Test func trainHasAnOptionForEverySetting() throws {
        let dir = CLI.tempDir("train-help")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/help.log"
        _ = try CLI.run(["train", "--help"], log: log)
        let help = try String(contentsOfFile: log, encoding: .utf8)
        for setting in CellSetting.all { #expect(help.contains(setting.option + " "), "\(setting.option)") }
    }
}
