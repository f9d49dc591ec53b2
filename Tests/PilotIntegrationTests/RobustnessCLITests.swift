import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// Robust and private rounds under mpirun (#18): the server's checks on every update, robust
/// aggregation, DP, and each `faults.*` switch.
@Suite("robust and private rounds under mpirun", .serialized)
struct RobustnessCLITests {
    static func config(_ run: String = "", _ extra: String = "", algorithm: String = "pilot", rounds: Int = 2) -> String {
        TrainCLITests.config(extra, rounds: rounds, algorithm: algorithm)
            .replacingOccurrences(of: "rounds = \(rounds)", with: "rounds = \(rounds)\n" + run)
    }

    static func column(_ run: String, _ field: String) throws -> [Double] {
        let f = try H5File.open(run + "/metrics.h5")
        defer { f.close() }
        return try f.read(Double.self, at: field).values
    }

    static func allFinite(_ run: String, round: Int) throws -> Bool {
        try TrainCLITests.finalRoundDatasets(run, round: round).values.allSatisfy { $0.allSatisfy(\.isFinite) }
    }

    @Test("a NaN update (faults.nan_client) is rejected at the server, logged with its rank, counted, and the rest is aggregated without it")
    func nanRejected() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", Self.config("", "[faults]\nnan_client = 4\nnan_round = 2"))
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 4)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("round 2: rejected client 4 (rank 2 (clients 3–5)): its update has 1 non-finite value(s) (first: connector/task_adapters/1/"), "\(r.stdout)")
        #expect(r.stdout.contains("| 1 rejected |"), "\(r.stdout)")
        let rejected = try Self.column(dir.file("run"), "clients/rejected")
        #expect(rejected == [Double](repeating: 0, count: 9) + (0..<9).map { $0 == 4 ? 1 : 0 }, "\(rejected)")
        #expect(try Self.allFinite(dir.file("run"), round: 2), "a NaN reached a checkpoint")
        #expect(try Self.column(dir.file("run"), "clients/eval_score").allSatisfy(\.isFinite))
        // faults.* are not part of the run's identity: the config stored in the run has none
        #expect(!(try String(contentsOfFile: dir.file("run/config.toml"), encoding: .utf8)).contains("faults"))
    }

    @Test("every update rejected: the run stops with the reasons, exit non-zero, and nothing of the round is committed")
    func allRejected() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", Self.config("", "[robust]\nmax_update_norm = 1e-30"))
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 4)
        #expect(r.status != 0)
        #expect(r.seconds < 60)
        #expect(r.stderr.contains("round 1: every update was rejected, so nothing can be aggregated; no round is committed")
                && r.stderr.contains("from the round's median (robust.max_update_norm = 1e-30)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/ckpt/round_001.h5")))
    }

    @Test("a client scaled ×1e6 (faults.scale_client) is rejected by robust.max_update_norm, or clipped back to it with on_bad = clip", arguments: ["reject", "clip"])
    func normBound(onBad: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let text = Self.config("", "[robust]\nmax_update_norm = 100\non_bad = \"\(onBad)\"\n[faults]\nscale_client = 2", algorithm: "fedavg")
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", text)
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 3)
        #expect(r.status == 0, "\(r.stderr)")
        let rejected = try Self.column(dir.file("run"), "clients/rejected")
        let expected: [Double] = (0..<18).map { onBad == "reject" && $0 % 9 == 2 ? 1 : 0 }
        #expect(rejected == expected, "\(rejected)")
        // the global model stays at the scale of the others either way
        let f = try H5File.open(dir.file("run/ckpt/round_002/client_00.h5"))
        defer { f.close() }
        let big = try f.datasetPaths(under: "state").map { try f.read(Float.self, at: $0).values.map { abs($0) }.max() ?? 0 }.max() ?? 0
        #expect(big < 1000, "largest |value| of the global model: \(big)")
    }

    @Test("robust aggregators run end to end with a client scaled ×1e6 and keep the global model bounded", arguments: ["median", "trimmed_mean", "krum", "multi_krum"])
    func robustAggregators(rule: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let text = Self.config("", "[robust]\naggregator = \"\(rule)\"\ntrim = 0.2\nbyzantine_f = 1\nkrum_m = 3\n[faults]\nscale_client = 2", algorithm: "fedavg")
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", text)
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 3)
        #expect(r.status == 0, "\(r.stderr)")
        let f = try H5File.open(dir.file("run/ckpt/round_002/client_00.h5"))
        defer { f.close() }
        let big = try f.datasetPaths(under: "state").map { try f.read(Float.self, at: $0).values.map { abs($0) }.max() ?? 0 }.max() ?? 0
        #expect(big < 1000, "\(rule): largest |value| of the global model: \(big)")
    }

    @Test("pilot + krum f = 0 (3 clients per task), one update rejected: its task falls back to the median for that round, logged, and the run finishes (#34 item 4: it used to abort)")
    func krumFallsBack() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let text = Self.config("", "[robust]\naggregator = \"krum\"\nbyzantine_f = 0\n[faults]\nnan_client = 4\nnan_round = 2")
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", text)
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 4)
        #expect(r.status == 0, "\(r.stderr)")
        let log = r.stdout + r.stderr
        #expect(log.contains("round 2: rejected client 4"), "\(log)")
        #expect(log.contains("round 2: task ") && log.contains("client(s) 3, 5") && log.contains("too few for krum with f = 0")
                && log.contains("coordinate-wise median"), "\(log)")
        #expect(try Self.allFinite(dir.file("run"), round: 2))
    }

    @Test("DP-FedAvg: clipped, noised, ε after every round in metrics.h5 and the progress line, growing with the rounds; two runs give the same bits")
    func differentialPrivacy() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let text = Self.config("fraction = 0.5", "[dp]\nclip = 0.5\nnoise_multiplier = 1.1\ndelta = 1e-5", algorithm: "fedavg", rounds: 3)
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", text)
        let a = try TrainCLITests.train(["--config", cfg, "--out", dir.file("a")], np: 3)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.contains("| DP ε "), "\(a.stdout)")
        let eps = try Self.column(dir.file("a"), "server/dp_epsilon")
        #expect(eps.count == 3 && eps.allSatisfy { $0.isFinite && $0 > 0 } && eps[0] < eps[1] && eps[1] < eps[2], "\(eps)")
        let b = try TrainCLITests.train(["--config", cfg, "--out", dir.file("b")], np: 4)
        #expect(b.status == 0, "\(b.stderr)")
        let diff = try PlacementCLITests.sameBits(dir.file("a"), dir.file("b"))
        #expect(diff.isEmpty, "DP noise is not reproducible: \(diff.prefix(5))")
    }

    @Test("faults.fail_client: a client whose training throws is dropped for the round, named with its rank, and the run goes on without it")
    func failClient() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", Self.config("", "[faults]\nfail_client = 7\nfail_round = 2"))
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 4)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("round 2: rejected client 7 (rank 3 (clients 6–8)): its training failed")
                && r.stdout.contains("client 7's training failed in round 2"), "\(r.stdout)")
        #expect(try String(contentsOfFile: dir.file("run/ckpt/latest"), encoding: .utf8) == "round_002.h5\n")
        // [round][client]: only client 7 of round 2 is marked, and it sent nothing
        let rejected = try Self.column(dir.file("run"), "clients/rejected"), sent = try Self.column(dir.file("run"), "clients/bytes_sent")
        #expect(rejected == (0..<18).map { $0 == 16 ? 1 : 0 }, "\(rejected)")
        #expect(sent[16].isNaN && sent[15] > 0)
        #expect(try Self.allFinite(dir.file("run"), round: 2))
    }

    @Test("faults.fail_client with run.min_clients = K: too few updates remain, the run stops naming the client and the key, the previous round stays the latest")
    func failClientBelowMinimum() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", Self.config("min_clients = 9", "[faults]\nfail_client = 7\nfail_round = 2"))
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 4)
        #expect(r.status != 0)
        #expect(r.stdout.contains("client 7's training failed in round 2"), "\(r.stdout)")
        #expect(r.stderr.contains("fewer than run.min_clients = 9"), "\(r.stderr)")
        #expect(try String(contentsOfFile: dir.file("run/ckpt/latest"), encoding: .utf8) == "round_001.h5\n")
    }

    @Test("--resume --exclude-client K: K trains no more from the next round on, the files record it, and a later resume keeps it")
    func excludeClient() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", Self.config(rounds: 3))
        let first = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"], np: 4)
        try #require(first.status == 75, "\(first.stderr)")
        let refused = try TrainCLITests.train(["--resume", dir.file("run"), "--exclude-client", "9"], np: 4)
        #expect(refused.status != 0 && refused.stderr.contains("--exclude-client 9: the run has clients 0...8"), "\(refused.stderr)")
        let second = try TrainCLITests.train(["--resume", dir.file("run"), "--exclude-client", "7", "--stop-after-round", "2"], np: 4)
        try #require(second.status == 75, "\(second.stderr)")
        #expect(second.stdout.contains("clients left out of training from round 2 on: 7"), "\(second.stdout)")
        let third = try TrainCLITests.train(["--resume", dir.file("run")], np: 4)
        #expect(third.status == 0, "\(third.stderr)")
        // [round][client]: client 7 trained in round 1 only, every other client in every round
        let took = try Self.column(dir.file("run"), "clients/participated")
        #expect(took == (0..<27).map { $0 >= 9 && $0 % 9 == 7 ? 0 : 1 }, "\(took)")
        let f = try H5File.open(dir.file("run/metrics.h5"))
        defer { f.close() }
        #expect(try f.attribute("excluded_clients") == .ints([7]))
        let r3 = try H5File.open(dir.file("run/ckpt/round_003.h5"))
        defer { r3.close() }
        #expect(try r3.attribute("excluded_clients") == .ints([7]))
        #expect(try Self.allFinite(dir.file("run"), round: 3))
    }

    @Test("faults.kill_point: killed at each point of round 2's commit, the run resumes (without the faults) to the bits of an uninterrupted run",
          arguments: ["after_client_files", "after_round_file", "after_latest", "after_metrics"])
    func killPoints(point: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let plain = try TrainCLITests.writeConfig(dir, "plain.toml", Self.config(rounds: 3))
        let full = try TrainCLITests.train(["--config", plain, "--out", dir.file("full")], np: 3)
        try #require(full.status == 0, "\(full.stderr)")
        let cfg = try TrainCLITests.writeConfig(dir, "kill.toml", Self.config("", "[faults]\nkill_point = \"\(point)\"\nkill_round = 2", rounds: 3))
        let killed = try TrainCLITests.train(["--config", cfg, "--out", dir.file("cut")], np: 3)
        #expect(killed.status != 0)
        #expect(killed.stderr.contains("fault injection: killed at \(point) of round 2"), "\(killed.stderr)")
        let latest = try String(contentsOfFile: dir.file("cut/ckpt/latest"), encoding: .utf8)
        #expect(latest == (point == "after_client_files" || point == "after_round_file" ? "round_001.h5\n" : "round_002.h5\n"), "\(latest)")
        let resumed = try TrainCLITests.train(["--resume", dir.file("cut")], np: 3)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let diff = try PlacementCLITests.sameBits(dir.file("full"), dir.file("cut"))
        #expect(diff.isEmpty, "differ: \(diff.prefix(5))")
        let f = try H5File.open(dir.file("cut/metrics.h5"))
        defer { f.close() }
        #expect(try f.read(Int64.self, at: "round").values == [1, 2, 3])
    }

    @Test("faults.* may be changed or dropped on --resume: they are not part of the run's identity")
    func faultsNotIdentity() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", Self.config("", "[faults]\nnan_client = 1", rounds: 2))
        let first = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"], np: 3)
        #expect(first.status == 75, "\(first.stderr)")
        let other = try TrainCLITests.writeConfig(dir, "d.toml", Self.config("", "[faults]\nscale_client = 3\nscale_factor = 2", rounds: 2))
        let resumed = try TrainCLITests.train(["--resume", dir.file("run"), "--config", other], np: 3)
        #expect(resumed.status == 0, "\(resumed.stderr)")
    }
}

/// Reproducibility across machines (#18 item 6): the kernel is recorded, a resume on another one warns
/// or (strict) refuses, and run.blas_core pins it.
@Suite("BLAS kernel under mpirun", .serialized)
struct BLASKernelCLITests {
    @Test("a resume on another OpenBLAS kernel warns; with run.strict_reproducibility it is refused; run.blas_core pins the kernel")
    func kernel() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", RobustnessCLITests.config("blas_core = \"haswell\"", rounds: 2))
        let first = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"], np: 3)
        #expect(first.status == 75, "\(first.stderr)")
        let f = try H5File.open(dir.file("run/ckpt/round_001.h5"))
        #expect(try f.attribute("blas_core")?.stringValue == "Haswell")
        #expect(try f.attribute("engine_threads")?.intValue == 1)
        f.close()
        // another kernel for the resume: run.blas_core is part of the run, so use a run without it. Its first
        // round runs under OPENBLAS_CORETYPE=Haswell given here, not under whatever this machine's environment sets.
        let plain = try TrainCLITests.writeConfig(dir, "p.toml", RobustnessCLITests.config(rounds: 2))
        let haswell = mpirunArguments(np: 3) + ["-x", "OPENBLAS_CORETYPE=Haswell", pilotBinary, "train"]
        let cut = try runProcess(mpirunPath, haswell + ["--config", plain, "--out", dir.file("plain"), "--stop-after-round", "1"], timeout: 300)
        #expect(cut.status == 75, "\(cut.stderr)")
        let other = try runProcess(mpirunPath, mpirunArguments(np: 3) + ["-x", "OPENBLAS_CORETYPE=SandyBridge", pilotBinary, "train", "--resume", dir.file("plain")], timeout: 300)
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.contains("warning: round 1 was computed with OpenBLAS's Haswell kernel and 1 engine thread(s) per rank; this resume runs Sandybridge with 1"), "\(other.stdout)")
        // strict: a run must start on the kernel its base was made with (#34 item 5), and resume on it
        let base = try H5File.open(TrainCLITests.fixture.file("base.h5"))
        let made = try #require(try base.attribute("blas_core")?.stringValue, "the base records its kernel")
        base.close()
        let elsewhere = made.lowercased() == "sandybridge" ? "Haswell" : "SandyBridge"
        let strict = try TrainCLITests.writeConfig(dir, "s.toml", RobustnessCLITests.config("strict_reproducibility = true", rounds: 2))
        let wrongBase = try runProcess(mpirunPath, mpirunArguments(np: 3) + ["-x", "OPENBLAS_CORETYPE=\(elsewhere)", pilotBinary, "train", "--config", strict, "--out", dir.file("wrong")], timeout: 300)
        #expect(wrongBase.status != 0 && wrongBase.stderr.contains("was made with OpenBLAS's \(made) kernel"), "\(wrongBase.stderr)")
        let onBase = mpirunArguments(np: 3) + ["-x", "OPENBLAS_CORETYPE=\(made)", pilotBinary, "train"]
        let cut2 = try runProcess(mpirunPath, onBase + ["--config", strict, "--out", dir.file("strict"), "--stop-after-round", "1"], timeout: 300)
        #expect(cut2.status == 75, "\(cut2.stderr)")
        let refused = try runProcess(mpirunPath, mpirunArguments(np: 3) + ["-x", "OPENBLAS_CORETYPE=\(elsewhere)", pilotBinary, "train", "--resume", dir.file("strict")], timeout: 300)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("run.strict_reproducibility = true"), "\(refused.stderr)")
        // run.blas_core wins over the environment: the pinned run resumes on Haswell under a SandyBridge environment
        let pinned = try runProcess(mpirunPath, mpirunArguments(np: 3) + ["-x", "OPENBLAS_CORETYPE=SandyBridge", pilotBinary, "train", "--resume", dir.file("run")], timeout: 300)
        #expect(pinned.status == 0, "\(pinned.stderr)")
        #expect(!pinned.stdout.contains("warning: round 1 was computed"), "\(pinned.stdout)")
    }
}

/// Changed inputs between a stop and `--resume` are refused, naming the file and the hash (#18 item 7).
@Suite("changed inputs on resume", .serialized)
struct ChangedInputsCLITests {
    @Test("a shard or the base replaced after a stop: --resume refuses, naming the file and both SHA-256s; restored, it resumes")
    func changedInputs() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = dir.file("data")
        try #require(try runProcess("/bin/cp", ["-r", TrainCLITests.fixture.file("data"), data]).status == 0)
        try #require(try runProcess("/bin/cp", [TrainCLITests.fixture.file("base.h5"), dir.file("base.h5")]).status == 0)
        let text = RobustnessCLITests.config(rounds: 2)
            .replacingOccurrences(of: "\"\(TrainCLITests.fixture.file("data"))\"", with: "\"\(data)\"")
            .replacingOccurrences(of: "\"\(TrainCLITests.fixture.file("base.h5"))\"", with: "\"\(dir.file("base.h5"))\"")
        let cfg = try TrainCLITests.writeConfig(dir, "c.toml", text)
        let cut = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"], np: 4)
        try #require(cut.status == 75, "\(cut.stderr)")
        let shard = data + "/clients/client-03.h5"
        try FileManager.default.moveItem(atPath: shard, toPath: shard + ".orig")
        try FileManager.default.copyItem(atPath: data + "/clients/client-04.h5", toPath: shard)
        let refused = try TrainCLITests.train(["--resume", dir.file("run")], np: 4)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("client 3's shard \(shard) changed since round 1 (SHA-256"), "\(refused.stderr)")
        try FileManager.default.removeItem(atPath: shard)
        try FileManager.default.moveItem(atPath: shard + ".orig", toPath: shard)
        let other = try runProcess(pilotBinary, ["pretrain", "--data", data, "--out", dir.file("base.h5"), "--model-size", "micro",
                                                 "--steps", "2", "--batch", "8", "--eval-test", "0"])
        try #require(other.status == 0, "\(other.stderr)")
        let refusedBase = try TrainCLITests.train(["--resume", dir.file("run")], np: 4)
        #expect(refusedBase.status != 0)
        #expect(refusedBase.stderr.contains("the base checkpoint \(dir.file("base.h5")) changed since round 1 (SHA-256"), "\(refusedBase.stderr)")
        try FileManager.default.removeItem(atPath: dir.file("base.h5"))
        try FileManager.default.copyItem(atPath: TrainCLITests.fixture.file("base.h5"), toPath: dir.file("base.h5"))
        let ok = try TrainCLITests.train(["--resume", dir.file("run")], np: 4)
        #expect(ok.status == 0, "\(ok.stderr)")
    }
}
