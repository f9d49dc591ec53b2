import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `exchange.compress*` under mpirun (docs/compression.md): a compressed run is bitwise the same on
/// any placement, a resume continues it bitwise (the top-k residuals and references are in the
/// checkpoints), metrics.h5 records the coded bytes beside the Float32 sizes, and compression with
/// DP clipping is refused before training.
@Suite("compressed updates under mpirun", .serialized)
struct CompressionCLITests {
    static let topk = "[exchange]\ncompress = \"topk\"\ntopk_fraction = 0.1\ncompress_down = \"int8\"\n"

    @Test("top-k up and int8 down: -np 10 and -np 3 give bit-identical checkpoints and metrics; the wire bytes are the coded ones", arguments: ["pilot", "fedavg"])
    func placementIndependent(algorithm: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config(Self.topk, algorithm: algorithm))
        let (narrow, d) = try PlacementCLITests.trainWideAndNarrow(cfg, in: dir)
        #expect(d.isEmpty, "differ: \(d.prefix(5))")
        #expect(narrow.stdout.contains("MB uncompressed"), "\(narrow.stdout)")
        let f = try H5File.open(dir.file("np3/metrics.h5"))
        defer { f.close() }
        let sent = try f.read(Double.self, at: "clients/bytes_sent").values, raw = try f.read(Double.self, at: "clients/bytes_sent_uncompressed").values
        let got = try f.read(Double.self, at: "clients/bytes_received").values, rawGot = try f.read(Double.self, at: "clients/bytes_received_uncompressed").values
        // round 1 has no reference: top-k sends it dense (one mode byte more); later rounds k = ⌈n/10⌉ pairs
        for k in 0..<9 {
            let n = raw[18 + k] / 4
            #expect(sent[k] == raw[k] + 1, "round 1, client \(k): \(sent[k]) of \(raw[k])")
            let later = sent[18 + k], keep = (n / 10).rounded(.up)
            #expect(later == 1 + 4 + 8 * keep, "round 3, client \(k): \(later) bytes for \(n) values")
            #expect(got[18 + k] < rawGot[18 + k] / 3, "int8 down: \(got[18 + k]) of \(rawGot[18 + k])")
        }
    }

    @Test("stop after round 2, resume on another placement: the final checkpoint equals an uninterrupted run's bit for bit")
    func resumeIsBitwise() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config(Self.topk, algorithm: "fedavg"))
        let full = try TrainCLITests.train(["--config", cfg, "--out", dir.file("full")], np: 3)
        try #require(full.status == 0, "\(full.stderr)")
        let stopped = try TrainCLITests.train(["--config", cfg, "--out", dir.file("cut"), "--stop-after-round", "2"], np: 3)
        try #require(stopped.status == 75, "\(stopped.stderr)")
        let client = try H5File.open(dir.file("cut/ckpt/round_002/client_04.h5"))
        #expect(client.isGroup("state/exchange/residual") && client.isGroup("state/exchange/reference"))
        client.close()
        let resumed = try TrainCLITests.train(["--resume", dir.file("cut")], np: 4)
        try #require(resumed.status == 0, "\(resumed.stderr)")
        let d = try PlacementCLITests.sameBits(dir.file("full"), dir.file("cut"))
        #expect(d.isEmpty, "differ: \(d.prefix(5))")
    }

    @Test("compression with dp.clip is refused before training, saying why")
    func refusesDP() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config(Self.topk + "[dp]\nclip = 1.0\n", algorithm: "fedavg"))
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 3)
        #expect(r.status != 0 && r.stderr.contains("exchange.compress = topk with dp.clip"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/ckpt")))
    }
}
