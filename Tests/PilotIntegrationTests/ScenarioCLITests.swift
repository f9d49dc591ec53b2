import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `pilot data scenario` end to end, as a new user would run it: LLaVA JSON with JPEG and PNG images
/// (Tests/Fixtures/data/make_llava_fixture.py, written with Pillow), three custom-named tasks with their own
/// metrics and a Dirichlet split; then `pilot pretrain`, `pilot train` (pilot and fedavg, micro model,
/// 2 rounds) under mpirun, and `pilot report`.
@Suite("pilot data scenario → pretrain → train → report", .serialized)
struct ScenarioCLITests {
    static let fixture: TemporaryDirectory = {
        let dir = TemporaryDirectory("scenario-cli")
        let r = try! runProcess("/usr/bin/python3", [repositoryRoot + "/Tests/Fixtures/data/make_llava_fixture.py", dir.file("llava")])
        precondition(r.status == 0, "make_llava_fixture.py failed (needs Pillow: scripts/bootstrap.sh installs python3-pil): \(r.stderr)")
        return dir
    }()

    static func scenario(_ out: String, _ extra: [String] = []) throws -> ProcessResult {
        let d = fixture.file("llava")
        return try runProcess(pilotBinary, ["data", "scenario", "--task", "colors=\(d)/colors.json:vqa_accuracy",
                                            "--task", "docs=\(d)/docs.json:anls", "--task", "shapes=\(d)/shapes.json",
                                            "--images", "\(d)/images", "--out", out, "--split", "dirichlet", "--alpha", "1",
                                            "--clients-per-task", "2", "--seed", "1"] + extra)
    }

    @Test func buildPretrainTrainAndReport() throws {
        let dir = Self.fixture
        let s = try Self.scenario(dir.file("data"))
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout.contains("nothing maps to <unk>") && s.stdout.contains("client 5 shapes-1") && s.stdout.contains("6 clients"), "\(s.stdout)")
        let manifest = try String(contentsOfFile: dir.file("data/scenario.json"), encoding: .utf8)
        #expect(manifest.contains(#""metric": "vqa_accuracy""#) && manifest.contains(#""metric": "anls""#) && manifest.contains(#""split": "dirichlet""#))
        // The same inputs and seed give the same files.
        let again = try Self.scenario(dir.file("data2"))
        #expect(again.status == 0)
        for f in ["scenario.json", "tokenizer.h5", "pretrain.h5", "clients/client-03.h5", "test/docs.h5"] {
            #expect(FileManager.default.contents(atPath: dir.file("data/" + f)) == FileManager.default.contents(atPath: dir.file("data2/" + f)), "\(f) differs")
        }
        // Multi-turn shapes records keep their second exchange in the shard.
        let shard = try H5File.open(dir.file("data/test/shapes.h5"))
        #expect(shard.exists("/turns"))
        shard.close()

        let pre = try runProcess(pilotBinary, ["pretrain", "--data", dir.file("data"), "--out", dir.file("data/base.h5"),
                                               "--model-size", "micro", "--steps", "4", "--batch", "8", "--eval-test", "4"])
        #expect(pre.status == 0, "\(pre.stderr)")
        #expect(pre.stdout.contains("test/colors (4 examples): vqa_accuracy") && pre.stdout.contains("anls"), "\(pre.stdout)")
        var runs: [String] = []
        for algorithm in ["pilot", "fedavg"] {
            let config = """
            [run]
            algorithm = "\(algorithm)"
            seed = 5
            rounds = 2
            data = "\(dir.file("data"))"
            base = "\(dir.file("data/base.h5"))"

            [train]
            batch_size = 8
            max_steps = 2
            lr = 1e-3
            lr_stage1 = 1e-3
            lr_stage2 = 2e-3

            [eval]
            max_examples = 6
            max_new_tokens = 6
            """
            try config.write(toFile: dir.file("\(algorithm).toml"), atomically: true, encoding: .utf8)
            let run = dir.file("runs/\(algorithm)")
            let t = try runProcess(mpirunPath, mpirunArguments(np: 7) + [pilotBinary, "train", "--config", dir.file("\(algorithm).toml"), "--out", run], timeout: 300)
            #expect(t.status == 0, "\(algorithm): \(t.stderr)\n\(t.stdout)")
            #expect(t.stdout.contains("| 5 | shapes |"), "\(t.stdout)")
            runs.append(run)
        }
        let report = try runProcess(pilotBinary, ["report"] + runs)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.contains("scenario custom") && report.stdout.contains("colors c0") && report.stdout.contains("| fedavg |"), "\(report.stdout)")
    }

    @Test func refusalsNameTheProblemAndLeaveNoOutput() throws {
        let dir = Self.fixture
        let empty = dir.file("empty.json")
        try "[]".write(toFile: empty, atomically: true, encoding: .utf8)
        let r = try Self.scenario(dir.file("bad"), ["--task", "nothing=\(empty)"])
        #expect(r.status != 0 && r.stderr.contains("task 'nothing' has no valid record"), "\(r.stderr)")
        let few = try Self.scenario(dir.file("bad"), ["--clients-per-task", "50"])
        #expect(few.status != 0 && few.stderr.contains("fewer than its 50 clients"), "\(few.stderr)")
        let metric = try runProcess(pilotBinary, ["data", "scenario", "--task", "x=\(empty):bleu", "--images", dir.path, "--out", dir.file("bad")])
        #expect(metric.status != 0 && metric.stderr.contains("unknown metric 'bleu'"), "\(metric.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("bad")))
        let parent = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!parent.contains { $0.hasPrefix("bad.tmp") }, "\(parent)")
    }
}
