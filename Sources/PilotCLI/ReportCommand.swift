import ArgumentParser
import Foundation
import PilotCore
import PilotFederation
import PilotReport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare finished runs: a per-client results table (mean ± std over seeds) and a plot of eval score per round.",
        discussion: """
        Reads RUN/metrics.h5 of every run directory given. Runs whose configurations are equal \
        except for run.seed are seeds of one configuration and make one row: each cell is the mean \
        over the seeds ± the sample standard deviation (n−1 denominator); a single seed shows just \
        its value. A row is labelled with its algorithm, plus the config keys that differ when \
        several configurations share an algorithm (e.g. "pilot (ata=false)"), or with --label.

        Each run is scored at its last round in which every client was evaluated. The table has \
        one column per client, grouped by task, each task's average, and the average of the task \
        averages. Numbers are ×100: accuracies in %, caption CIDEr-D ×100. The CSV is tidy (one \
        row per configuration and column, unscaled scores). All runs must come from one scenario \
        (the same client tasks).

        Examples:
          pilot report runs/fedavg-s1 runs/fedavg-s2 runs/pilot-s1 runs/pilot-s2
          pilot report runs/* --csv results.csv --plot scores.svg --plot scores.png
          pilot report runs/a runs/b --label "no ATA=runs/b" --format csv
          pilot report runs/rounds/vu-*-s[123]-run.rounds=10 --round 6
          pilot report runs/rounds/vu-*-s[123]-run.rounds=10 --by-round --plot-average avg.svg

        --by-round prints, instead of the per-client table, the average of the task averages and \
        each task's average at every round (one row per configuration, one column per round, mean \
        ± std over the seeds); --csv then writes its tidy form. --plot-average draws the same \
        curves, with ± one standard deviation as error bars.

        --eval before reports the scores of each client's model before the round's aggregation \
        (clients/eval_score_before, written by runs with eval.when = "before" or "both") instead of \
        after it (clients/eval_score, the default).
        """
    )

    @Argument(help: ArgumentHelp("Run directories written by `pilot train --out`.", valueName: "RUN_DIR"))
    var runs: [String] = []

    @Option(name: .customLong("label"), help: ArgumentHelp(
        "Name the row of the configuration that RUN_DIR belongs to (repeatable).", valueName: "NAME=RUN_DIR"))
    var labels: [String] = []

    @Option(help: "Score every run at this round (evaluated for every client) instead of at its last fully evaluated round, e.g. --round 3 of 10-round runs.")
    var round: Int?

    @Flag(help: "Print the task averages and their average at every round (a column per round) instead of the per-client table; --csv writes that table's tidy form.")
    var byRound = false

    @Flag(help: "Show one column per client in the Markdown table even with many clients (by default, more than 12 clients show the task averages only; the CSV always has every client).")
    var perClient = false

    @Option(help: ArgumentHelp("Which scores to report: after (each client's model after the round's aggregation; the default) or before (the model it trained, before aggregation: runs with eval.when = \"before\" or \"both\").", valueName: "WHEN"))
    var eval: String = "after"

    @Option(help: ArgumentHelp("What to print on stdout: markdown or csv.", valueName: "FORMAT"))
    var format: String = "markdown"

    @Option(help: ArgumentHelp("Also write the tidy CSV to this file.", valueName: "FILE"))
    var csv: String?

    @Option(help: ArgumentHelp(
        "Write the eval-score-per-round plot: FILE.svg or FILE.png (repeatable). One panel per task, one line per client and configuration.",
        valueName: "FILE"))
    var plot: [String] = []

    @Option(name: .customLong("plot-average"), help: ArgumentHelp(
        "Write the average-per-round plot: FILE.svg or FILE.png (repeatable). One panel for the average of the task averages and one per task, one line per configuration, mean ± std over the seeds.",
        valueName: "FILE"))
    var plotAverage: [String] = []

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run directory, e.g. `pilot report runs/vu-pilot`") }
        guard ["after", "before"].contains(eval) else { throw ValidationError("--eval must be after or before, not '\(eval)'") }
        guard ["markdown", "csv"].contains(format) else { throw ValidationError("--format must be markdown or csv, not '\(format)'") }
        for p in plot where !["svg", "png"].contains(URL(fileURLWithPath: p).pathExtension.lowercased()) {
            throw ValidationError("--plot '\(p)': the file name must end in .svg or .png")
        }
        for p in plotAverage where !["svg", "png"].contains(URL(fileURLWithPath: p).pathExtension.lowercased()) {
            throw ValidationError("--plot-average '\(p)': the file name must end in .svg or .png")
        }
        if byRound && round != nil {
            throw ValidationError("--by-round shows every round; --round scores the table at one round: give one of them")
        }
        for l in labels where !l.contains("=") {
            throw ValidationError("--label '\(l)': expected NAME=RUN_DIR, e.g. --label \"Pilot (no ATA)=runs/noata-s1\"")
        }
    }

    /// Splits NAME=RUN_DIR at the `=` whose right side is one of the runs given (names and paths
    /// may both contain `=`); the first `=` otherwise.
    func parseLabel(_ text: String) -> (name: String, run: String) {
        let given = Set(runs.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        let splits = text.indices.filter { text[$0] == "=" }.map { (String(text[..<$0]), String(text[text.index(after: $0)...])) }
        return splits.first { given.contains(URL(fileURLWithPath: $0.1).standardizedFileURL.path) } ?? splits[0]
    }

    func run() throws {
        let loaded = try runs.map { try ReportRun.load(directory: $0, before: eval == "before") }
        let report = try RunReport(runs: loaded, labels: labels.map(parseLabel), round: round)
        for w in report.warnings { Console.error("warning: \(w)") }
        let table = byRound ? report.roundsCSV() : report.csv()
        Console.write(fd: 1, format == "csv" ? table : byRound ? report.roundsMarkdown() : report.markdown(perClient: perClient ? true : nil))
        if let csv {
            do { try table.write(toFile: csv, atomically: true, encoding: .utf8) }
            catch { throw PilotError.message("cannot write the CSV '\(csv)': \(error.localizedDescription). Check that its folder exists and is writable.") }
            Console.error("wrote \(csv)")
        }
        for p in plot {
            try ReportPlot.write(report, to: p)
            Console.error("wrote \(p)")
        }
        for p in plotAverage {
            try ReportAveragePlot.write(report, to: p)
            Console.error("wrote \(p)")
        }
    }
}
