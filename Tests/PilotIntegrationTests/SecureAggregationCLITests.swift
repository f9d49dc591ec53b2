import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `secure.aggregation` under mpirun: a masked run gives, bit for bit, the checkpoints and metrics of
/// the same run with the plain fixed-point averaging (`secure.fixed_point`, no masks) — the masks
/// cancel exactly — on any placement; and what needs individual updates is refused before training.
@Suite("secure aggregation under mpirun", .serialized)
struct SecureAggregationCLITests {
    @Test("secure and plain fixed-point runs give bit-identical checkpoints and metrics (-np 10 and -np 3), unlike the float average", arguments: ["fedavg", "fedadam"])
    func secureEqualsFixedPoint(algorithm: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let secure = try TrainCLITests.writeConfig(dir, "s.toml", TrainCLITests.config("[secure]\naggregation = true\n", algorithm: algorithm))
        let plain = try TrainCLITests.writeConfig(dir, "p.toml", TrainCLITests.config("[secure]\nfixed_point = true\n", algorithm: algorithm))
        let float = try TrainCLITests.writeConfig(dir, "f.toml", TrainCLITests.config(algorithm: algorithm))
        let s = try TrainCLITests.train(["--config", secure, "--out", dir.file("secure")], np: 10)
        try #require(s.status == 0, "\(s.stderr)")
        #expect((s.stdout + s.stderr).contains("secure aggregation: on"), "\(s.stdout)")
        let n = try TrainCLITests.train(["--config", secure, "--out", dir.file("narrow")], np: 3)
        try #require(n.status == 0, "\(n.stderr)")
        let p = try TrainCLITests.train(["--config", plain, "--out", dir.file("plain")], np: 3)
        try #require(p.status == 0, "\(p.stderr)")
        let f = try TrainCLITests.train(["--config", float, "--out", dir.file("float")], np: 3)
        try #require(f.status == 0, "\(f.stderr)")
        #expect(try PlacementCLITests.sameBits(dir.file("secure"), dir.file("plain")).isEmpty)
        #expect(try PlacementCLITests.sameBits(dir.file("narrow"), dir.file("plain")).isEmpty)
        #expect(!(try PlacementCLITests.sameBits(dir.file("float"), dir.file("plain")).isEmpty), "fixed point rounds: it differs from the float average")
    }

    @Test("a secure fedadam run stopped after round 1 and resumed (on another world size) equals the uninterrupted run bit for bit")
    func resume() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "s.toml", TrainCLITests.config("[secure]\naggregation = true\n", algorithm: "fedadam"))
        let whole = try TrainCLITests.train(["--config", cfg, "--out", dir.file("whole")], np: 4)
        try #require(whole.status == 0, "\(whole.stderr)")
        let stopped = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run"), "--stop-after-round", "1"], np: 4)
        try #require(stopped.status == 75, "\(stopped.stderr)")
        let resumed = try TrainCLITests.train(["--resume", dir.file("run")], np: 3)
        try #require(resumed.status == 0, "\(resumed.stderr)")
        #expect(try PlacementCLITests.sameBits(dir.file("whole"), dir.file("run")).isEmpty)
    }

    @Test("pilot with secure.lora_in_clear: Eq. 10 masked equals the plain fixed-point run bit for bit")
    func pilot() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let secure = try TrainCLITests.writeConfig(dir, "s.toml", TrainCLITests.config("[secure]\naggregation = true\nlora_in_clear = true\n"))
        let plain = try TrainCLITests.writeConfig(dir, "p.toml", TrainCLITests.config("[secure]\nfixed_point = true\n"))
        let s = try TrainCLITests.train(["--config", secure, "--out", dir.file("secure")], np: 4)
        try #require(s.status == 0, "\(s.stderr)")
        let p = try TrainCLITests.train(["--config", plain, "--out", dir.file("plain")], np: 4)
        try #require(p.status == 0, "\(p.stderr)")
        #expect(try PlacementCLITests.sameBits(dir.file("secure"), dir.file("plain")).isEmpty)
    }

    @Test("secure aggregation with a rule that needs individual updates, or pilot without secure.lora_in_clear, is refused before training, naming the key")
    func refused() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        for (extra, algorithm, expected) in [("[robust]\naggregator = \"krum\"\n", "fedavg", "robust.aggregator = krum"),
                                             ("[robust]\nmax_update_norm = 1.0\n", "fedavg", "robust.max_update_norm"),
                                             ("", "pilot", "secure.lora_in_clear")] {
            let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config("[secure]\naggregation = true\n" + extra, algorithm: algorithm))
            let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 3)
            #expect(r.status != 0 && r.stderr.contains(expected), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("run/ckpt")))
        }
    }
}
