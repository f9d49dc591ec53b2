import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `pilot train` under mpirun on a tiny scenario with the micro model: end to end, resume after
/// every round, refused resume, bad configs, and what rank 0's files may contain.
@Suite("pilot train under mpirun", .serialized)
struct TrainCLITests {
    /// A tiny vu scenario and a micro base model, made once per test process.
    static let fixture: TemporaryDirectory = {
        let dir = TemporaryDirectory("train-fixture")
        let gen = try! runProcess(pilotBinary, ["data", "generate", "--scenario", "vu", "--size", "tiny", "--seed", "3", "--out", dir.file("data")])
        precondition(gen.status == 0, "data generate failed: \(gen.stderr)")
        let pre = try! runProcess(pilotBinary, ["pretrain", "--data", dir.file("data"), "--out", dir.file("base.h5"),
                                                "--model-size", "micro", "--steps", "4", "--batch", "8", "--eval-test", "0"])
        precondition(pre.status == 0, "pretrain failed: \(pre.stderr)")
        return dir
    }()

    static func config(_ extra: String = "", rounds: Int = 3, algorithm: String = "pilot") -> String {
        """
        [run]
        algorithm = "\(algorithm)"
        seed = 5
        rounds = \(rounds)
        data = "\(fixture.file("data"))"
        base = "\(fixture.file("base.h5"))"

        [train]
        batch_size = 8
        max_steps = 2
        lr = 1e-3
        lr_stage1 = 1e-3
        lr_stage2 = 2e-3

        [eval]
        max_examples = 6
        max_new_tokens = 6
        \(extra)
        """
    }

    static func train(_ args: [String], np: Int = 10) throws -> ProcessResult {
        try runProcess(mpirunPath, mpirunArguments(np: np) + [pilotBinary, "train"] + args, timeout: 300)
    }

    static func writeConfig(_ dir: TemporaryDirectory, _ name: String, _ text: String) throws -> String {
        let path = dir.file(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `pilot eval` on client `client`'s model of `round` (6 examples, 6 new tokens, as the
    /// test configs evaluate) and returns the score it printed next to the one in metrics.h5.
    static func evalAgainstMetrics(run: String, client: Int, round: Int, clients: Int = 9, firstExample: Int = 0) throws
        -> (status: Int32, stdout: String, stderr: String, printed: Double?, stored: Double) {
        let ev = try runProcess(pilotBinary, ["eval", "--run", run, "--client", "\(client)", "--round", "\(round)",
                                              "--first-example", "\(firstExample)", "--max-examples", "6", "--max-new-tokens", "6"])
        let printed = Double(ev.stdout.split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
        let stored = try H5File.open(run + "/metrics.h5").read(Double.self, at: "clients/eval_score").values[(round - 1) * clients + client]
        return (ev.status, ev.stdout, ev.stderr, printed, stored)
    }

    /// Every dataset of every file of the final round, by (file, dataset) path.
    static func finalRoundDatasets(_ run: String, round: Int) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        let dir = run + "/ckpt"
        var files = [String(format: "round_%03d.h5", round)]
        let sub = String(format: "round_%03d", round)
        files += try FileManager.default.contentsOfDirectory(atPath: dir + "/" + sub).sorted().map { sub + "/" + $0 }
        for name in files {
            let f = try H5File.open(dir + "/" + name)
            for p in try f.datasetPaths() {
                switch try f.info(of: p).typeName {
                case "float32": out[name + ":" + p] = try f.read(Float.self, at: p).values
                case "int64": out[name + ":" + p] = try f.read(Int64.self, at: p).values.map { Float($0) }
                default: break
                }
            }
        }
        return out
    }

    @Test("pilot runs end to end and writes a valid checkpoint and metrics file")
    func endToEnd() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config())
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        for round in 1...3 { #expect(r.stdout.contains("round \(round)/3 stage \(round == 1 ? 1 : 2)"), "stdout: \(r.stdout)") }
        #expect(r.stdout.contains("| task | mean over its clients |"))
        let latest = try String(contentsOfFile: dir.file("run/ckpt/latest"), encoding: .utf8)
        #expect(latest == "round_003.h5\n")
        let inspect = try runProcess(pilotBinary, ["inspect", "--verify", dir.file("run/ckpt/round_003.h5")])
        #expect(inspect.status == 0, "inspect: \(inspect.stdout) \(inspect.stderr)")

        let script = """
        import sys, h5py, numpy as np
        run = sys.argv[1]
        with h5py.File(run + '/metrics.h5') as m:
            assert list(m['round'][()]) == [1, 2, 3]
            assert m['clients/eval_score'].shape == (3, 9)
            assert np.isfinite(m['clients/eval_score'][()]).all()
            assert (m['clients/bytes_sent'][()] > 0).all() and (m['clients/loss_ce'][()] > 0).all()
            assert (m['clients/seconds_aggregate'][()] > 0).all() and (m['server/seconds_aggregate'][()] > 0).all()
            assert (m['clients/loss_diff'][0] > 0).all() and (m['clients/loss_balance'][1:] > 0).all()
            assert list(m.attrs['client_tasks']) == ['vqa'] * 3 + ['caption'] * 3 + ['grounding'] * 3
        with h5py.File(run + '/ckpt/round_003.h5') as f:
            assert f.attrs['round'] == 3 and f.attrs['stage'] == 2 and f.attrs['algorithm'] == 'pilot'
            assert isinstance(f.attrs['config'], str) and 'ata_m = 6' in f.attrs['config']
            lora = f['clients/04/state/lm/layers/0/attn/q/lora_b'][()]
            assert lora.dtype == np.float32 and lora.ndim == 2 and np.abs(lora).sum() > 0   # [r, out], with its shape
            assert f.attrs['format_version'] == 2
            assert 'connector/client_adapter' in f['clients/04/state']
            assert 'connector/cross_task_adapters' in f['clients/04/state']
            assert len(f['server/connector/task_adapters'].keys()) == 3   # the server state in the slots' names
            # Clients of one task hold the same aggregated task adapter (Eq. 10), different LoRA (ATA).
            a = f['clients/03/state/connector/task_adapters/1/fc1/weight'][()]
            b = f['clients/05/state/connector/task_adapters/1/fc1/weight'][()]
            assert np.array_equal(a, b)
        print('ok')
        """
        let py = try runProcess("/usr/bin/python3", ["-c", script, dir.file("run")])
        #expect(py.status == 0 && py.stdout.contains("ok"), "h5py: \(py.stderr)")

        // pilot eval rebuilds client 4's personalised model from the checkpoint and gets the run's score.
        let ev = try Self.evalAgainstMetrics(run: dir.file("run"), client: 4, round: 3)
        #expect(ev.status == 0, "eval: \(ev.stderr)")
        #expect(ev.printed.map { abs($0 - ev.stored) < 1e-6 } == true, "eval printed \(ev.stdout), metrics.h5 has \(ev.stored)")
    }

    @Test("eval.first_example scores the slice it names: pilot eval on that slice reproduces every client's score, and slice 0 would not")
    func evalSliceIsHonoured() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let first = 12  // examples 12–17 of each 30-example test split; the default slice is 0–5
        let cfg = try Self.writeConfig(dir, "local.toml", Self.config("first_example = \(first)", rounds: 1, algorithm: "local"))
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        try #require(r.status == 0, "train failed: \(r.stderr)")
        var differsFromSliceZero = 0
        for client in 0..<9 {
            let slice = try Self.evalAgainstMetrics(run: dir.file("run"), client: client, round: 1, firstExample: first)
            #expect(slice.status == 0, "eval: \(slice.stderr)")
            #expect(slice.printed.map { abs($0 - slice.stored) < 1e-6 } == true,
                    "client \(client): eval on examples \(first)… printed \(slice.stdout), metrics.h5 has \(slice.stored)")
            let zero = try Self.evalAgainstMetrics(run: dir.file("run"), client: client, round: 1, firstExample: 0)
            if let p = zero.printed, abs(p - slice.stored) > 1e-6 { differsFromSliceZero += 1 }
        }
        // Without this, the check above could not tell the two slices apart.
        #expect(differsFromSliceZero > 0, "every client scores the same on examples 0–5 and \(first)–\(first + 5): the test cannot tell the slices apart")
        let past = try runProcess(pilotBinary, ["eval", "--run", dir.file("run"), "--client", "0", "--first-example", "30"])
        #expect(past.status != 0 && past.stderr.contains("--first-example 30 is past the end of"), "eval past the split: \(past.stderr)")
    }

    @Test("a client shard with no examples is refused before training, naming the client and the file")
    func emptyShardIsRefused() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = dir.file("data")
        try FileManager.default.copyItem(atPath: Self.fixture.file("data"), toPath: data)
        let shard = "clients/" + (try FileManager.default.contentsOfDirectory(atPath: data + "/clients").filter { $0.hasSuffix(".h5") }.sorted()[4])
        // the same shard with zero rows in every dataset (pilot never writes one; h5py can)
        let py = """
        import h5py, hashlib, sys
        src, dst = sys.argv[1], sys.argv[2]
        with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
            for k, v in a.attrs.items(): b.attrs[k] = v
            for name, d in a.items():
                if name.endswith("offsets"):
                    b.create_dataset(name, data=d[:1]); raw = d[:1].tobytes()
                else:
                    b.create_dataset(name, shape=(0,) + d.shape[1:], dtype=d.dtype); raw = b""
                b[name].attrs["sha256"] = hashlib.sha256(raw).hexdigest()   # pilot's per-dataset checksum
        """
        try FileManager.default.moveItem(atPath: data + "/" + shard, toPath: dir.file("full.h5"))
        let made = try runProcess("/usr/bin/python3", ["-c", py, dir.file("full.h5"), data + "/" + shard])
        try #require(made.status == 0, "\(made.stderr)")
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config(rounds: 1).replacingOccurrences(of: Self.fixture.file("data"), with: data))
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        #expect(r.status != 0)
        #expect((r.stdout + r.stderr).contains("has no examples") && (r.stdout + r.stderr).contains(shard), "\(r.stdout) \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/ckpt/latest")))
    }

    @Test("a base pretrained on another scenario is refused before training (#18 item 7)")
    func foreignBaseIsRefused() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let base = dir.file("gvqa-base.h5")
        try FileManager.default.copyItem(atPath: Self.fixture.file("base.h5"), toPath: base)
        let py = "import h5py, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f.attrs['scenario'] = 'gvqa'"
        let made = try runProcess("/usr/bin/python3", ["-c", py, base])
        try #require(made.status == 0, "\(made.stderr)")
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config(rounds: 1).replacingOccurrences(of: Self.fixture.file("base.h5"), with: base))
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        #expect(r.status != 0)
        #expect(r.stderr.contains("was pretrained on the gvqa scenario") && r.stderr.contains("is the vu scenario"), "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.components(separatedBy: "was pretrained on the gvqa scenario").count - 1 == 1
                && r.stderr.contains("failed on every rank, each with:"), "the same reason on every rank is printed once: \(r.stderr)")
    }

    @Test("stop after round r, resume: the final checkpoint equals an uninterrupted run's bit for bit", arguments: [1, 2])
    func resumeIsBitwise(stopAfter: Int) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config())
        let full = try Self.train(["--config", cfg, "--out", dir.file("full")])
        try #require(full.status == 0, "\(full.stderr)")
        let stopped = try Self.train(["--config", cfg, "--out", dir.file("cut"), "--stop-after-round", "\(stopAfter)"])
        #expect(stopped.status == 75, "status \(stopped.status): \(stopped.stderr)")
        #expect(try String(contentsOfFile: dir.file("cut/ckpt/latest"), encoding: .utf8) == String(format: "round_%03d.h5\n", stopAfter))
        // what commits killed before their rename leave behind (#18 item 6); the resume removes them, and only them
        let stale = ["cut/ckpt/.latest.tmp-99999", "cut/ckpt/.round_004.h5.tmp-99999-7", "cut/ckpt/round_001/.client_03.h5.tmp-99999-3"]
        for f in stale + ["cut/ckpt/.keep"] { try Data("x".utf8).write(to: URL(fileURLWithPath: dir.file(f))) }
        // metrics.h5 lost (deleted, or a kill between the commit and its write, #18 item 2): rebuilt on resume
        if stopAfter == 2 { try FileManager.default.removeItem(atPath: dir.file("cut/metrics.h5")) }
        let resumed = try Self.train(["--resume", dir.file("cut")])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("removed 3 temporary file(s) that an interrupted commit left"), "\(resumed.stdout)")
        #expect(stale.allSatisfy { !FileManager.default.fileExists(atPath: dir.file($0)) })
        #expect(FileManager.default.fileExists(atPath: dir.file("cut/ckpt/.keep")))
        if stopAfter == 2 {
            #expect(resumed.stdout.contains("metrics.h5 had no row for round(s) 1, 2; rebuilt from the round checkpoints"), "\(resumed.stdout)")
            let full = try H5File.open(dir.file("full/metrics.h5")), cut = try H5File.open(dir.file("cut/metrics.h5"))
            #expect(try cut.read(Int64.self, at: "round").values == [1, 2, 3])
            for field in ["loss_total", "loss_ce", "steps", "eval_score", "bytes_sent"] {
                let a = try full.read(Double.self, at: "clients/" + field).values, b = try cut.read(Double.self, at: "clients/" + field).values
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(field) of the rebuilt rows differs")
            }
            let seconds = try cut.read(Double.self, at: "clients/seconds_train").values
            #expect(seconds.prefix(18).allSatisfy(\.isNaN) && seconds.suffix(9).allSatisfy(\.isFinite), "rebuilt rows have no timings: \(seconds)")
        }
        #expect(resumed.stdout.contains("resumed \(dir.file("cut")) after round \(stopAfter)"))
        let a = try Self.finalRoundDatasets(dir.file("full"), round: 3)
        let b = try Self.finalRoundDatasets(dir.file("cut"), round: 3)
        #expect(a.count > 100)
        #expect(a.keys.sorted() == b.keys.sorted())
        let differing = a.keys.filter { a[$0]!.map(\.bitPattern) != b[$0]?.map(\.bitPattern) }
        #expect(differing.isEmpty, "differ: \(differing.sorted().prefix(5))")
    }

    @Test("fedavg leaves every client with the same model; local leaves them all different", arguments: ["fedavg", "local"])
    func baselines(algorithm: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "b.toml", Self.config(rounds: 2, algorithm: algorithm))
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("round 2/2 stage 0"))
        let name = "lm/layers/0/mlp/down/lora_b"
        let states = try (0..<9).map { k in
            try H5File.open(dir.file(String(format: "run/ckpt/round_002/client_%02d.h5", k))).read(Float.self, at: "state/" + name).values
        }
        #expect(states[0].contains { $0 != 0 })
        if algorithm == "fedavg" {
            #expect(states.allSatisfy { $0 == states[0] })
        } else {
            #expect(Set(states.map { $0.map(\.bitPattern) }).count == 9)
        }
    }

    @Test("SIGUSR1 to the ranks (as srun delivers it): the round finishes, its checkpoint commits, every rank exits 75, and --resume completes")
    func realSignal() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config(rounds: 8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirunPath)
        p.arguments = mpirunArguments(np: 10) + [pilotBinary, "train", "--config", cfg, "--out", dir.file("run")]
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
        FileManager.default.createFile(atPath: dir.file("out.txt"), contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: dir.file("out.txt"))!
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Signal once round 1 is committed: every rank has its handler installed by then.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && p.isRunning && !FileManager.default.fileExists(atPath: dir.file("run/ckpt/latest")) {
            usleep(5_000)
        }
        // The test runner's own signal mask is inherited by mpirun, so signal the ranks directly,
        // as Slurm does for every task of a step.
        _ = try runProcess("/usr/bin/pkill", ["-USR1", "-f", "pilot train --config \(cfg)"])
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: dir.file("out.txt"), encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 75, "status \(p.terminationStatus): \(text)")
        #expect(text.contains("stop requested by SIGUSR1: round"))
        let latest = try String(contentsOfFile: dir.file("run/ckpt/latest"), encoding: .utf8)
        #expect(latest != "round_008.h5\n", "the run finished before the signal arrived")
        let resumed = try Self.train(["--resume", dir.file("run")])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try String(contentsOfFile: dir.file("run/ckpt/latest"), encoding: .utf8) == "round_008.h5\n")
    }

    @Test("nothing from a client's shard appears in any file rank 0 writes or in its output")
    func privacy() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config(rounds: 2))
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        try #require(r.status == 0, "\(r.stderr)")
        // Rank 0's files: the round files, metrics.h5, config.toml, latest (not the clients' own files).
        var serverBytes = Data(r.stdout.utf8) + Data(r.stderr.utf8)
        for name in ["metrics.h5", "config.toml", "ckpt/latest", "ckpt/round_001.h5", "ckpt/round_002.h5"] {
            serverBytes += try Data(contentsOf: URL(fileURLWithPath: dir.file("run/" + name)))
        }
        let haystack = [UInt8](serverBytes)
        let script = """
        import sys, h5py
        for k in range(9):
            with h5py.File(sys.argv[1] + '/clients/client-%02d.h5' % k) as f:
                for name in ['ids', 'answers', 'image_ids']:
                    for s in f[name][()]:
                        print((s.decode() if isinstance(s, bytes) else s).replace('\\n', ' '))
                img = f['images'][()]
                print('IMG ' + img[0, 8:16, 8:16, :].tobytes().hex())
        """
        let shard = try runProcess("/usr/bin/python3", ["-c", script, Self.fixture.file("data")])
        try #require(shard.status == 0, "\(shard.stderr)")
        var checked = 0
        for line in shard.stdout.split(separator: "\n") {
            let needle: [UInt8]
            if line.hasPrefix("IMG ") {
                let hex = Array(line.dropFirst(4))
                needle = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(hex[$0...$0 + 1]), radix: 16)! }
            } else {
                // Short answers ("yes", "2") are common words; only distinctive strings can be checked.
                guard line.count >= 8 else { continue }
                needle = Array(line.utf8)
            }
            checked += 1
            let what = String(line.prefix(60))
            #expect(indexOf(needle, in: haystack) == nil, "client data found in rank 0's output: \(what)")
        }
        #expect(checked > 100)
    }
}

func indexOf(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard !needle.isEmpty, needle.count <= haystack.count else { return nil }
    let first = needle[0]
    var i = 0
    while i <= haystack.count - needle.count {
        if haystack[i] == first && Array(haystack[i..<(i + needle.count)]) == needle { return i }
        i += 1
    }
    return nil
}
