import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PilotHDF5
import PilotTestSupport
import Testing

/// `pilot report` as a user runs it, on synthetic run directories: two seeds of fedavg and one of
/// local. The metrics files are written here with the HDF5 layout `pilot train` documents
/// (`round`, `clients/eval_score` [rounds, clients], root attributes), so the test also pins the
/// file contract the report reads.
@Suite("pilot report command")
struct ReportCLITests {
    static let tasks = ["vqa", "vqa", "caption", "caption", "grounding", "grounding"]

    /// Final-round scores of each run (rounds 1 and 2 are these scaled down, so the curves rise).
    static let fedavg1: [Double] = [0.40, 0.55, 0.912, 1.104, 0.25, 0.30]
    static let fedavg2: [Double] = [0.46, 0.51, 0.874, 1.210, 0.27, 0.36]
    static let local1: [Double] = [0.31, 0.38, 0.650, 0.702, 0.12, 0.21]

    static func writeRun(_ path: String, algorithm: String, seed: Int, final: [Double], tasks: [String] = tasks) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let rounds = [1, 2, 3]
        let scores = rounds.flatMap { r in final.map { $0 * Double(r + 1) / 4 } }   // the last row is `final`
        let f = try H5File.create(path + "/metrics.h5")
        try f.setAttribute("algorithm", .string(algorithm))
        try f.setAttribute("scenario", .string("vu"))
        try f.setAttribute("client_tasks", .strings(tasks))
        try f.setAttribute("config", .string("""
            # Effective configuration of this run
            [run]
            algorithm = "\(algorithm)"
            base = "/data/vu/base.h5"
            data = "/data/vu"
            rounds = 3
            seed = \(seed)

            [train]
            lr = 0.001
            """))
        try f.write(rounds.map(Int64.init), shape: [3], at: "round")
        try f.write([Int64](repeating: 1, count: 3), shape: [3], at: "stage")
        try f.write(scores, shape: [3, tasks.count], at: "clients/eval_score")
        try f.write([Double](repeating: 1, count: scores.count), shape: [3, tasks.count], at: "clients/loss_total")
        try f.commit()
    }

    static func sampleStd(_ x: [Double]) -> Double {
        let m = x.reduce(0, +) / Double(x.count)
        var s = 0.0
        for v in x { s += (v - m) * (v - m) }
        return (s / Double(x.count - 1)).squareRoot()
    }

    /// RFC 4180 rows (quoted fields may hold commas and doubled quotes).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if quoted {
                if c == "\"" {
                    let next = text.index(after: i)
                    if next < text.endIndex && text[next] == "\"" { field.append("\""); i = next } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == "," { row.append(field); field = "" }
            else if c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
            else { field.append(c) }
            i = text.index(after: i)
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    @Test("table, CSV and plots of two fedavg seeds and one local run")
    func report() throws {
        let dir = TemporaryDirectory("report-cli"); defer { dir.cleanup() }
        let f1 = dir.file("fedavg-s1"), f2 = dir.file("fedavg-s2"), l1 = dir.file("local-s1")
        try Self.writeRun(f1, algorithm: "fedavg", seed: 1, final: Self.fedavg1)
        try Self.writeRun(f2, algorithm: "fedavg", seed: 2, final: Self.fedavg2)
        try Self.writeRun(l1, algorithm: "local", seed: 1, final: Self.local1)
        let r = try runProcess(pilotBinary, ["report", f1, l1, f2, "--csv", dir.file("r.csv"),
                                             "--plot", dir.file("p.svg"), "--plot", dir.file("p.png")])
        #expect(r.status == 0, "stderr: \(r.stderr)")

        // Markdown: fedavg first (its first run came first), then local; cells ×100 with one decimal.
        func pair(_ k: Int) -> [Double] { [Self.fedavg1[k], Self.fedavg2[k]] }
        func cell(_ x: [Double]) -> String {
            let m = x.reduce(0, +) / Double(x.count) * 100
            return x.count == 1 ? String(format: "%.1f", m) : String(format: "%.1f ± %.1f", m, Self.sampleStd(x) * 100)
        }
        let taskMean = { (s: [Double], t: String) -> Double in
            let v = zip(Self.tasks, s).filter { $0.0 == t }.map(\.1); return v.reduce(0, +) / Double(v.count)
        }
        func row(_ runs: [[Double]]) -> [String] {
            var cells: [String] = []
            for t in ["vqa", "caption", "grounding"] {
                for k in Self.tasks.indices where Self.tasks[k] == t { cells.append(cell(runs.map { $0[k] })) }
                cells.append(cell(runs.map { taskMean($0, t) }))
            }
            cells.append(cell(runs.map { s in ["vqa", "caption", "grounding"].map { taskMean(s, $0) }.reduce(0, +) / 3 }))
            return cells
        }
        let fedavgRow = "| fedavg | 2 | 3 | " + row([Self.fedavg1, Self.fedavg2]).joined(separator: " | ") + " |"
        let localRow = "| local | 1 | 3 | " + row([Self.local1]).joined(separator: " | ") + " |"
        #expect(r.stdout.contains("| method | n | round | vqa c0 | vqa c1 | vqa avg | caption c2 | caption c3 | caption avg | grounding c4 | grounding c5 | grounding avg | avg |"),
                "stdout: \(r.stdout)")
        #expect(r.stdout.contains(fedavgRow), "expected \(fedavgRow) in\n\(r.stdout)")
        #expect(r.stdout.contains(localRow), "expected \(localRow) in\n\(r.stdout)")
        #expect(r.stdout.contains("sample standard deviation (n−1"))
        #expect(r.stdout.contains("CIDEr-D ×100"))

        // CSV: a header and one row per configuration × column (6 clients + 3 task averages + 1).
        let csv = Self.parseCSV(try String(contentsOfFile: dir.file("r.csv"), encoding: .utf8))
        let header = try #require(csv.first)
        #expect(header == ["method", "algorithm", "task", "client", "metric", "mean", "std", "n", "seeds", "round", "runs"])
        #expect(csv.count == 1 + 2 * 10)
        func field(_ row: [String], _ name: String) -> String { row[header.firstIndex(of: name) ?? 0] }
        for k in Self.tasks.indices {
            let fedavg = try #require(csv.first { field($0, "method") == "fedavg" && field($0, "client") == "\(k)" })
            #expect(field(fedavg, "task") == Self.tasks[k])
            #expect(abs((Double(field(fedavg, "mean")) ?? .nan) - (pair(k)[0] + pair(k)[1]) / 2) < 1e-12)
            #expect(abs((Double(field(fedavg, "std")) ?? .nan) - Self.sampleStd(pair(k))) < 1e-12)
            #expect(field(fedavg, "n") == "2" && field(fedavg, "seeds") == "1;2" && field(fedavg, "round") == "3")
            let local = try #require(csv.first { field($0, "method") == "local" && field($0, "client") == "\(k)" })
            #expect(abs((Double(field(local, "mean")) ?? .nan) - Self.local1[k]) < 1e-12)
            #expect(field(local, "std") == "" && field(local, "n") == "1")
        }
        let overall = try #require(csv.first { field($0, "method") == "fedavg" && field($0, "task") == "all" })
        let perSeed = [Self.fedavg1, Self.fedavg2].map { s in ["vqa", "caption", "grounding"].map { taskMean(s, $0) }.reduce(0, +) / 3 }
        #expect(abs((Double(field(overall, "mean")) ?? .nan) - (perSeed[0] + perSeed[1]) / 2) < 1e-12)

        // SVG: well-formed, one polyline per client and configuration.
        let svg = try Data(contentsOf: URL(fileURLWithPath: dir.file("p.svg")))
        final class Counter: NSObject, XMLParserDelegate {
            var elements: [String: Int] = [:]
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                elements[name, default: 0] += 1
            }
        }
        let parser = XMLParser(data: svg), counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "p.svg is not well-formed XML: \(String(describing: parser.parserError))")
        #expect(counter.elements["svg"] == 1)
        #expect(counter.elements["polyline"] == 2 * Self.tasks.count)

        // PNG: signature, IHDR first, chunks that end exactly with IEND.
        let png = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("p.png"))))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var pos = 8, chunks: [String] = []
        func u32(_ p: Int) -> Int { Int(png[p]) << 24 | Int(png[p + 1]) << 16 | Int(png[p + 2]) << 8 | Int(png[p + 3]) }
        while pos + 12 <= png.count {
            chunks.append(String(decoding: png[(pos + 4)..<(pos + 8)], as: UTF8.self))
            pos += 12 + u32(pos)
        }
        #expect(pos == png.count && chunks.first == "IHDR" && chunks.last == "IEND" && chunks.contains("IDAT"), "\(chunks)")
        #expect(u32(16) > 600 && u32(20) > 300, "PNG size \(u32(16))×\(u32(20))")
    }

    @Test("unreportable inputs exit non-zero with a message naming the path")
    func errors() throws {
        let dir = TemporaryDirectory("report-cli"); defer { dir.cleanup() }
        let missing = dir.file("no-such-run")
        let r1 = try runProcess(pilotBinary, ["report", missing])
        #expect(r1.status != 0 && r1.stderr.contains(missing), "stderr: \(r1.stderr)")

        let vu = dir.file("vu"), gvqa = dir.file("gvqa")
        try Self.writeRun(vu, algorithm: "fedavg", seed: 1, final: Self.fedavg1)
        try Self.writeRun(gvqa, algorithm: "fedavg", seed: 1, final: Self.fedavg1, tasks: ["science", "science", "vqa", "vqa", "ocr", "ocr"])
        let r2 = try runProcess(pilotBinary, ["report", vu, gvqa])
        #expect(r2.status != 0 && r2.stderr.contains(gvqa) && r2.stderr.contains("different scenarios"), "stderr: \(r2.stderr)")

        let r3 = try runProcess(pilotBinary, ["report", vu, "--plot", dir.file("p.jpg")])
        #expect(r3.status != 0 && r3.stderr.contains(".svg or .png"), "stderr: \(r3.stderr)")

        let r4 = try runProcess(pilotBinary, ["report", "--help"])
        let help = r4.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")   // independent of line wrapping
        #expect(r4.status == 0 && help.contains("sample standard deviation") && help.contains("--plot"), "stdout: \(r4.stdout)")
    }
}
