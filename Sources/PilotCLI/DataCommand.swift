import ArgumentParser

/// `pilot data`: the FedMIT benchmark data (generation, LLaVA JSON export/import, preview, stats).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Generate, build from LLaVA JSON, convert, preview and inspect FedMIT scenario data.",
        discussion: """
        A scenario directory holds one HDF5 shard per client, a test split per task, the public \
        pretraining split and the tokenizer. `generate` writes the built-in benchmark; `scenario` builds one \
        from your own LLaVA JSON files and JPEG/PNG images. See docs/data.md.
        """,
        subcommands: [DataGenerateCommand.self, DataScenarioCommand.self, DataExportCommand.self, DataImportCommand.self, DataDecodeCommand.self,
                      DataPreviewCommand.self, DataStatsCommand.self]
    )
}
