import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// The paper's baselines under mpirun on the tiny scenario: each runs end to end, shares exactly
/// what it should, and resumes bit for bit.
@Suite("baselines under mpirun", .serialized)
struct BaselineCLITests {
    /// What a method shares: tensors equal on every client after aggregation, and tensors that stay
    /// on their client (so they differ).
    struct Method: CustomTestStringConvertible, Sendable {
        let name: String
        let equal: [String]
        let different: [String]
        var testDescription: String { name }
    }

    static let lora = "lm/layers/0/mlp/down/lora_b"
    static let connector = "connector/mlp/fc2/weight"
    static let methods: [Method] = [
        Method(name: "centralized", equal: [lora, connector], different: []),
        Method(name: "fedprox", equal: [lora, connector], different: []),
        Method(name: "fedadam", equal: [lora, connector], different: []),
        Method(name: "shepherd", equal: [lora, "lm/layers/0/attn/q/lora_a"], different: [connector]),
        Method(name: "feddpa", equal: [lora], different: ["lm/layers/0/mlp/down/local_lora_b", connector]),
    ]

    static func clientTensor(_ run: String, round: Int, client k: Int, _ name: String) throws -> [Float] {
        let f = try H5File.open(run + String(format: "/ckpt/round_%03d/client_%02d.h5", round, k))
        defer { f.close() }
        return try f.read(Float.self, at: "state/" + name).values
    }

    @Test("runs end to end, shares what it should, and resumes after round 1 bit for bit", arguments: methods)
    func method(_ m: Method) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let extra = m.name == "fedprox" ? "[fedprox]\nmu = 0.5" : m.name == "fedadam" ? "[fedadam]\neta = 0.02" : ""
        let cfg = try TrainCLITests.writeConfig(dir, "\(m.name).toml", TrainCLITests.config(extra, algorithm: m.name))
        let full = try TrainCLITests.train(["--config", cfg, "--out", dir.file("full")])
        try #require(full.status == 0, "\(m.name): \(full.stderr)")
        #expect(full.stdout.contains("round 3/3 stage 0"))
        let inspect = try runProcess(pilotBinary, ["inspect", "--verify", dir.file("full/ckpt/round_003.h5")])
        #expect(inspect.status == 0, "inspect: \(inspect.stdout) \(inspect.stderr)")
        if m.name == "fedprox" {
            // a truncated and a deleted client file: --verify names both links and exits 1 (it used to count
            // only what it could open and exit 0)
            let copy = dir.file("broken")
            try FileManager.default.copyItem(atPath: dir.file("full/ckpt"), toPath: copy)
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: copy + "/round_003/client_04.h5"))
            try h.truncate(atOffset: 1500); try h.close()
            try FileManager.default.removeItem(atPath: copy + "/round_003/client_07.h5")
            let bad = try runProcess(pilotBinary, ["inspect", "--verify", copy + "/round_003.h5"])
            print("inspect --verify of a round with a truncated and a deleted client file (exit \(bad.status)):\n\(bad.stdout)")
            #expect(bad.status == 1, "inspect of a broken round: \(bad.stdout) \(bad.stderr)")
            #expect(bad.stdout.contains("/clients/04  BROKEN external link") && bad.stdout.contains("/clients/07  BROKEN external link")
                    && bad.stdout.contains("2 BROKEN external link(s)") && bad.stderr.contains("the checkpoint is incomplete"), "\(bad.stdout) \(bad.stderr)")
        }

        for name in m.equal {
            let states = try (0..<9).map { try Self.clientTensor(dir.file("full"), round: 3, client: $0, name) }
            #expect(states[0].contains { $0 != 0 }, "\(name) is all zero")
            #expect(states.allSatisfy { $0.map(\.bitPattern) == states[0].map(\.bitPattern) }, "\(m.name): \(name) differs between clients")
        }
        for name in m.different {
            let states = try (0..<9).map { try Self.clientTensor(dir.file("full"), round: 3, client: $0, name) }
            #expect(Set(states.map { $0.map(\.bitPattern) }).count == 9, "\(m.name): \(name) should stay on its client")
        }

        let stopped = try TrainCLITests.train(["--config", cfg, "--out", dir.file("cut"), "--stop-after-round", "1"])
        #expect(stopped.status == 75, "status \(stopped.status): \(stopped.stderr)")
        let resumed = try TrainCLITests.train(["--resume", dir.file("cut")])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try TrainCLITests.finalRoundDatasets(dir.file("full"), round: 3)
        let b = try TrainCLITests.finalRoundDatasets(dir.file("cut"), round: 3)
        #expect(a.count > 50)
        #expect(a.keys.sorted() == b.keys.sorted())
        let differing = a.keys.filter { a[$0]!.map(\.bitPattern) != b[$0]?.map(\.bitPattern) }
        #expect(differing.isEmpty, "\(m.name) differs after resume: \(differing.sorted().prefix(5))")

        // Method-specific facts, read the way a user would (h5py).
        let script = """
        import sys, h5py, numpy as np
        run, method = sys.argv[1], sys.argv[2]
        with h5py.File(run + '/metrics.h5') as f:
            assert f.attrs['algorithm'] == method
            assert np.isfinite(f['clients/eval_score'][()]).all()
            prox = f['clients/loss_proximal'][()]
            w = f['clients/eval_local_weight'][()]
            if method == 'fedprox':
                assert (prox[1:] > 0).all(), prox        # the anchor differs from the weights after the first step
            else:
                assert (prox == 0).all(), prox
            if method == 'feddpa':
                assert ((w >= 0) & (w <= 1)).all(), w
            else:
                assert np.isnan(w).all(), w
        with h5py.File(run + '/ckpt/round_003.h5') as f:
            if method == 'fedadam':
                assert f['server/t'][()].tolist() == [3.0]
                assert f['server/m'].shape == f['server/v'].shape and (f['server/v'][()] >= 0).all()
            else:
                assert 'server' not in f or len(f['server'].keys()) == 0
        print('ok')
        """
        let py = try runProcess("/usr/bin/python3", ["-c", script, dir.file("full"), m.name])
        #expect(py.status == 0 && py.stdout.contains("ok"), "h5py (\(m.name)): \(py.stderr)")

        // pilot eval reproduces the run's stored score (for feddpa: with the instance-wise weighting).
        let ev = try TrainCLITests.evalAgainstMetrics(run: dir.file("full"), client: 7, round: 3)
        #expect(ev.status == 0, "eval: \(ev.stderr)")
        #expect(ev.printed.map { abs($0 - ev.stored) < 1e-6 } == true, "\(m.name): eval printed \(ev.stdout), metrics.h5 has \(ev.stored)")
    }
}
