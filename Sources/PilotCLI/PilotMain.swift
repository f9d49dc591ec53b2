import ArgumentParser
import PilotComm
import PilotCore

/// Entry point of the `pilot` executable: parse, run, and turn errors into exit codes.
///
/// Exit codes: 0 success; 1 a failure reported by the command (or a check failed);
/// 2 bad usage; when an error escapes one rank of a multi-rank job, that rank prints
/// "pilot: rank R of N: <error>" and calls MPI_Abort, which ends every rank of the job
/// (mpirun then exits non-zero), so no rank is left blocked in a collective.
public enum PilotMain {
    public static func run(arguments: [String]? = nil) -> Never {
        do {
            var command = try PilotCommand.parseAsRoot(arguments)
            let name = commandPath(type(of: command), under: PilotCommand.self)?.dropFirst().joined(separator: " ")
                ?? type(of: command).configuration.commandName ?? "pilot"
            do {
                try command.run()
            } catch let error as PilotError {
                throw CommandFailure(command: name, error: error)
            }
            MPIRuntime.finalize()
            exit(0)
        } catch let code as ExitCode {
            MPIRuntime.finalize()
            exit(code.rawValue)
        } catch let failure as CommandFailure {
            fail("in `pilot \(failure.command)`: \(failure.error)")
        } catch let error as PilotError {
            fail("\(error)")
        } catch where MPIRuntime.isInitialized && !MPIRuntime.isFinalized && !(error is CleanExit) {
            fail("\(error)")
        } catch {
            MPIRuntime.finalize()
            PilotCommand.exit(withError: error)
        }
    }

    /// The names from `root` down to `leaf` ("pilot", "export", "peft"), or nil when `leaf` is not under it.
    static func commandPath(_ leaf: any ParsableCommand.Type, under root: any ParsableCommand.Type) -> [String]? {
        let name = root.configuration.commandName ?? "\(root)"
        if leaf == root { return [name] }
        for sub in root.configuration.subcommands {
            if let rest = commandPath(leaf, under: sub) { return [name] + rest }
        }
        return nil
    }

    static func fail(_ message: String) -> Never {
        if MPIRuntime.isInitialized && !MPIRuntime.isFinalized && MPIRuntime.worldSize > 1 {
            MPIRuntime.abortJob(message: message, code: 1)
        }
        Console.error("pilot: error: \(message)")
        MPIRuntime.finalize()
        exit(1)
    }
}

/// A command's error together with the command's name, so the message says what was running.
struct CommandFailure: Error {
    let command: String
    let error: PilotError
}

#if canImport(Glibc)
import Glibc
#endif
