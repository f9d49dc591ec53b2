import ArgumentParser
import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotFederation
import PilotJob
import PilotReport

/// `pilot train`: the federated run. Rank 0 is the server; the other ranks host the K clients (Placement).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Run federated training (Pilot or a baseline) under mpirun: rank 0 is the server, the other ranks host the clients.",
        discussion: """
        Start:   mpirun -np 10 pilot train --config configs/vu/pilot.toml --out runs/vu-pilot
        Resume:  mpirun -np 10 pilot train --resume runs/vu-pilot
        Rank 0 is the server; the K clients of the scenario are spread over the other ranks in \
        contiguous blocks (any -np from 2 to K + 1; `run.clients_per_rank` fixes the block size), \
        and the results do not depend on the world size. `run.fraction` samples the clients that \
        train in a round. The config is validated before MPI starts: unknown keys, wrong types, out-of-range values, a wrong world size and \
        missing data files are reported by rank 0, and every rank exits with status 1. \
        `pilot train --list-keys` prints every config key with its default.
        On SIGUSR1 the round in progress finishes, its checkpoint is committed, and every rank \
        exits with status \(StopSignal.exitCode); `--resume` continues bitwise identically. SIGTERM, \
        SIGINT and SIGUSR2 do the same within the stop grace (--stop-grace): if the round has not \
        committed by then, every rank still exits \(StopSignal.exitCode), and rank 0 says which round \
        is the last committed. Under mpirun and srun send TERM to scripts/mpirun.sh or the batch \
        script, or USR1 to mpirun or srun (docs/running.md, "Stopping a run").
        """)

    @Option(help: "Run configuration (TOML subset; docs/federation.md, `--list-keys`).")
    var config: String?

    @Option(help: "Run directory for checkpoints and metrics (default: runs/<config name>).")
    var out: String?

    @Option(help: "Resume the run in this directory from its newest complete checkpoint.")
    var resume: String?

    @OptionGroup var engine: ThreadOptions

    @Flag(help: "Print every config key with its type, default and meaning, then exit.")
    var listKeys = false

    @Option(name: .customLong("exclude-client"),
            help: ArgumentHelp("With --resume: client K trains no more from the next round on (repeat for several). It still receives the shared result and is evaluated; the round files and metrics.h5 record it, and later resumes keep it.", valueName: "K"))
    var excludeClients: [Int] = []

    @Option(help: ArgumentHelp("Act as if SIGUSR1 arrived during this round (tests of the stop/resume path).", visibility: .hidden))
    var stopAfterRound: Int?

    @Option(help: ArgumentHelp("Seconds a stop by SIGTERM, SIGINT or SIGUSR2 may take: the round in progress commits if it can within them, and every rank exits \(StopSignal.exitCode) at the end of them regardless (default: PILOT_STOP_GRACE, else \(Int(StopSignal.defaultGrace)); keep it below the time the launcher allows before SIGKILL, e.g. Slurm's KillWait).", valueName: "SECONDS"))
    var stopGrace: Double?

    func validate() throws {
        if listKeys { return }
        if config == nil && resume == nil { throw ValidationError("give --config FILE to start a run, or --resume RUN_DIR to continue one") }
        if resume != nil && out != nil { throw ValidationError("--out and --resume exclude each other: a resumed run stays in its directory") }
        if resume == nil && !excludeClients.isEmpty { throw ValidationError("--exclude-client goes with --resume: it leaves a client out of a run that has started") }
        if let stopGrace, !(stopGrace > 0 && stopGrace.isFinite) { throw ValidationError("--stop-grace \(stopGrace): expected a number of seconds > 0") }
    }

    func run() throws {
        if listKeys {
            for line in RunConfigSchema.listing { Console.out(line) }
            return
        }
        // The stop handler first: TERM or USR1 from the first moment on asks for the graceful stop
        // (after the first committed round) instead of killing the process without a word.
        let launch = LaunchEnvironment()
        let grace: Double
        do { grace = try StopSignal.grace(option: stopGrace) } catch {
            if launch.rank == 0 { Console.error("pilot train: \(error)") }
            throw ExitCode(1)
        }
        StopSignal.install(grace: grace, rank: launch.rank)
        try BLASPin.apply(config: config, resume: resume)
        // Everything that can be checked without MPI is checked first, on every rank; only
        // rank 0 prints, and every rank exits 1, so nothing waits on a collective.
        let runDir: String
        let cfg: RunConfig
        do {
            (cfg, runDir) = try prepare(launch: launch)
        } catch {
            if launch.rank == 0 || error is OwnFilesError {
                // a rank's own files: only that rank knows, so it says so itself
                Console.error("pilot train: \(error)")
            } else {
                // mpirun kills the whole job when the first rank exits non-zero; give rank 0 time
                // to print the reason before that happens. A rank still here after that saw what
                // rank 0 did not (another node's copy of a file): it says so itself, naming its host.
                let until = Date().addingTimeInterval(1.5)
                while Date() < until && !StopSignal.requested { usleep(20_000) }
                if !StopSignal.requested {
                    Console.error("pilot train: rank \(launch.rank) on host \(MPICommunicator.hostName): \(error)")
                }
            }
            throw ExitCode(1)
        }
        StopSignal.setRunDirectory(runDir)
        let threads = engine.configure()
        let world = try MPIRuntime.world()
        let indicator = PhaseIndicator()
        let loop = try RoundLoop(config: cfg, runDirectory: runDir, world: world) { event in
            switch event {
            case let .phase(round, phase): indicator.start(round: round, phase: phase.rawValue)
            case let .message(line): indicator.clear(); Console.out(line)
            case let .committed(round): indicator.clear(); Console.out(round.line)
            }
        }
        loop.simulateStopAfterRound = stopAfterRound
        loop.excludedClients = Set(excludeClients)
        if world.isRoot {
            let run = try RunSettings(cfg).run
            Console.out("pilot train: \(run.algorithm.rawValue) on \(run.data) with \(loop.clientCount) clients on \(world.size - 1) client rank(s), \(loop.settings.rounds) rounds, \(threads) → \(runDir)")
        }
        let outcome = try loop.run(resume: resume != nil)
        if world.isRoot, case .finished = outcome {
            Console.out(try ResultsTable.render(run: runDir))
        }
        if case .stopped = outcome { throw ExitCode(StopSignal.exitCode) }
    }

    /// Loads and validates the config, checks the world size and the data files, and prepares
    /// the run directory. No MPI.
    func prepare(launch: LaunchEnvironment) throws -> (RunConfig, String) {
        let runDir: String
        let cfg: RunConfig
        if let resume {
            runDir = resume
            let saved = runDir + "/config.toml"
            guard FileManager.default.fileExists(atPath: saved) else {
                throw PilotError.message("'\(runDir)' is not a run directory (no config.toml); start a run with --config")
            }
            let original = try RunConfig(file: ConfigFile(path: saved))
            if let config {
                let given = try RunConfig(file: ConfigFile(path: config))
                // a client's LoRA rank first: its state holds factors of that rank
                let (then, now) = (try RunSettings(original), try RunSettings(given))
                if let k = try? ScenarioDirectory(path: then.run.data).clientCount {
                    try now.checkResumedRanks(before: then, recorded: [], clients: k, run: runDir) {
                        try BaseCheckpoint.readMetadata(path: then.run.base).config.loraRank
                    }
                }
                if given.values != original.values {
                    throw PilotError.message("refusing to resume \(runDir) with \(config): these keys differ from the run's config:\n  "
                                             + given.differences(from: original).joined(separator: "\n  "))
                }
            }
            var resumed = original
            // faults.* are not part of the run's identity: a resume may change or drop them
            if let config { resumed.faults = try RunConfig(file: ConfigFile(path: config)).faults }
            cfg = resumed
            guard try RoundCheckpoint.latestRound(run: runDir) != nil else {
                throw PilotError.message("'\(runDir)' has no complete checkpoint yet; start it again with --config \(saved) --out \(runDir)")
            }
        } else {
            let path = config!
            cfg = try RunConfig(file: ConfigFile(path: path))
            runDir = out ?? "runs/" + URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            if (try? RoundCheckpoint.latestRound(run: runDir)) ?? nil != nil {
                throw PilotError.message("'\(runDir)' already holds checkpoints; continue it with --resume \(runDir), or choose another --out")
            }
        }
        let typed = try RunSettings(cfg)
        let scenario = try ScenarioDirectory(path: typed.run.data)
        let k = scenario.clientCount
        // The placement (which rank hosts which clients) and the sample size, before MPI starts.
        let placement = try typed.placement(clients: k, worldSize: launch.size ?? (k + 1), clientTasks: scenario.clientTasks.map(\.rawValue))
        if !FileManager.default.isReadableFile(atPath: typed.run.base) {
            throw PilotError.message("missing or unreadable data files:\n  " + typed.run.base + " (create it with `pilot pretrain`)")
        }
        let first = typed.eval.firstExample
        if first > 0 {
            for t in scenario.tasks where FileManager.default.isReadableFile(atPath: scenario.testPath(t)) {
                let n = try scenario.test(t).examples.count
                if first >= n {
                    throw PilotError.message("eval.first_example = \(first) is past the end of \(scenario.testPath(t)) (\(n) examples): use a value below \(n)")
                }
            }
        }
        // Each rank checks the files it will read: its own clients' shards and their tasks' test splits
        // (a cluster may keep each client's data on its own node only; rank 0 reads neither). Only that
        // rank knows, so it reports them itself.
        let mine = launch.size == nil ? 0..<k : placement.clients(onRank: launch.rank)
        var missing: [String] = []
        for c in mine where !FileManager.default.isReadableFile(atPath: scenario.clientPath(c)) { missing.append("client \(c): \(scenario.clientPath(c))") }
        for t in Set(mine.map { scenario.clientTasks[$0] }).sorted(by: { $0.rawValue < $1.rawValue })
        where !FileManager.default.isReadableFile(atPath: scenario.testPath(t)) { missing.append(scenario.testPath(t)) }
        if !missing.isEmpty {
            throw OwnFilesError(message: "missing or unreadable data files on \(placement.label(launch.rank)) on host \(MPICommunicator.hostName):\n  " + missing.joined(separator: "\n  "))
        }
        if launch.rank == 0 && resume == nil {
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
            let dest = runDir + "/config.toml"
            if FileManager.default.fileExists(atPath: dest) { try FileManager.default.removeItem(atPath: dest) }
            try cfg.effectiveFile.write(toFile: dest, atomically: true, encoding: .utf8)
        }
        return (cfg, runDir)
    }
}

/// A problem with the files only this rank reads (its own clients' shards): printed by this rank.
struct OwnFilesError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// What the launcher (mpirun, srun) tells a process before MPI starts.
struct LaunchEnvironment {
    let rank: Int
    let size: Int?
    init() {
        let env = ProcessInfo.processInfo.environment
        rank = Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? env["SLURM_PROCID"] ?? env["PMI_RANK"] ?? "0") ?? 0
        let s = env["OMPI_COMM_WORLD_SIZE"] ?? env["SLURM_NTASKS"] ?? env["PMI_SIZE"]
        size = s.flatMap(Int.init) ?? (env["PMIX_RANK"] == nil ? 1 : nil)
    }
}
