import Foundation
import PilotCore
import PilotHDF5
import PilotTestSupport
import Testing

@Suite("HDF5 files outside pilot", .serialized)
struct HDF5InteropTests {
    @Test("h5py reads what the store wrote: values, shapes, dtypes, str attributes, checksums")
    func h5pyReadsStoreFiles() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("ckpt.h5")
        let f = try H5File.create(path)
        try f.write((0..<12).map { Float($0) / 4 }, shape: [3, 4], at: "clients/1/lm/layers/0/attn/q/lora_a")
        try f.write([1.5, -2.25], shape: [2], at: "server/fedadam/m")
        try f.write([Int64(7), 8, 9], shape: [3, 1], at: "round_ids")
        try f.write([UInt8](0..<24), shape: [2, 2, 2, 3], at: "images")
        try f.write(strings: ["<image>\nWhat colour?", "ünïcødé"], at: "conversations")
        try f.setAttribute("config", .string("algorithm = \"pilot\" # ✓"))
        try f.setAttribute("stage", .int(2))
        try f.setAttribute("tasks", .strings(["vqa", "caption"]))
        try f.commit()

        let script = """
        import sys, hashlib, h5py, numpy as np
        f = h5py.File(sys.argv[1], 'r')
        a = f['clients/1/lm/layers/0/attn/q/lora_a']
        assert a.dtype == np.float32 and a.shape == (3, 4), (a.dtype, a.shape)
        assert np.array_equal(a[()], np.arange(12, dtype=np.float32).reshape(3, 4) / 4)
        assert f['server/fedadam/m'].dtype == np.float64 and list(f['server/fedadam/m'][()]) == [1.5, -2.25]
        assert f['round_ids'].dtype == np.int64 and f['round_ids'].shape == (3, 1)
        assert f['images'].dtype == np.uint8 and f['images'].shape == (2, 2, 2, 3) and f['images'][1, 1, 1, 2] == 23
        conv = [s.decode() if isinstance(s, bytes) else s for s in f['conversations'][()]]
        assert conv == ['<image>\\nWhat colour?', 'ünïcødé'], conv
        assert isinstance(f.attrs['config'], str) and f.attrs['config'] == 'algorithm = "pilot" # ✓'
        assert int(f.attrs['stage']) == 2
        assert [str(t) for t in f.attrs['tasks']] == ['vqa', 'caption']
        for name in ['clients/1/lm/layers/0/attn/q/lora_a', 'server/fedadam/m', 'round_ids', 'images']:
            d = f[name]
            assert isinstance(d.attrs['sha256'], str)
            assert hashlib.sha256(d[()].tobytes()).hexdigest() == d.attrs['sha256'], name
        print('ok')
        """
        let r = try runProcess("/usr/bin/python3", ["-c", script, path])
        #expect(r.status == 0 && r.stdout.contains("ok"), "h5py check failed: \(r.stderr)")
        let dump = try runProcess("/usr/bin/h5dump", ["-H", path])
        #expect(dump.status == 0 && dump.stdout.contains("lora_a"), "h5dump: \(dump.stderr)")
    }

    @Test("a writer killed between the temp write and the rename leaves the previous file intact")
    func killedWriterKeepsPreviousFile() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("round_001.h5")
        let first = try runProcess(pilotBinary, ["debug", "h5-write", "--out", path, "--value", "1"])
        try #require(first.status == 0, "first write failed: \(first.stderr)")

        let killed = try runProcess(pilotBinary, ["debug", "h5-write", "--out", path, "--value", "2"],
                                    environment: ["PILOT_TEST_CRASH_BEFORE_RENAME": "1"])
        #expect(killed.status == -9, "the writer was expected to die by SIGKILL, status \(killed.status)")
        // The temp file was fully written and fsynced but never renamed.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "round_001.h5" }
        #expect(leftovers.count == 1 && leftovers[0].hasPrefix(".round_001.h5.tmp-"), "\(leftovers)")

        let previous = try H5File.open(path)
        #expect(try previous.read(Float.self, at: "clients/1/lora_a").values == [Float](repeating: 1, count: 1024))
        #expect(try previous.attribute("value") == .double(1))

        let again = try runProcess(pilotBinary, ["debug", "h5-write", "--out", path, "--value", "2"])
        #expect(again.status == 0)
        #expect(try H5File.open(path).read(Float.self, at: "clients/1/lora_a").values == [Float](repeating: 2, count: 1024))
    }
}
