import CMPI
import PilotCore
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide MPI lifetime: init once (guarded by MPI_Initialized, so tests and the CLI can
/// both call it), finalize once, and abort the whole job when a rank fails.
public enum MPIRuntime {
    /// True once MPI_Init has run in this process.
    public static var isInitialized: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    public static var isFinalized: Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    /// True when this process was started by mpirun/srun (so MPI_Init will join a job).
    public static var launchedByMPI: Bool {
        let env = ProcessEnvironment.all
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// Initialises MPI if needed and returns the world communicator. Errors return codes
    /// (MPI_ERRORS_RETURN) instead of aborting inside the library, so that every call can be
    /// checked and reported with its operation and rank.
    public static func world() throws -> MPICommunicator {
        try IdleWait.validateEnvironment()
        if !isInitialized {
            var provided: Int32 = 0
            let rc = MPI_Init_thread(nil, nil, pilot_MPI_THREAD_FUNNELED(), &provided)
            if rc != pilot_MPI_SUCCESS() {
                throw PilotError.mpi(operation: "MPI_Init_thread", rank: -1, code: rc,
                                     message: "MPI could not start; launch with mpirun or srun --mpi=pmix")
            }
        }
        let comm = pilot_MPI_COMM_WORLD()!
        MPI_Comm_set_errhandler(comm, pilot_MPI_ERRORS_RETURN())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(comm, &rank)
        MPI_Comm_size(comm, &size)
        return MPICommunicator(comm: comm, rank: Int(rank), size: Int(size), worldRank: Int(rank),
                               name: "world", owned: false)
    }

    public static func finalize() {
        if isInitialized && !isFinalized { MPI_Finalize() }
    }

    /// Rank of this process in MPI_COMM_WORLD, or 0 when MPI is not running.
    public static var worldRank: Int {
        guard isInitialized && !isFinalized else { return 0 }
        var r: Int32 = 0
        MPI_Comm_rank(pilot_MPI_COMM_WORLD(), &r)
        return Int(r)
    }

    public static var worldSize: Int {
        guard isInitialized && !isFinalized else { return 1 }
        var s: Int32 = 1
        MPI_Comm_size(pilot_MPI_COMM_WORLD(), &s)
        return Int(s)
    }

    /// Prints `message` to stderr, prefixed with this rank, and aborts every rank of the job.
    /// Used when an error escapes a rank: the other ranks may be blocked in a collective, and
    /// MPI_Abort is the only way to release them.
    public static func abortJob(message: String, code: Int32) -> Never {
        Console.error("pilot: rank \(worldRank) of \(worldSize): \(message)")
        if isInitialized && !isFinalized {
            MPI_Abort(pilot_MPI_COMM_WORLD(), code)
        }
        exit(code)
    }

    /// The host name as MPI reports it.
    public static var processorName: String {
        var buf = [CChar](repeating: 0, count: Int(pilot_MPI_MAX_PROCESSOR_NAME()) + 1)
        var len: Int32 = 0
        MPI_Get_processor_name(&buf, &len)
        return String(cBuffer: buf)
    }

    /// The MPI library's own version string.
    public static var libraryVersion: String {
        var buf = [CChar](repeating: 0, count: 8192)
        var len: Int32 = 0
        MPI_Get_library_version(&buf, &len)
        return String(cBuffer: buf).split(separator: "\n").first.map(String.init) ?? ""
    }
}

/// Environment access without Foundation in this layer.
public enum ProcessEnvironment {
    public static var all: [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
