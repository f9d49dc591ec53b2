import ArgumentParser
import PilotHDF5

/// Hidden helpers that the test suite drives as separate processes (for example, to kill a
/// writer between its temp-file write and the rename). Not part of the user interface.
struct DebugCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug", abstract: "Internal helpers for the test suite.",
        shouldDisplay: false, subcommands: [H5Write.self])

    struct H5Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "h5-write",
            abstract: "Write a small checkpoint-like HDF5 file through the store (atomic commit).")

        @Option(help: "Output file.") var out: String
        @Option(help: "Value to fill the dataset with.") var value: Float = 1

        func run() throws {
            let f = try H5File.create(out)
            try f.write([Float](repeating: value, count: 1024), shape: [32, 32], at: "clients/1/lora_a")
            try f.setAttribute("value", .double(Double(value)))
            try f.commit()
        }
    }
}
