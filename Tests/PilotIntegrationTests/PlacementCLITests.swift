import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// Many clients per rank and client sampling under mpirun (#17): the results do not depend on the
/// world size, a sampled run resumes bitwise (even on another world size), and bad placements are
/// refused with the rank and client named.
@Suite("placement and sampling under mpirun", .serialized)
struct PlacementCLITests {
    /// The deterministic metrics (no seconds) of a run, by field.
    static func metrics(_ run: String) throws -> [String: [UInt64]] {
        let f = try H5File.open(run + "/metrics.h5")
        defer { f.close() }
        var out: [String: [UInt64]] = [:]
        for field in ["loss_total", "loss_ce", "steps", "eval_score", "bytes_sent", "bytes_received", "participated"] {
            out[field] = try f.read(Double.self, at: "clients/" + field).values.map(\.bitPattern)
        }
        return out
    }

    /// Trains `cfg` on -np 10 into dir/np10 and on -np 3 into dir/np3 (each must exit 0); returns the
    /// -np 3 run's result and the final round's datasets that differ between the two (`sameBits`).
    static func trainWideAndNarrow(_ cfg: String, in dir: TemporaryDirectory) throws -> (narrow: ProcessResult, differ: [String]) {
        let wide = try TrainCLITests.train(["--config", cfg, "--out", dir.file("np10")], np: 10)
        try #require(wide.status == 0, "\(wide.stderr)")
        let narrow = try TrainCLITests.train(["--config", cfg, "--out", dir.file("np3")], np: 3)
        try #require(narrow.status == 0, "\(narrow.stderr)")
        return (narrow, try sameBits(dir.file("np10"), dir.file("np3")))
    }

    static func sameBits(_ a: String, _ b: String, round: Int = 3) throws -> [String] {
        let x = try TrainCLITests.finalRoundDatasets(a, round: round), y = try TrainCLITests.finalRoundDatasets(b, round: round)
        var diff = x.keys.filter { x[$0]!.map(\.bitPattern) != y[$0]?.map(\.bitPattern) }.sorted()
        if x.keys.sorted() != y.keys.sorted() { diff.append("dataset sets differ") }
        let (ma, mb) = (try metrics(a), try metrics(b))
        diff += ma.keys.filter { ma[$0] != mb[$0] }.map { "metrics.h5 clients/\($0)" }
        return diff
    }

    @Test("9 clients on -np 10, -np 3 and clients_per_rank = 3 on -np 4 give bit-identical checkpoints and metrics", arguments: ["pilot", "fedadam"])
    func placementIndependent(algorithm: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try TrainCLITests.writeConfig(dir, "a.toml", TrainCLITests.config(algorithm: algorithm))
        let fixed = try TrainCLITests.writeConfig(dir, "b.toml", TrainCLITests.config(algorithm: algorithm)
            .replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nclients_per_rank = 3"))
        let wide = try TrainCLITests.train(["--config", cfg, "--out", dir.file("np10")], np: 10)
        try #require(wide.status == 0, "\(wide.stderr)")
        let narrow = try TrainCLITests.train(["--config", cfg, "--out", dir.file("np3")], np: 3)
        try #require(narrow.status == 0, "\(narrow.stderr)")
        #expect(narrow.stdout.contains("with 9 clients on 2 client rank(s)"), "\(narrow.stdout)")
        let d3 = try Self.sameBits(dir.file("np10"), dir.file("np3"))
        #expect(d3.isEmpty, "differ: \(d3.prefix(5))")
        let blocks = try TrainCLITests.train(["--config", fixed, "--out", dir.file("np4")], np: 4)
        try #require(blocks.status == 0, "\(blocks.stderr)")
        let d4 = try Self.sameBits(dir.file("np10"), dir.file("np4"))
        #expect(d4.isEmpty, "differ: \(d4.prefix(5))")
    }

    @Test("a sampled run (fraction 0.5): 4 of 9 clients per round, recorded; stopped on -np 3 and resumed on -np 4, bit-identical to an uninterrupted -np 10 run")
    func sampledResume() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let text = TrainCLITests.config().replacingOccurrences(of: "rounds = 3", with: "rounds = 3\nfraction = 0.5")
        let cfg = try TrainCLITests.writeConfig(dir, "s.toml", text)
        let full = try TrainCLITests.train(["--config", cfg, "--out", dir.file("full")], np: 10)
        try #require(full.status == 0, "\(full.stderr)")
        #expect(full.stdout.contains("| 4/9 clients |"), "\(full.stdout)")
        let f = try H5File.open(dir.file("full/metrics.h5"))
        let took = try f.read(Double.self, at: "clients/participated").values
        let loss = try f.read(Double.self, at: "clients/loss_total").values
        f.close()
        for r in 0..<3 {
            let row = Array(took[(r * 9)..<(r * 9 + 9)])
            #expect(row.filter { $0 == 1 }.count == 4 && row.filter { $0 == 0 }.count == 5, "round \(r + 1): \(row)")
            for k in 0..<9 { #expect(loss[r * 9 + k].isNaN == (row[k] == 0), "round \(r + 1) client \(k)") }
        }
        #expect(took[0..<9] != took[9..<18], "rounds 1 and 2 draw the same sample")
        let cut = try TrainCLITests.train(["--config", cfg, "--out", dir.file("cut"), "--stop-after-round", "1"], np: 3)
        #expect(cut.status == 75, "\(cut.stderr)")
        let resumed = try TrainCLITests.train(["--resume", dir.file("cut")], np: 4)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let d = try Self.sameBits(dir.file("full"), dir.file("cut"))
        #expect(d.isEmpty, "differ: \(d.prefix(5))")
    }

    @Test("a client shard missing on its own rank: that rank names itself, the client and the file, and every rank exits within seconds")
    func missingOwnShard() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        // a copy of the scenario without client 7's shard
        let data = dir.file("data")
        let cp = try runProcess("/bin/cp", ["-r", TrainCLITests.fixture.file("data"), data])
        try #require(cp.status == 0)
        try FileManager.default.removeItem(atPath: data + "/clients/client-07.h5")
        let text = TrainCLITests.config().replacingOccurrences(of: "\"\(TrainCLITests.fixture.file("data"))\"", with: "\"\(data)\"")
        let cfg = try TrainCLITests.writeConfig(dir, "m.toml", text)
        let r = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 4)
        #expect(r.status != 0)
        #expect(r.seconds < 30)
        #expect(r.stderr.contains("rank 3 (clients 6–8)") && r.stderr.contains("client 7") && r.stderr.contains("client-07.h5"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/ckpt")))
    }
}
