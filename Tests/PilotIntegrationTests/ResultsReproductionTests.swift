import Foundation
import PilotTestSupport
import Testing

/// The published comparison (docs/results.md, issue #7) must be what `pilot report` makes of the
/// committed metrics files: `scripts/results.sh check` rebuilds every table of results/tables from
/// results/runs and compares them byte for byte, and every row of those tables must appear in
/// docs/results.md unchanged. A hand-edited number, a table left stale after new runs, or a change
/// to `pilot report` that alters published numbers fails here.
@Suite("results/ reproduces docs/results.md")
struct ResultsReproductionTests {
    static let tables = repositoryRoot + "/results/tables"

    @Test("scripts/results.sh check: pilot report on results/runs gives the committed tables")
    func tablesReproduce() throws {
        let r = try runProcess("/bin/bash", [repositoryRoot + "/scripts/results.sh", "check"],
                               environment: ["PILOT_BIN": pilotBinary], currentDirectory: repositoryRoot, timeout: 300)
        #expect(r.status == 0, "scripts/results.sh check exited \(r.status):\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("every table in results/tables is reproduced"))
    }

    @Test("every table row in results/tables appears verbatim in docs/results.md")
    func docsQuoteTheTables() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.tables).filter { $0.hasSuffix(".md") }.sorted()
        try #require(!names.isEmpty, "results/tables holds no tables")
        let doc = try String(contentsOfFile: repositoryRoot + "/docs/results.md", encoding: .utf8)
        var rows = 0
        for name in names {
            let table = try String(contentsOfFile: Self.tables + "/" + name, encoding: .utf8)
            let lines = table.split(separator: "\n")
            for (i, line) in lines.enumerated() where line.hasPrefix("| ") && !(i + 1 < lines.count && lines[i + 1].hasPrefix("|---")) {
                rows += 1
                #expect(doc.contains(line), "docs/results.md lacks this row of results/tables/\(name):\n\(line)")
            }
        }
        #expect(rows > 0)
    }
}
