import ArgumentParser

/// `pilot data`: the FedMIT benchmark data (generation, LLaVA JSON export/import, preview, stats).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Generate, convert, preview and inspect FedMIT benchmark data.",
        discussion: """
        A scenario directory holds one HDF5 shard per client, a test split per task, the public \
        pretraining split and the tokenizer built from it. See docs/data.md.
        """,
        subcommands: [DataGenerateCommand.self, DataExportCommand.self, DataImportCommand.self,
                      DataPreviewCommand.self, DataStatsCommand.self]
    )
}
