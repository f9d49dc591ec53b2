import ArgumentParser

/// The root `pilot` command: it only lists the subcommands; each lives in its own file.
public struct PilotCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pilot",
        abstract: "Federated multimodal instruction tuning (Pilot, AAAI 2025) as an MPI job.",
        discussion: """
        Rank 0 is the federated server; the K clients are spread over the other N − 1 ranks \
        (several clients per rank where K > N − 1; `run.clients_per_rank`). Launch multi-rank \
        commands with mpirun (workstation) or srun --mpi=pmix (Slurm). Checkpoints and metrics \
        are HDF5 files that h5py and pandas can open.
        """,
        version: PilotVersion.string,
        subcommands: [SelftestCommand.self, ModelCommand.self, GenerateCommand.self, TokenizeCommand.self, DebugCommand.self, BenchCommand.self, DataCommand.self, ScoreCommand.self, PretrainCommand.self, InspectCommand.self, TrainCommand.self, EvalCommand.self, ReportCommand.self, ExportCommand.self]
    )

    public init() {}
}

public enum PilotVersion {
    public static let string = "0.1.0"
}
