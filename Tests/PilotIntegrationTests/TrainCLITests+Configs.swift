import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `pilot train`'s refusals of configs: a changed config on resume, and bad configs before MPI starts.
extension TrainCLITests {
    @Test("resuming with a different config is refused and the differing keys are listed")
    func refusedResume() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "pilot.toml", Self.config(rounds: 2))
        let stopped = try Self.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"])
        try #require(stopped.status == 75)
        let other = try Self.writeConfig(dir, "other.toml", Self.config(rounds: 2).replacingOccurrences(of: "lr_stage2 = 2e-3", with: "lr_stage2 = 5e-3"))
        let r = try Self.train(["--resume", dir.file("run"), "--config", other])
        #expect(r.status != 0)
        #expect(r.stderr.contains("train.lr_stage2: 0.002 → 0.005"), "stderr: \(r.stderr)")
        #expect(r.stderr.components(separatedBy: "refusing to resume").count == 2, "printed by one rank only: \(r.stderr)")
        // The run itself is untouched and still resumable with its own config.
        #expect(try String(contentsOfFile: dir.file("run/ckpt/latest"), encoding: .utf8) == "round_001.h5\n")

        // A root attribute edited after the commit (#18 item 4: it used to be accepted) is refused by name.
        try FileManager.default.copyItem(atPath: dir.file("run"), toPath: dir.file("edited"))
        let py = "import h5py, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f.attrs['world_size'] = 7"
        let edit = try runProcess("/usr/bin/python3", ["-c", py, dir.file("edited/ckpt/round_001.h5")])
        try #require(edit.status == 0, "\(edit.stderr)")
        let e = try Self.train(["--resume", dir.file("edited")])
        #expect(e.status != 0)
        #expect(e.stderr.contains("changed since pilot wrote them") && e.stderr.contains("round_001.h5"), "\(e.stderr)")
        #expect(e.stderr.components(separatedBy: "changed since pilot wrote them").count == 2, "printed once: \(e.stderr)")
        let ins = try runProcess(pilotBinary, ["inspect", "--verify", dir.file("edited/ckpt/round_001.h5")])
        #expect(ins.status == 1 && ins.stdout.contains("root attributes: MISMATCH"), "inspect: \(ins.stdout) \(ins.stderr)")
        let clean = try runProcess(pilotBinary, ["inspect", "--verify", dir.file("run/ckpt/round_001.h5")])
        #expect(clean.status == 0, "inspect of the untouched round: \(clean.stdout) \(clean.stderr)")

        // #34 item 6: an attribute edited in a client file changes no dataset checksum; --verify used to
        // pass it although --resume refuses it. It now checks the client files' recorded SHA-256.
        try FileManager.default.copyItem(atPath: dir.file("run"), toPath: dir.file("clientedit"))
        let pyClient = "import h5py, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f.attrs['note'] = 'edited'"
        let editClient = try runProcess("/usr/bin/python3", ["-c", pyClient, dir.file("clientedit/ckpt/round_001/client_03.h5")])
        try #require(editClient.status == 0, "\(editClient.stderr)")
        let insClient = try runProcess(pilotBinary, ["inspect", "--verify", dir.file("clientedit/ckpt/round_001.h5")])
        #expect(insClient.status == 1 && insClient.stdout.contains("client_03.h5  sha256 MISMATCH")
                && insClient.stderr.contains("client_files_sha256"), "inspect: \(insClient.stdout) \(insClient.stderr)")

        // A garbage ckpt/latest: the advice names the newest intact round instead of "remove it" (which
        // would restart the run and discard round 1).
        try FileManager.default.copyItem(atPath: dir.file("run"), toPath: dir.file("garbled"))
        try "garbage\n".write(toFile: dir.file("garbled/ckpt/latest"), atomically: true, encoding: .utf8)
        let g = try Self.train(["--resume", dir.file("garbled")])
        #expect(g.status != 0)
        #expect(g.stderr.contains("The newest intact round file is round_001.h5") && g.stderr.contains("do not remove it"), "\(g.stderr)")

        // A corrupt metrics.h5: the refusal says that deleting it rebuilds every row from the round files,
        // and it does.
        try FileManager.default.copyItem(atPath: dir.file("run"), toPath: dir.file("badmetrics"))
        try "not hdf5".write(toFile: dir.file("badmetrics/metrics.h5"), atomically: true, encoding: .utf8)
        let m = try Self.train(["--resume", dir.file("badmetrics")])
        #expect(m.status != 0)
        #expect(m.stderr.contains("Delete it and --resume again") && m.stderr.contains("rebuilds every row"), "\(m.stderr)")
        try FileManager.default.removeItem(atPath: dir.file("badmetrics/metrics.h5"))
        let rebuilt = try Self.train(["--resume", dir.file("badmetrics")])
        #expect(rebuilt.status == 0, "resume after deleting metrics.h5: \(rebuilt.stderr)")
        let rows = try H5File.open(dir.file("badmetrics/metrics.h5"))
        #expect(try rows.read(Int64.self, at: "round").values == [1, 2])
        rows.close()
        let ok = try Self.train(["--resume", dir.file("run")])
        #expect(ok.status == 0, "the untouched run resumes: \(ok.stderr)")
    }

    struct BadConfig: Sendable, CustomStringConvertible {
        let name: String, edit: @Sendable (String) -> String, np: Int, message: String
        var description: String { name }
    }

    static let badConfigs: [BadConfig] = [
        BadConfig(name: "unknown key", edit: { $0.replacingOccurrences(of: "lr_stage1 =", with: "lr_stag1 =") }, np: 10,
                  message: "unknown key 'train.lr_stag1'; did you mean 'train.lr_stage1'?"),
        BadConfig(name: "wrong type", edit: { $0.replacingOccurrences(of: "rounds = 3", with: "rounds = \"three\"") }, np: 10,
                  message: "run.rounds has the wrong type: string \"three\", expected an integer"),
        BadConfig(name: "out of range", edit: { $0.replacingOccurrences(of: "batch_size = 8", with: "batch_size = 0") }, np: 10,
                  message: "train.batch_size is 0; it must be in 1...512"),
        BadConfig(name: "bad choice", edit: { $0.replacingOccurrences(of: "[eval]", with: "[pilot]\nata_selection = \"nearest\"\n[eval]") }, np: 10,
                  message: "pilot.ata_selection is \"nearest\"; choose one of \"top_m\", \"same_task\", \"all\""),
        BadConfig(name: "more ranks than clients", edit: { $0 }, np: 11,
                  message: "world size is 11: 10 client ranks for only 9 clients"),
        BadConfig(name: "clients_per_rank does not divide K", edit: { $0.replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nclients_per_rank = 2") }, np: 4,
                  message: "run.clients_per_rank = 2 does not divide the scenario's 9 clients"),
        BadConfig(name: "clients_per_rank does not fit -np", edit: { $0.replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nclients_per_rank = 3") }, np: 3,
                  message: "run with -np 4"),
        BadConfig(name: "a fraction that samples no client", edit: { $0.replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nfraction = 0.05") }, np: 3,
                  message: "run.fraction = 0.05 of 9 clients samples 0 clients per round"),
        BadConfig(name: "missing data", edit: { $0.replacingOccurrences(of: "base.h5\"", with: "nope.h5\"") }, np: 10,
                  message: "missing or unreadable data files"),
        BadConfig(name: "eval slice past the test split", edit: { $0.replacingOccurrences(of: "[eval]", with: "[eval]\nfirst_example = 100000") }, np: 10,
                  message: "eval.first_example = 100000 is past the end of"),
        // #34 item 4: used to pass validation and abort after round 1 had trained
        BadConfig(name: "krum with a sample too small for f", edit: { $0.replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nfraction = 0.3")
                    .replacingOccurrences(of: "[eval]", with: "[robust]\naggregator = \"krum\"\n[eval]") }, np: 10,
                  message: "needs at least 4 updates per round, but run.fraction = 0.3 and run.min_clients = 0 sample 2 of the 9 clients"),
        // #34 item 6: used to be capped at K without a word
        BadConfig(name: "min_clients above K", edit: { $0.replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nmin_clients = 12") }, np: 10,
                  message: "run.min_clients = 12 is more than the 9 clients"),
        BadConfig(name: "a section opened twice", edit: { $0 + "\n[train]\nepochs = 1\n" }, np: 10,
                  message: "[train] is opened a second time"),
    ]

    @Test("bad configs are rejected before MPI starts, by rank 0, and every rank exits", arguments: badConfigs)
    func badConfig(_ bad: BadConfig) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.writeConfig(dir, "bad.toml", bad.edit(Self.config()))
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")], np: bad.np)
        #expect(r.status != 0)
        #expect(r.seconds < 30)
        #expect(r.stderr.contains(bad.message), "stderr: \(r.stderr)")
        #expect(r.stderr.components(separatedBy: "pilot train:").count == 2, "only rank 0 reports: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/ckpt")))
    }
}
