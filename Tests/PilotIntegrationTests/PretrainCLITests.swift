import Foundation
import PilotHDF5
import PilotTestSupport
import Testing

/// `pilot pretrain` under mpirun and `pilot inspect`, on the tiny generated scenario with the micro
/// model, so that each test takes a few seconds.
@Suite("pilot pretrain and pilot inspect", .serialized)
struct PretrainCLITests {
    static func generateTiny(_ dir: TemporaryDirectory) throws -> String {
        let data = dir.file("vu")
        let g = try runProcess(pilotBinary, ["data", "generate", "--scenario", "vu", "--size", "tiny", "--out", data])
        try #require(g.status == 0, "data generate failed: \(g.stderr)")
        return data
    }

    static func pretrain(np: Int?, data: String, out: String) throws -> ProcessResult {
        let args = ["pretrain", "--data", data, "--out", out, "--steps", "3", "--batch", "6", "--warmup", "1",
                    "--eval-every", "2", "--model-size", "micro", "--seed", "5"]
        if let np { return try runProcess(mpirunPath, mpirunArguments(np: np) + [pilotBinary] + args, timeout: 120) }
        return try runProcess(pilotBinary, args, environment: ["OPENBLAS_NUM_THREADS": "1"], timeout: 120)
    }

    /// A full disk (a 32 KiB tmpfs; needs root to mount, skipped otherwise): one line that says what the
    /// operating system said and what to do, exit 1, no temporary file left, and no crash in libhdf5's exit
    /// handler (it used to dereference a bad pointer in H5F__close_cb after the failed write).
    @Test("a full disk: one clear line, exit 1, nothing left behind, no crash (#18 item 11)")
    func fullDisk() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = try Self.generateTiny(dir)
        let mnt = dir.file("full")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let mount = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=32k", "tmpfs", mnt])
        guard mount.status == 0 else { print("full-disk test skipped: cannot mount a tmpfs (\(mount.stderr))"); return }
        defer { _ = try? runProcess("/bin/umount", [mnt]) }
        let r = try Self.pretrain(np: nil, data: data, out: mnt + "/base.h5")
        print("pretrain onto a full disk: exit \(r.status): \(r.stderr)")
        #expect(r.status == 1)
        #expect(r.stderr.contains("No space left on device (errno 28)") && r.stderr.contains("the disk (or quota) is full"), "\(r.stderr)")
        #expect(!r.stderr.contains("crashed") && !r.stderr.contains("Signal"), "\(r.stderr)")
        #expect(r.stderr.count < 700, "one short line, not HDF5's stack: \(r.stderr.count) characters")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mnt).isEmpty, "a temporary file was left")
    }

    @Test("mpirun -np 2 pilot pretrain: bitwise-identical checkpoints from the same seed; h5py and inspect read them")
    func pretrainTwoRanks() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = try Self.generateTiny(dir)
        let a = try Self.pretrain(np: 2, data: data, out: dir.file("a.h5"))
        try #require(a.status == 0, "stdout: \(a.stdout)\nstderr: \(a.stderr)")
        #expect(a.stdout.contains("2 rank(s)") && a.stdout.contains("step     2/3") && a.stdout.contains("step     3/3"), "\(a.stdout)")
        #expect(a.stdout.components(separatedBy: "wrote ").count == 2, "only rank 0 writes:\n\(a.stdout)")
        let b = try Self.pretrain(np: 2, data: data, out: dir.file("b.h5"))
        try #require(b.status == 0, "stderr: \(b.stderr)")
        let bytesA = FileManager.default.contents(atPath: dir.file("a.h5")), bytesB = FileManager.default.contents(atPath: dir.file("b.h5"))
        #expect(bytesA != nil && bytesA == bytesB, "same seed and world size must give the same file bytes")

        let script = """
        import sys, json, hashlib, h5py, numpy as np
        f = h5py.File(sys.argv[1], 'r')
        a = f.attrs
        assert a['format'] == 'pilot-base' and int(a['format_version']) == 1, dict(a)
        assert int(a['world_size']) == 2 and int(a['steps']) == 3 and int(a['batch_size']) == 6 and int(a['seed']) == 5
        assert a['scenario'] == 'vu' and a['connector_variant'] == 'mlp'
        cfg = json.loads(a['model_config']); assert cfg['width'] == 64 and cfg['vocab_size'] == 512, cfg
        assert json.loads(a['pretraining'])['steps'] == 3
        assert np.isfinite(float(a['final_loss']))
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in ['vision/patch_embed/weight', 'connector/mlp/fc1/weight', 'lm/lm_head/weight', 'lm/embed', 'tokenizer/tokens']:
            assert n in names, n
        assert not any('lora' in n for n in names), 'a base has no LoRA'
        assert f['lm/embed'].shape == (512, 64) and f['lm/embed'].dtype == np.float32
        toks = [t.decode() if isinstance(t, bytes) else t for t in f['tokenizer/tokens'][()]]
        assert toks[:6] == ['<pad>', '<unk>', '<bos>', '<eos>', '<sep>', '<image>'], toks[:6]
        assert f['pretraining/loss'].shape == (3,)
        for n in names:
            d = f[n]
            data = d[()]
            raw = b''.join(s.encode() + b'\\0' if isinstance(s, str) else s + b'\\0' for s in data) if d.dtype.kind == 'O' else data.tobytes()
            assert hashlib.sha256(raw).hexdigest() == d.attrs['sha256'], n
        print('ok', len(names))
        """
        let py = try runProcess("/usr/bin/python3", ["-c", script, dir.file("a.h5")])
        #expect(py.status == 0 && py.stdout.hasPrefix("ok"), "h5py: \(py.stdout) \(py.stderr)")

        let ins = try runProcess(pilotBinary, ["inspect", dir.file("a.h5"), "--values", "2"])
        #expect(ins.status == 0, "\(ins.stderr)")
        #expect(ins.stdout.contains("0 MISMATCH") && ins.stdout.contains("format = \"pilot-base\""), "\(ins.stdout)")
        #expect(ins.stdout.contains("lm_head/") && ins.stdout.contains("weight  float32 [64, 512]  norm "), "\(ins.stdout)")
        #expect(ins.stdout.contains("tokens  string [") && ins.stdout.contains("\"<pad>\", \"<unk>\""), "\(ins.stdout)")
        #expect(!ins.stdout.contains("sha256 none"), "\(ins.stdout)")
    }

    @Test("--blas-core pins pretraining's kernel and the base records it; a run on another kernel is warned about (#34 item 5)")
    func blasPin() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = try Self.generateTiny(dir)
        let args = ["pretrain", "--data", data, "--out", dir.file("base.h5"), "--steps", "2", "--batch", "6", "--warmup", "1",
                    "--model-size", "micro", "--eval-test", "0", "--blas-core", "haswell"]
        let r = try runProcess(pilotBinary, args, environment: ["OPENBLAS_NUM_THREADS": "1"], timeout: 120)
        try #require(r.status == 0, "\(r.stderr)")
        let base = try H5File.open(dir.file("base.h5"))
        let made = try base.attribute("blas_core")?.stringValue
        base.close()
        #expect(made?.lowercased() == "haswell", "\(String(describing: made))")
        let bad = try runProcess(pilotBinary, ["pretrain", "--data", data, "--out", dir.file("x.h5"), "--blas-core", "pentium"])
        #expect(bad.status != 0 && bad.stderr.contains("--blas-core pentium: choose one of haswell"), "\(bad.stderr)")
        // a 1-round run without a pin: warned exactly when this machine's own kernel is not the base's
        let cfg = dir.file("c.toml")
        try TrainCLITests.config(rounds: 1).replacingOccurrences(of: TrainCLITests.fixture.file("base.h5"), with: dir.file("base.h5"))
            .replacingOccurrences(of: TrainCLITests.fixture.file("data"), with: data).write(toFile: cfg, atomically: true, encoding: .utf8)
        let run = try TrainCLITests.train(["--config", cfg, "--out", dir.file("run")], np: 2)
        try #require(run.status == 0, "\(run.stderr)")
        let round = try H5File.open(dir.file("run/ckpt/round_001.h5"))
        let ran = try round.attribute("blas_core")?.stringValue
        round.close()
        #expect(run.stdout.contains("was made with OpenBLAS's") == (ran != made), "ran \(String(describing: ran)), base \(String(describing: made)): \(run.stdout)")
    }

    @Test("one rank without mpirun writes a world_size 1 checkpoint")
    func pretrainSingleton() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = try Self.generateTiny(dir)
        let r = try Self.pretrain(np: nil, data: data, out: dir.file("one.h5"))
        try #require(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("1 rank(s)"))
        let ins = try runProcess(pilotBinary, ["inspect", dir.file("one.h5")])
        #expect(ins.status == 0 && ins.stdout.contains("world_size = 1"), "\(ins.stdout)")
    }

    @Test("inspect: a flipped byte in a dataset shows MISMATCH and exits non-zero; files without checksums open")
    func inspectCorruption() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let data = try Self.generateTiny(dir)
        let path = dir.file("t.h5")
        // Any pilot file works: the tokenizer file of the generated scenario, plus a base from pretraining.
        let r = try Self.pretrain(np: nil, data: data, out: path)
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let flip = """
        import sys, h5py
        with h5py.File(sys.argv[1], 'r') as f:
            off = f['lm/lm_head/weight'].id.get_offset()
        with open(sys.argv[1], 'r+b') as fh:
            fh.seek(off + 100); b = fh.read(1); fh.seek(off + 100); fh.write(bytes([b[0] ^ 0x40]))
        with h5py.File(sys.argv[2], 'w') as g:
            g['x/y'] = [1.0, 2.0, 2.0]; g.attrs['note'] = 'from h5py ' * 40
        print('flipped')
        """
        let foreign = dir.file("foreign.h5")
        let py = try runProcess("/usr/bin/python3", ["-c", flip, path, foreign])
        try #require(py.status == 0, "\(py.stderr)")

        let bad = try runProcess(pilotBinary, ["inspect", path])
        #expect(bad.status != 0)
        #expect(bad.stdout.contains("sha256 MISMATCH") && bad.stdout.contains("1 MISMATCH"), "\(bad.stdout)")
        let line = bad.stdout.split(separator: "\n").first { $0.contains("MISMATCH") && $0.contains("float32") }
        #expect(line?.contains("weight") == true, "\(bad.stdout)")
        let verify = try runProcess(pilotBinary, ["inspect", "--verify", path])
        #expect(verify.status != 0 && verify.stdout.contains("/lm/lm_head/weight  sha256 MISMATCH"), "\(verify.stdout)")

        let other = try runProcess(pilotBinary, ["inspect", foreign])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.contains("y  float64 [3]  norm 3  sha256 none"), "\(other.stdout)")
        #expect(other.stdout.contains("note = \"from h5py") && other.stdout.contains("… (400 chars)"), "\(other.stdout)")
    }
}
