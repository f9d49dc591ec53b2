import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `model.lora_ranks` under mpirun (HetLoRA): a mixed-rank run is bitwise the same on any placement,
/// each client's state keeps its own rank, one rank given per client equals `model.lora_rank`, and a
/// resume that changes a client's rank is refused.
@Suite("heterogeneous LoRA ranks under mpirun", .serialized)
struct HetLoRACLITests {
    /// Ranks 2, 4 and 8 across the 9 clients of the tiny vu scenario (one of each per task); the micro
    /// base's LM is 64 wide.
    static let mixed = "[model]\nlora_ranks = [2, 4, 8, 2, 4, 8, 2, 4, 8]\n"

    @Test("a mixed-rank run on -np 10 and -np 3 gives bit-identical checkpoints and metrics; each client's state has its own rank", arguments: ["pilot", "fedadam"])
    func placementIndependent(algorithm: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config(Self.mixed, algorithm: algorithm))
        let (_, d) = try PlacementCLITests.trainWideAndNarrow(cfg, in: dir)
        #expect(d.isEmpty, "differ: \(d.prefix(5))")
        for (k, r) in [2, 4, 8, 2].enumerated() {
            let f = try H5File.open(dir.file(String(format: "np3/ckpt/round_003/client_%02d.h5", k)))
            defer { f.close() }
            #expect(try f.read(Float.self, at: "state/lm/layers/0/attn/q/lora_a").shape == [64, r], "client \(k)")
            #expect(try f.read(Float.self, at: "state/lm/layers/0/mlp/down/lora_b").shape == [r, 64], "client \(k)")
        }
        let round = try H5File.open(dir.file("np3/ckpt/round_003.h5"))
        defer { round.close() }
        #expect(try round.attribute("lora_ranks") == .ints([2, 4, 8, 2, 4, 8, 2, 4, 8]))
        // `pilot eval` builds a client's model at its own rank from the run's config
        let ev = try TrainCLITests.evalAgainstMetrics(run: dir.file("np3"), client: 2, round: 3)
        #expect(ev.status == 0 && ev.printed == ev.stored, "printed \(String(describing: ev.printed)), stored \(ev.stored): \(ev.stderr)")
    }

    @Test("lora_ranks giving every client rank 2 is bit for bit the run with lora_rank = 2")
    func uniformEqualsOneRank() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let list = try TrainCLITests.writeConfig(dir, "list.toml", TrainCLITests.config("[model]\nlora_ranks = [2, 2, 2, 2, 2, 2, 2, 2, 2]\n"))
        let one = try TrainCLITests.writeConfig(dir, "one.toml", TrainCLITests.config("[model]\nlora_rank = 2\n"))
        let a = try TrainCLITests.train(["--config", list, "--out", dir.file("list")], np: 3)
        try #require(a.status == 0, "\(a.stderr)")
        let b = try TrainCLITests.train(["--config", one, "--out", dir.file("one")], np: 3)
        try #require(b.status == 0, "\(b.stderr)")
        let d = try PlacementCLITests.sameBits(dir.file("list"), dir.file("one"))
        #expect(d.isEmpty, "differ: \(d.prefix(5))")
    }

    @Test("a resume that changes a client's rank is refused, naming the client and both ranks: with --config before MPI, and from the checkpoint's record when config.toml was edited")
    func resumeRefusesRankChange() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config(Self.mixed, rounds: 2))
        let stopped = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"], np: 3)
        try #require(stopped.status == 75, "\(stopped.stderr)")
        let changed = Self.mixed.replacingOccurrences(of: "[2, 4, 8, 2, 4, 8,", with: "[2, 4, 8, 2, 8, 8,")
        let other = try TrainCLITests.writeConfig(dir, "b.toml", TrainCLITests.config(changed, rounds: 2))
        let r = try TrainCLITests.train(["--resume", dir.file("run"), "--config", other], np: 3)
        #expect(r.status != 0)
        #expect(r.stderr.contains("client 4's LoRA rank was 4") && r.stderr.contains("would be 8"), "\(r.stderr)")
        // config.toml edited in the run directory: the round file's record refuses it
        let saved = dir.file("run/config.toml")
        let text = try String(contentsOfFile: saved, encoding: .utf8)
        try text.replacingOccurrences(of: "[2, 4, 8, 2, 4, 8,", with: "[2, 4, 8, 2, 8, 8,").write(toFile: saved, atomically: true, encoding: .utf8)
        let e = try TrainCLITests.train(["--resume", dir.file("run")], np: 3)
        #expect(e.status != 0)
        #expect(e.stderr.contains("client 4's LoRA rank was 4 (model.lora_ranks, as the checkpoints record) and would be 8"), "\(e.stderr)")
        #expect(e.stderr.components(separatedBy: "client 4's LoRA rank").count == 2, "printed once: \(e.stderr)")
        // with its own ranks the run resumes
        try text.write(toFile: saved, atomically: true, encoding: .utf8)
        let ok = try TrainCLITests.train(["--resume", dir.file("run")], np: 3)
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test("a rank list that does not cover the clients, and a rank above the LM's width, are refused before training, naming the key")
    func badRanks() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let short = try TrainCLITests.writeConfig(dir, "s.toml", TrainCLITests.config("[model]\nlora_ranks = [2, 4, 8]\n"))
        let s = try TrainCLITests.train(["--config", short, "--out", dir.file("s")], np: 3)
        #expect(s.status != 0 && s.stderr.contains("model.lora_ranks has 3 rank(s)") && s.stderr.contains("9 clients"), "\(s.stderr)")
        let wide = try TrainCLITests.writeConfig(dir, "w.toml", TrainCLITests.config("[model]\nlora_ranks = [2, 4, 8, 2, 4, 8, 2, 4, 80]\n"))
        let w = try TrainCLITests.train(["--config", wide, "--out", dir.file("w")], np: 3)
        #expect(w.status != 0 && w.stderr.contains("model.lora_ranks (client 8) = 80") && w.stderr.contains("64"), "\(w.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("w/ckpt")))
    }
}
