import PilotCore
import PilotFederation
import Testing

/// #34 item 6's config findings: a section opened twice, and `--list-keys` calling optional keys required.
@Suite("config findings (#34 item 6)")
struct ConfigFindingsTests {
    @Test("a section header given twice is refused with file:line of the second and the line of the first")
    func duplicateSection() throws {
        let text = "[run]\ndata = \"d\"\n[train]\nlr = 1e-3\n\n[run]\nbase = \"b.h5\"\n"
        do {
            _ = try ConfigFile(text: text, path: "/tmp/dup.toml")
            Issue.record("accepted a second [run]")
        } catch {
            let message = "\(error)"
            #expect(message.contains("/tmp/dup.toml:6:") && message.contains("[run] is opened a second time (first at line 1)"), "\(message)")
        }
        // one header per section is still fine, in any order
        _ = try ConfigFile(text: "[train]\nlr = 1e-3\n[run]\ndata = \"d\"\nbase = \"b.h5\"\n", path: "/tmp/ok.toml")
    }

    @Test("--list-keys: optional keys say (optional), only keys a config must give say (required)")
    func listing() {
        let lines = RunConfigSchema.listing
        #expect(lines.count == RunConfigSchema.keys.count)
        func line(_ key: String) -> String { lines.first { $0.hasPrefix(key + " = ") } ?? "" }
        #expect(line("run.fraction").hasPrefix("run.fraction = (optional)"))
        #expect(line("run.min_clients").hasPrefix("run.min_clients = (optional)"))
        #expect(line("robust.aggregator").hasPrefix("robust.aggregator = (optional)"))
        #expect(line("run.data").hasPrefix("run.data = (required)") && line("run.base").hasPrefix("run.base = (required)"))
        #expect(line("run.rounds").hasPrefix("run.rounds = 3"))
        let required = lines.filter { $0.contains(" = (required)") }.map { String($0.prefix { $0 != " " }) }
        #expect(required == ["run.data", "run.base"], "\(required)")
    }
}
