import Foundation
import PilotCore

/// A fresh directory under the system temp dir, removed by `cleanup()`.
public struct TemporaryDirectory: Sendable {
    public let path: String
    public init(_ label: String = "pilot-test") {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/\(label)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { path + "/" + name }
    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Largest absolute difference between two arrays, and whether all are within `atol + rtol·|b|`.
public func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}

public func allClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-5, atol: Float = 1e-6) -> Bool {
    guard a.count == b.count else { return false }
    for i in a.indices where abs(a[i] - b[i]) > atol + rtol * abs(b[i]) { return false }
    return true
}

/// The repository root, found from this source file's location (Tests/PilotTestSupport/…).
public let repositoryRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

/// The release `pilot` binary that scripts/test.sh builds before the tests run
/// (override with PILOT_BIN).
public var pilotBinary: String {
    if let p = ProcessInfo.processInfo.environment["PILOT_BIN"], !p.isEmpty { return p }
    return repositoryRoot + "/.build/release/pilot"
}

/// Result of a child process.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public let seconds: Double
}

/// Runs a program with arguments. The child's environment is ours minus OMPI_* and PMIX_*
/// (an mpirun started inside an MPI job exits 1 silently otherwise), plus `environment`.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       currentDirectory: String? = nil, timeout: Double = 300) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
    for (k, v) in environment { env[k] = v }
    p.environment = env
    if let currentDirectory { p.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let dir = TemporaryDirectory("proc")
    defer { dir.cleanup() }
    FileManager.default.createFile(atPath: dir.file("out"), contents: nil)
    FileManager.default.createFile(atPath: dir.file("err"), contents: nil)
    let out = FileHandle(forWritingAtPath: dir.file("out"))!
    let err = FileHandle(forWritingAtPath: dir.file("err"))!
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    let start = Date()
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
        kill(-p.processIdentifier, SIGKILL)
        p.terminate()
        p.waitUntilExit()
    }
    p.waitUntilExit()
    try? out.close(); try? err.close()
    let so = (try? String(contentsOfFile: dir.file("out"), encoding: .utf8)) ?? ""
    let se = (try? String(contentsOfFile: dir.file("err"), encoding: .utf8)) ?? ""
    return ProcessResult(status: p.terminationReason == .uncaughtSignal ? -p.terminationStatus : p.terminationStatus,
                         stdout: so, stderr: se, seconds: Date().timeIntervalSince(start))
}

/// The flags every test mpirun needs on this machine: root, more ranks than cores, ranks that
/// yield when idle, single-threaded BLAS per rank.
public func mpirunArguments(np: Int) -> [String] {
    ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "\(np)",
     "-x", "OMPI_MCA_mpi_yield_when_idle=1", "-x", "OPENBLAS_NUM_THREADS=1"]
}

public var mpirunPath: String { "/usr/bin/mpirun" }

/// Held by every test that changes the engine's thread count (`Parallel.configure`) or compares bits
/// that depend on it: the tests of one run share one process, and sgemm's split follows the count.
public let engineThreadsLock = NSLock()
