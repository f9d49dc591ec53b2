import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PilotCore
import PilotFederation
import PilotJob
import PilotReport
import PilotTestSupport
import Testing

/// `pilot report`'s aggregation on metrics files written with `MetricsLog`, as `pilot train`
/// writes them: grouping by configuration without the seed, mean and sample std over seeds, the
/// scored round, the plotted curves, and the errors for runs that cannot be reported together.
@Suite("pilot report: grouping and statistics")
struct ReportTests {
    /// Three vqa clients and two caption clients, so that the mean of the task averages differs
    /// from the mean over clients.
    static let tasks = ["vqa", "vqa", "vqa", "caption", "caption"]

    /// Writes RUN/metrics.h5 with `scores` as clients/eval_score ([round][client], NaN where not
    /// evaluated) and the attributes `pilot train` writes, config from a real `RunConfig`.
    static func writeRun(_ dir: TemporaryDirectory, _ name: String, algorithm: String, seed: Int, extra: String = "",
                         tasks: [String] = tasks, scores: [[Double]]) throws -> String {
        let path = dir.file(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let config = try RunConfig(file: ConfigFile(text: """
            [run]
            algorithm = "\(algorithm)"
            seed = \(seed)
            rounds = \(scores.count)
            data = "/data/vu"
            base = "/data/vu/base.h5"
            \(extra)
            """))
        var log = MetricsLog()
        for (r, row) in scores.enumerated() {
            let clients = row.map { s -> ClientRoundMetrics in
                var m = ClientRoundMetrics()
                m["eval_score"] = s
                m["loss_total"] = 1
                return m
            }
            log.append(round: r + 1, stage: r == 0 ? 1 : 2, clients: clients, server: [Double](repeating: 0, count: MetricsLog.serverFields.count))
        }
        try log.write(to: path + "/metrics.h5", attributes: [
            "algorithm": .string(algorithm), "scenario": .string("vu"), "client_tasks": .strings(tasks),
            "config": .string(config.effectiveFile), "config_sha256": .string(config.hash),
        ])
        return path
    }

    /// Deterministic scores in [0, 1) per (seed, round, client).
    static func scores(seed: Int, rounds: Int = 3, clients: Int = tasks.count) -> [[Double]] {
        var g = SplitMix64(seed: UInt64(seed))
        return (0..<rounds).map { _ in (0..<clients).map { _ in Double(g.next() % 1000) / 1000 } }
    }

    static func load(_ paths: [String], labels: [(name: String, run: String)] = []) throws -> RunReport {
        try RunReport(runs: paths.map { try ReportRun.load(directory: $0) }, labels: labels)
    }

    /// The textbook sample standard deviation.
    static func sampleStd(_ x: [Double]) -> Double {
        let m = x.reduce(0, +) / Double(x.count)
        var s = 0.0
        for v in x { s += (v - m) * (v - m) }
        return (s / Double(x.count - 1)).squareRoot()
    }

    @Test("runs equal up to run.seed form one row; other configurations are labelled by the keys that differ")
    func grouping() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let f1 = try Self.writeRun(dir, "fedavg-1", algorithm: "fedavg", seed: 1, scores: Self.scores(seed: 1))
        let p1 = try Self.writeRun(dir, "pilot-1", algorithm: "pilot", seed: 1, scores: Self.scores(seed: 2))
        let n1 = try Self.writeRun(dir, "noata-1", algorithm: "pilot", seed: 1, extra: "[pilot]\nata = false", scores: Self.scores(seed: 3))
        let f2 = try Self.writeRun(dir, "fedavg-2", algorithm: "fedavg", seed: 2, scores: Self.scores(seed: 4))
        let p2 = try Self.writeRun(dir, "pilot-2", algorithm: "pilot", seed: 2, scores: Self.scores(seed: 5))
        let report = try Self.load([f1, p1, n1, f2, p2])
        #expect(report.groups.map(\.label) == ["fedavg", "pilot (ata=true)", "pilot (ata=false)"])
        #expect(report.groups.map { $0.runs.map(\.path) } == [[f1, f2], [p1, p2], [n1]])
        #expect(report.groups.map { $0.runs.map(\.seed) } == [[1, 2], [1, 2], [1]])
        #expect(report.warnings.isEmpty)
        // The paper's column layout: clients grouped by task, each task's average, then the overall one.
        #expect(report.columns == [.client(0), .client(1), .client(2), .taskAverage("vqa"), .client(3), .client(4), .taskAverage("caption"), .average])
    }

    @Test("cells are the mean and the sample (n−1) standard deviation over seeds; averages are taken per seed first")
    func meanAndStd() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let seeds = [11, 12, 13]
        let paths = try seeds.map { try Self.writeRun(dir, "fedavg-\($0)", algorithm: "fedavg", seed: $0, scores: Self.scores(seed: $0)) }
        let report = try Self.load(paths)
        #expect(report.groups.count == 1)
        let g = try #require(report.groups.first)
        let finals = seeds.map { Self.scores(seed: $0)[2] }   // every round is evaluated: the last one counts
        for k in Self.tasks.indices {
            let x = finals.map { $0[k] }
            let s = g.statistic(.client(k), clientTasks: report.clientTasks)
            #expect(s.count == 3)
            #expect(abs(s.mean - (x[0] + x[1] + x[2]) / 3) < 1e-12)
            #expect(abs((s.std ?? -1) - Self.sampleStd(x)) < 1e-12)
        }
        let vqa = finals.map { ($0[0] + $0[1] + $0[2]) / 3 }, caption = finals.map { ($0[3] + $0[4]) / 2 }
        let overall = zip(vqa, caption).map { ($0 + $1) / 2 }
        for (column, x) in [(ReportColumn.taskAverage("vqa"), vqa), (.taskAverage("caption"), caption), (.average, overall)] {
            let s = g.statistic(column, clientTasks: report.clientTasks)
            #expect(abs(s.mean - x.reduce(0, +) / 3) < 1e-12, "\(column)")
            #expect(abs((s.std ?? -1) - Self.sampleStd(x)) < 1e-12, "\(column)")
        }
        // n−1, not n: the population std of these three values is visibly smaller.
        let x = finals.map { $0[0] }, m = x.reduce(0, +) / 3
        let population = (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 3).squareRoot()
        #expect(abs((g.statistic(.client(0), clientTasks: report.clientTasks).std ?? 0) - population) > 1e-6)
    }

    @Test("one seed: the value without a spread")
    func singleSeed() {
        let s = SeedStatistic([0.4567])
        #expect(s.mean == 0.4567 && s.std == nil && s.count == 1)
        #expect(RunReport.cell(s) == "45.7")
        #expect(RunReport.cell(SeedStatistic([0.5, 0.7])) == String(format: "%.1f ± %.1f", 60.0, Self.sampleStd([0.5, 0.7]) * 100))
    }

    @Test("a run is scored at its last round in which every client was evaluated")
    func scoredRound() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        var s = Self.scores(seed: 3, rounds: 4)
        s[2][4] = .nan                                   // round 3: one client not evaluated
        s[3] = s[3].map { _ in .nan }                     // round 4: nobody evaluated
        let path = try Self.writeRun(dir, "run", algorithm: "local", seed: 1, scores: s)
        let run = try ReportRun.load(directory: path)
        #expect(run.rounds == [1, 2, 3, 4])
        #expect(run.scoredRoundIndex == 1)
        let report = try Self.load([path])
        #expect(report.groups[0].scoredRounds == [2])
        #expect(report.groups[0].finalScores == [s[1]])
        #expect(report.markdown().contains("| local | 1 | 2 | "))
    }

    @Test("seeds scored at different rounds are reported, with a warning")
    func differentRounds() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        var short = Self.scores(seed: 2)
        short[2] = short[2].map { _ in .nan }
        let a = try Self.writeRun(dir, "a", algorithm: "fedavg", seed: 1, scores: Self.scores(seed: 1))
        let b = try Self.writeRun(dir, "b", algorithm: "fedavg", seed: 2, scores: short)
        let report = try Self.load([a, b])
        #expect(report.groups[0].scoredRounds == [3, 2])
        #expect(report.groups[0].roundText == "2–3")
        #expect(report.warnings.count == 2 && report.warnings[0].contains(b), "\(report.warnings)")
        // b's final round (run.rounds = 3) has NaN scores: flagged, not silently replaced by round 2 (#18 item 1)
        #expect(report.warnings.contains { $0.contains("'\(b)' has NaN scores at its last round 3") }, "\(report.warnings)")
    }

    @Test("--round scores every run at the round given; a round that was not evaluated for every client is an error naming the run")
    func atRound() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let s = Self.scores(seed: 1)
        let a = try Self.writeRun(dir, "a", algorithm: "fedavg", seed: 1, scores: s)
        let report = try RunReport(runs: [try ReportRun.load(directory: a)], round: 2)
        #expect(report.groups[0].scoredRounds == [2])
        #expect(report.groups[0].finalScores == [s[1]])
        #expect(report.markdown().contains("scored at round 2 (--round"))
        #expect(throws: PilotError.self) { _ = try RunReport(runs: [try ReportRun.load(directory: a)], round: 7) }
    }

    @Test("the plotted curve is the mean over seeds at the rounds every seed evaluated the client")
    func curve() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let sa = Self.scores(seed: 1)
        var sb = Self.scores(seed: 2)
        sb[1][0] = .nan
        let a = try Self.writeRun(dir, "a", algorithm: "fedavg", seed: 1, scores: sa)
        let b = try Self.writeRun(dir, "b", algorithm: "fedavg", seed: 2, scores: sb)
        let g = try Self.load([a, b]).groups[0]
        let c0 = g.curve(client: 0), c1 = g.curve(client: 1)
        #expect(c0.map(\.round) == [1, 3])
        #expect(c1.map(\.round) == [1, 2, 3])
        for (i, r) in [0, 2].enumerated() { #expect(abs(c0[i].value - (sa[r][0] + sb[r][0]) / 2) < 1e-12) }
        for r in 0..<3 { #expect(abs(c1[r].value - (sa[r][1] + sb[r][1]) / 2) < 1e-12) }
    }

    @Test("--by-round: a task average or the overall average per round is the mean ± sample std over seeds of each seed's average, only where every needed client was evaluated")
    func averageCurves() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let sa = Self.scores(seed: 1, rounds: 4), sb = Self.scores(seed: 2, rounds: 4), sc = Self.scores(seed: 3, rounds: 4)
        var sbMissing = sb
        sbMissing[2][4] = .nan   // a caption client not evaluated at round 3 in seed 2
        let a = try Self.writeRun(dir, "a", algorithm: "pilot", seed: 1, scores: sa)
        let b = try Self.writeRun(dir, "b", algorithm: "pilot", seed: 2, scores: sbMissing)
        let c = try Self.writeRun(dir, "c", algorithm: "local", seed: 1, scores: sc)
        let report = try Self.load([a, b, c])
        func vqa(_ s: [Double]) -> Double { (s[0] + s[1] + s[2]) / 3 }
        func caption(_ s: [Double]) -> Double { (s[3] + s[4]) / 2 }
        func avg(_ s: [Double]) -> Double { (vqa(s) + caption(s)) / 2 }

        let pilotAvg = report.groups[0].curve(.average, clientTasks: Self.tasks)
        #expect(pilotAvg.map(\.round) == [1, 2, 4])
        for (i, r) in [0, 1, 3].enumerated() {
            let x = [avg(sa[r]), avg(sb[r])]
            #expect(abs(pilotAvg[i].statistic.mean - (x[0] + x[1]) / 2) < 1e-12)
            #expect(abs(pilotAvg[i].statistic.std! - Self.sampleStd(x)) < 1e-12)
        }
        let pilotVqa = report.groups[0].curve(.taskAverage("vqa"), clientTasks: Self.tasks)
        #expect(pilotVqa.map(\.round) == [1, 2, 3, 4], "the vqa clients were all evaluated at round 3")
        #expect(abs(pilotVqa[2].statistic.mean - (vqa(sa[2]) + vqa(sb[2])) / 2) < 1e-12)
        let localCaption = report.groups[1].curve(.taskAverage("caption"), clientTasks: Self.tasks)
        #expect(localCaption.count == 4 && localCaption.allSatisfy { $0.statistic.std == nil })
        #expect(abs(localCaption[1].statistic.mean - caption(sc[1])) < 1e-12)

        let md = report.roundsMarkdown()
        let rows = md.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let avgHeader = rows.firstIndex { $0.hasPrefix("**avg**") }!
        #expect(rows[avgHeader + 2] == "| method | n | r1 | r2 | r3 | r4 |")
        let pilotRow = rows[avgHeader + 4]
        let cells = pilotRow.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(cells[1] == "pilot" && cells[2] == "2" && cells[5] == "", "round 3 has no overall average for pilot: \(pilotRow)")
        #expect(cells[3] == RunReport.cell(pilotAvg[0].statistic))
        #expect(md.contains("**vqa avg**") && md.contains("**caption avg**"))

        let csv = report.roundsCSV().split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(csv[0] == ["method", "algorithm", "task", "metric", "round", "mean", "std", "n", "seeds", "runs"])
        let pilotAllRound4 = csv.first { $0[0] == "pilot" && $0[2] == "all" && $0[4] == "4" }!
        #expect(Double(pilotAllRound4[5])! == pilotAvg[2].statistic.mean && pilotAllRound4[7] == "2")
        // 3 + 4 + 3 (pilot: avg, vqa, caption) and 4 + 4 + 4 (local) rows
        #expect(csv.count - 1 == 10 + 12)

        // The plot: one line per configuration in each of the 3 panels, error bars where n > 1.
        let scene = ReportAveragePlot.scene(report)
        var lines: [(points: [PlotScene.Point], color: PlotScene.Color)] = []
        for case let .polyline(points, color, _, _, _) in scene.items { lines.append((points, color)) }
        #expect(lines.count == 2 * 3)
        #expect(lines.map(\.points.count).sorted() == [3, 3, 4, 4, 4, 4])
        #expect(Set(lines.map(\.color.hex)) == Set(ReportPlot.palette.prefix(2).map(\.hex)))
        var bars = 0
        for case let .line(p, q, color, _, _) in scene.items where p.x == q.x && color == ReportPlot.palette[0] && p.y != q.y { bars += 1 }
        #expect(bars == 3 + 4 + 3, "one error bar per pilot point (2 seeds); local (1 seed) has none")
        #expect(scene.svg().contains("<polyline"))
    }

    @Test("--label names a configuration; contradictory or unknown labels are errors")
    func labels() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let a = try Self.writeRun(dir, "a", algorithm: "fedavg", seed: 1, scores: Self.scores(seed: 1))
        let b = try Self.writeRun(dir, "b", algorithm: "fedavg", seed: 2, scores: Self.scores(seed: 2))
        let c = try Self.writeRun(dir, "c", algorithm: "local", seed: 1, scores: Self.scores(seed: 3))
        #expect(try Self.load([a, b, c], labels: [("FedAvg, 2 seeds", b)]).groups.map(\.label) == ["FedAvg, 2 seeds", "local"])
        #expect(try Self.load([a, b, c], labels: [("X", a), ("X", b)]).groups.map(\.label) == ["X", "local"])
        #expect(throws: PilotError.self) { try Self.load([a, b, c], labels: [("X", a), ("Y", b)]) }
        #expect(throws: PilotError.self) { try Self.load([a, b, c], labels: [("local", a)]) }
        #expect(throws: PilotError.self) { try Self.load([a, c], labels: [("X", dir.file("elsewhere"))]) }
    }

    /// The message of the error `body` throws (fails the test when it does not throw).
    static func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        Issue.record("expected an error")
        return ""
    }

    @Test("a missing run directory or metrics.h5 is an error naming the path")
    func missingFiles() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let missing = dir.file("no-such-run")
        let m1 = Self.message { _ = try ReportRun.load(directory: missing) }
        #expect(m1.contains(missing) && m1.contains("pilot train --out"), "\(m1)")
        try FileManager.default.createDirectory(atPath: dir.file("empty"), withIntermediateDirectories: true)
        let m2 = Self.message { _ = try ReportRun.load(directory: dir.file("empty")) }
        #expect(m2.contains(dir.file("empty")) && m2.contains("no metrics.h5"), "\(m2)")
    }

    @Test("a run without an evaluated round, a run given twice, or runs from two scenarios are errors")
    func unreportable() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let good = try Self.writeRun(dir, "good", algorithm: "fedavg", seed: 1, scores: Self.scores(seed: 1))
        var none = Self.scores(seed: 2, rounds: 2)
        none[0][0] = .nan; none[1][3] = .nan
        let unevaluated = try Self.writeRun(dir, "unevaluated", algorithm: "fedavg", seed: 2, scores: none)
        let m1 = Self.message { _ = try Self.load([good, unevaluated]) }
        #expect(m1.contains(unevaluated) && m1.contains("no round in which every client was evaluated") && m1.contains("--resume"), "\(m1)")

        let m2 = Self.message { _ = try Self.load([good, dir.path + "/./good"]) }
        #expect(m2.contains("given twice"), "\(m2)")

        let gvqa = try Self.writeRun(dir, "gvqa", algorithm: "fedavg", seed: 1, tasks: ["science", "science", "vqa", "ocr", "ocr"],
                                     scores: Self.scores(seed: 3))
        let m3 = Self.message { _ = try Self.load([good, gvqa]) }
        #expect(m3.contains(good) && m3.contains(gvqa) && m3.contains("different scenarios"), "\(m3)")
    }

    @Test("the plot has one line per client and configuration, as SVG that parses and as a PNG with the method colours")
    func plot() throws {
        let dir = TemporaryDirectory("report"); defer { dir.cleanup() }
        let a = try Self.writeRun(dir, "a", algorithm: "fedavg", seed: 1, scores: Self.scores(seed: 1))
        let b = try Self.writeRun(dir, "b", algorithm: "fedavg", seed: 2, scores: Self.scores(seed: 2))
        let c = try Self.writeRun(dir, "c", algorithm: "local", seed: 1, scores: Self.scores(seed: 3))
        let report = try Self.load([a, b, c])
        let scene = ReportPlot.scene(report)
        var lines: [(points: [PlotScene.Point], color: PlotScene.Color)] = []
        for case let .polyline(points, color, _, _, _) in scene.items { lines.append((points, color)) }
        #expect(lines.count == 2 * Self.tasks.count)
        #expect(lines.allSatisfy { $0.points.count == 3 })
        #expect(Set(lines.map(\.color.hex)) == Set(ReportPlot.palette.prefix(2).map(\.hex)))

        let svg = scene.svg()
        final class Counter: NSObject, XMLParserDelegate {
            var elements: [String: Int] = [:]
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                elements[name, default: 0] += 1
            }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        #expect(counter.elements["svg"] == 1)
        #expect(counter.elements["polyline"] == 2 * Self.tasks.count)

        let image = scene.rasterise(scale: 2)
        #expect(image.width == Int(scene.width) * 2 && image.height == Int(scene.height.rounded(.up)) * 2)
        var colours = Set<[UInt8]>()
        for i in stride(from: 0, to: image.pixels.count, by: 3) { colours.insert(Array(image.pixels[i..<(i + 3)])) }
        for c in ReportPlot.palette.prefix(2) { #expect(colours.contains([c.r, c.g, c.b]), "no pixel of \(c.hex) in the PNG") }
        let png = try scene.png()
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }
}
