import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// Issue #37 under mpirun: ATA's choices and the scores before aggregation in metrics.h5, the
/// default "after" unchanged to the bit, `pilot report --eval`, the difference loss's symmetry
/// (ψt − ψs after stage 1) and Shepherd as published (`shepherd_lora`).
@Suite("instrumentation under mpirun", .serialized)
struct InstrumentCLITests {
    @Test("eval.when = both: the default run's datasets to the bit plus clients/eval_score_before; /ata/… in both; pilot report --eval before|after")
    func evalWhenAndATA() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let plainCfg = try TrainCLITests.writeConfig(dir, "plain.toml", TrainCLITests.config(rounds: 2))
        let bothCfg = try TrainCLITests.writeConfig(dir, "both.toml", TrainCLITests.config("when = \"both\"", rounds: 2))
        for (cfg, out) in [(plainCfg, "plain"), (bothCfg, "both")] {
            let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file(out)])
            try #require(r.status == 0, "\(out): \(r.stderr)")
        }
        // a stop after round 1 and a resume give the uninterrupted run's rows, ATA's choices and scores before aggregation included
        let cut = try TrainCLITests.train(["--config", bothCfg, "--out", dir.file("cut"), "--stop-after-round", "1"])
        #expect(cut.status == 75, "\(cut.stderr)")
        let resumed = try TrainCLITests.train(["--resume", dir.file("cut")])
        try #require(resumed.status == 0, "\(resumed.stderr)")
        // every tensor of the last round: eval.when changes no bit of the run
        let a = try TrainCLITests.finalRoundDatasets(dir.file("plain"), round: 2)
        let b = try TrainCLITests.finalRoundDatasets(dir.file("both"), round: 2)
        #expect(a.count > 50 && a.keys.sorted() == b.keys.sorted())
        #expect(a.keys.filter { a[$0]!.map(\.bitPattern) != b[$0]!.map(\.bitPattern) }.isEmpty)

        let script = """
        import sys, h5py, numpy as np
        plain, both = h5py.File(sys.argv[1] + '/metrics.h5'), h5py.File(sys.argv[2] + '/metrics.h5')
        assert 'eval_score_before' not in plain['clients'] and 'eval_local_weight_before' not in plain['clients']
        for name in plain['clients']:
            if name.startswith('seconds_'): continue
            x, y = plain['clients/' + name][()], both['clients/' + name][()]
            assert x.tobytes() == y.tobytes(), name          # "after" is today's bits (NaN included)
        before = both['clients/eval_score_before'][()]
        assert before.shape == (2, 9) and np.isfinite(before).all(), before
        assert np.isnan(both['clients/eval_local_weight_before'][()]).all() if 'eval_local_weight_before' in both['clients'] else True
        for f in (plain, both):
            n, w, d, s = (f['ata/' + k][()] for k in ('neighbours', 'weights', 'distances', 'self_weight'))
            assert n.shape == (2, 9, 6) and w.shape == (2, 9, 6) and d.shape == (2, 9, 6) and s.shape == (2, 9), n.shape
            assert list(f['ata/neighbours'].attrs['dims']) == ['round', 'client', 'neighbour']
            for r in range(2):
                for k in range(9):
                    assert k not in n[r, k] and len(set(n[r, k])) == 6 and ((0 <= n[r, k]) & (n[r, k] < 9)).all(), n[r, k]
                    assert abs(s[r, k] + w[r, k].sum() - 1) < 1e-12 and (w[r, k] > 0).all()
                    assert (np.diff(d[r, k]) >= 0).all()       # nearest first
        assert plain['ata/neighbours'][()].tobytes() == both['ata/neighbours'][()].tobytes()
        # Eq. 11-12 from the file alone: the weights from the distances and n_k, and top-M's cut (a client
        # left out of i's neighbours is no nearer than i's farthest neighbour, where the file has its distance)
        nk = h5py.File(sys.argv[1] + '/ckpt/round_001.h5')['federation/client_samples'][()].astype(float)
        n, w, d, s = (plain['ata/' + k][()] for k in ('neighbours', 'weights', 'distances', 'self_weight'))
        checked = 0
        for r in range(2):
            for i in range(9):
                inv = 1 / d[r, i]; share = inv / inv.sum()
                z = nk[i] + (nk[n[r, i]] * share).sum()
                assert np.allclose(w[r, i], nk[n[r, i]] * share / z, rtol=1e-12, atol=0) and abs(s[r, i] - nk[i] / z) < 1e-12
                for j in range(9):
                    if j != i and j not in n[r, i] and i in n[r, j]:
                        dji = d[r, j][list(n[r, j]).index(i)]
                        assert dji >= d[r, i].max() * (1 - 1e-12), (r, i, j, dji, d[r, i])
                        checked += 1
                    if j in n[r, i] and i in n[r, j]:
                        assert abs(d[r, i][list(n[r, i]).index(j)] - d[r, j][list(n[r, j]).index(i)]) <= 1e-9 * d[r, i].max()
        assert checked > 0
        cut = h5py.File(sys.argv[3] + '/metrics.h5')
        for name in ['clients/' + k for k in both['clients']] + ['ata/' + k for k in both['ata']]:
            if 'seconds_' in name: continue
            assert both[name][()].tobytes() == cut[name][()].tobytes(), name   # resumed: the same rows
        print('ok', before[-1].round(3).tolist())
        """
        let py = try runProcess("/usr/bin/python3", ["-c", script, dir.file("plain"), dir.file("both"), dir.file("cut")])
        #expect(py.status == 0 && py.stdout.contains("ok"), "h5py: \(py.stdout) \(py.stderr)")

        // pilot report: --eval after is the default; --eval before reads clients/eval_score_before
        let dflt = try runProcess(pilotBinary, ["report", dir.file("both"), "--format", "csv"])
        let after = try runProcess(pilotBinary, ["report", dir.file("both"), "--format", "csv", "--eval", "after"])
        let before = try runProcess(pilotBinary, ["report", dir.file("both"), "--format", "csv", "--eval", "before"])
        #expect(dflt.status == 0 && after.status == 0 && before.status == 0, "\(before.stderr)")
        #expect(dflt.stdout == after.stdout)
        let f = try H5File.open(dir.file("both/metrics.h5")); defer { f.close() }
        let stored = try f.read(Double.self, at: "clients/eval_score_before").values
        let csv = ReportCLITests.parseCSV(before.stdout)
        let header = try #require(csv.first)
        let (client, value) = (try #require(header.firstIndex(of: "client")), try #require(header.firstIndex(of: "mean")))
        let perClient = csv.dropFirst().filter { $0.count == header.count && Int($0[client]) != nil }
        #expect(perClient.count == 9)
        for row in perClient {
            let k = try #require(Int(row[client]))
            #expect(Double(row[value]) == stored[9 + k], "client \(k): report \(row[value]), metrics.h5 \(stored[9 + k])")
        }
        let missing = try runProcess(pilotBinary, ["report", dir.file("plain"), "--eval", "before"])
        #expect(missing.status != 0 && missing.stderr.contains("eval.when"), "\(missing.stderr)")
    }

    /// A vu scenario with one client per task, so that the task mean of Eq. 10 is that client's ψt
    /// exactly and round 1's files hold both of its stage-1 adapters.
    static let oneClientPerTask: TemporaryDirectory = {
        let dir = TemporaryDirectory("psi-fixture")
        let gen = try! runProcess(pilotBinary, ["data", "generate", "--scenario", "vu", "--size", "tiny", "--seed", "3",
                                                "--clients-per-task", "1", "--out", dir.file("data")])
        precondition(gen.status == 0, "data generate failed: \(gen.stderr)")
        let pre = try! runProcess(pilotBinary, ["pretrain", "--data", dir.file("data"), "--out", dir.file("base.h5"),
                                                "--model-size", "micro", "--steps", "4", "--batch", "8", "--eval-test", "0"])
        precondition(pre.status == 0, "pretrain failed: \(pre.stderr)")
        return dir
    }()

    /// max |ψt − ψs| over every tensor of client k's stage-1 adapters after round 1, and ψt itself.
    static func psiDifference(_ run: String, client k: Int) throws -> (maxAbs: Float, psiT: [Float]) {
        let f = try H5File.open(run + String(format: "/ckpt/round_001/client_%02d.h5", k)); defer { f.close() }
        var worst: Float = 0, psiT: [Float] = []
        for part in ["fc1/weight", "fc1/bias", "fc2/weight", "fc2/bias"] {
            let t = try f.read(Float.self, at: "state/connector/task_adapters/\(k)/" + part).values
            let s = try f.read(Float.self, at: "state/connector/client_adapter/" + part).values
            worst = max(worst, maxAbsDiff(t, s)); psiT += t
        }
        return (worst, psiT)
    }

    @Test("the difference loss: ψt − ψs is exactly 0 after stage 1 for every client; pilot.psi_s_init = perturbed breaks it, and then Ld moves ψt")
    func differenceLossSymmetry() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let fx = Self.oneClientPerTask
        func run(_ name: String, _ pilot: String) throws -> String {
            let text = TrainCLITests.config(rounds: 1).replacingOccurrences(of: TrainCLITests.fixture.file("data"), with: fx.file("data"))
                .replacingOccurrences(of: TrainCLITests.fixture.file("base.h5"), with: fx.file("base.h5")) + "\n[pilot]\n" + pilot
            let cfg = try TrainCLITests.writeConfig(dir, name + ".toml", text)
            let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file(name)], np: 4)
            try #require(r.status == 0, "\(name): \(r.stderr)")
            return dir.file(name)
        }
        let copy = try run("copy", ""), copyNoLd = try run("copy-no-ld", "diff_loss = false")
        let perturbed = try run("perturbed", "psi_s_init = \"perturbed\""), perturbedNoLd = try run("perturbed-no-ld", "psi_s_init = \"perturbed\"\ndiff_loss = false")
        for k in 0..<3 {
            let c = try Self.psiDifference(copy, client: k), c0 = try Self.psiDifference(copyNoLd, client: k)
            let p = try Self.psiDifference(perturbed, client: k), p0 = try Self.psiDifference(perturbedNoLd, client: k)
            print("client \(k): max|ψt − ψs| copy \(c.maxAbs), copy without Ld \(c0.maxAbs), perturbed \(p.maxAbs); "
                  + "max|ψt(Ld) − ψt(no Ld)| copy \(maxAbsDiff(c.psiT, c0.psiT)), perturbed \(maxAbsDiff(p.psiT, p0.psiT))")
            #expect(c.maxAbs == 0 && c0.maxAbs == 0, "client \(k): ψt and ψs started equal and must stay equal")
            #expect(p.maxAbs > 0 && p0.maxAbs > 0)
            #expect(maxAbsDiff(p.psiT, p0.psiT) > 0, "client \(k): with ψs perturbed, Ld should move ψt")
        }
    }

    @Test("shepherd_lora: only LoRA trains and crosses the network, so every client's model has the base's connector; the score reproduces")
    func shepherdAsPublished() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "s.toml", TrainCLITests.config(rounds: 2, algorithm: "shepherd_lora"))
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")])
        try #require(r.status == 0, "\(r.stderr)")
        let script = """
        import sys, h5py, numpy as np
        run = sys.argv[1]
        assert h5py.File(run + '/metrics.h5').attrs['algorithm'] == 'shepherd_lora'
        loras = []
        for k in range(9):
            with h5py.File(run + '/ckpt/round_002/client_%02d.h5' % k) as f:
                names = []
                f['state'].visit(lambda n: names.append(n) if isinstance(f['state/' + n], h5py.Dataset) else None)
                assert names and all('lora' in n for n in names), [n for n in names if 'lora' not in n]
                loras.append(np.concatenate([f['state/' + n][()].ravel() for n in sorted(names)]))
        assert all((l == loras[0]).all() for l in loras) and np.abs(loras[0]).max() > 0
        print('ok')
        """
        let py = try runProcess("/usr/bin/python3", ["-c", script, dir.file("run")])
        #expect(py.status == 0 && py.stdout.contains("ok"), "h5py: \(py.stdout) \(py.stderr)")
        // pilot eval builds client 4's model from the base (connector included) and its state: the stored score
        let ev = try TrainCLITests.evalAgainstMetrics(run: dir.file("run"), client: 4, round: 2)
        #expect(ev.status == 0 && ev.printed.map { abs($0 - ev.stored) < 1e-6 } == true, "eval \(ev.stdout) \(ev.stderr), stored \(ev.stored)")
    }
}
