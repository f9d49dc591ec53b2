import Foundation
import PilotComm
import PilotCore
import PilotHDF5
import PilotTensor

/// Round checkpoints of a run directory (docs/design.md §7):
///
///     RUN/ckpt/round_003.h5               written by rank 0, committed last
///       attrs  format, round, stage, algorithm, config (effective text), config_sha256, seed,
///              clients, rng (how data order is derived), client_files_sha256; no world size: the
///              results do not depend on it, and a run may resume on another one
///       /server/...                       the strategy's server state (e.g. Pilot's T task adapters,
///                                         connector/task_adapters/<t>/…), each tensor with its shape
///       /clients/<k>  → external link to round_003/client_<k>.h5:/   (h5py follows it)
///     RUN/ckpt/round_003/client_<k>.h5    written by client k's own rank
///       attrs  round, client, task, samples, rng_seed
///       /state/<parameter name>           the client's state: its trainable and personalised tensors,
///                                         each with its shape (format_version 1 stored them flat)
///     RUN/ckpt/latest                     "round_003.h5", replaced atomically after the commit
///
/// Each client writes its own file, so the client adapter never leaves its rank, yet the round
/// file presents every client's state. Every file is committed atomically with per-dataset
/// SHA-256; the round file is committed only after every client file (barrier), and `latest`
/// only after the round file, so a round is complete exactly when `latest` names it.
public enum RoundCheckpoint {
    public static let format = "pilot-round"
    /// 2: every state tensor is stored with its shape, and Pilot's server state is named like the
    /// model's task-adapter slots. Version 1 files (flat tensors, `task_adapters/<t>`) still resume.
    public static let formatVersion: Int64 = 2

    public static func directory(_ run: String) -> String { run + "/ckpt" }
    public static func roundFile(_ run: String, _ round: Int) -> String { directory(run) + "/" + roundName(round) }
    public static func roundName(_ round: Int) -> String { String(format: "round_%03d.h5", round) }
    public static func clientFile(_ run: String, _ round: Int, _ client: Int) -> String {
        directory(run) + "/" + clientRelative(round, client)
    }
    static func clientRelative(_ round: Int, _ client: Int) -> String { String(format: "round_%03d/client_%02d.h5", round, client) }

    public struct Metadata: Sendable {
        public var round: Int
        public var stage: Int
        public var algorithm: String
        public var configText: String
        public var configHash: String
        public var seed: Int
        /// OpenBLAS's kernel and the engine's threads per rank: the bits depend on both.
        public var blasCore: String = BLASRuntime.coreName
        public var threads: Int = Parallel.threads
        /// SHA-256 of the base checkpoint the run trains from ("" in files from before it was recorded).
        public var baseHash: String = ""
        /// What a bf16 base's products ran on (`BF16Kernel.runName`); "" for every other run, whose files
        /// are as before.
        public var bf16Kernel: String = ""
        /// Clients left out of training from some round on (`pilot train --resume --exclude-client`);
        /// stored only when there are some, so other runs' files are as before.
        public var excludedClients: [Int] = []
        /// Each client's LoRA rank under `model.lora_ranks` (stored only then); a resume refuses to change one.
        public var loraRanks: [Int] = []

        public init(round: Int, stage: Int, algorithm: String, configText: String, configHash: String, seed: Int) {
            self.round = round; self.stage = stage; self.algorithm = algorithm
            self.configText = configText; self.configHash = configHash; self.seed = seed
        }
    }

    /// Collective. Clients write their own files; rank 0 writes the round file and `latest`.
    /// The deterministic part of a round's metrics row, kept in the round file (`/metrics/…`) so that
    /// metrics.h5 can be rebuilt: every `ClientRoundMetrics` field except the seconds, per client, and the
    /// server's bytes.
    public struct StoredMetrics {
        public var clients: [ClientRoundMetrics]
        /// The server's bytes sent and received.
        public var server: [Double]
        public init(clients: [ClientRoundMetrics], server: [Double]) { self.clients = clients; self.server = server }
        static var fields: [String] { ClientRoundMetrics.fields.filter { !$0.hasPrefix("seconds_") } }
    }

    public static func write(run: String, metadata m: Metadata, federation: Federation, clientStates: [Int: NamedTensors],
                             clientSeed: (Int) -> UInt64, serverState: NamedTensors, metrics: StoredMetrics? = nil,
                             shardHash: (Int) -> String = { _ in "" }, at point: (String) -> Void = { _ in }) throws {
        let dir = directory(run)
        // Each rank writes its own clients' files; a failure (a full disk, say) is reported once, by rank 0,
        // for every rank it hit, and the round is not committed.
        let mine = federation.localClients
        let digest = try RankCheck.run("writing round \(m.round)'s client files", on: federation.world,
                                       label: { federation.placement.label($0) }) { () -> String in
            var digests: [String] = []
            for client in mine {
                let state = clientStates[client] ?? NamedTensors()
                let path = clientFile(run, m.round, client)
                if client == mine.lowerBound {
                    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                }
                let f = try H5File.create(path)
                try f.setAttribute("format", .string("pilot-client-state"))
                try f.setAttribute("round", .int(Int64(m.round)))
                try f.setAttribute("client", .int(Int64(client)))
                try f.setAttribute("task", .int(Int64(federation.clientTasks[client])))
                try f.setAttribute("samples", .int(Int64(federation.clientSamples[client])))
                try f.setAttribute("rng_seed", .int(Int64(bitPattern: clientSeed(client))))
                try f.setAttribute("shard_sha256", .string(shardHash(client)))
                try write(state, into: f, under: "state/")
                try f.commit()
                digests.append(try fileDigest(path))
            }
            return digests.joined(separator: "\n")
        }
        // Client files must be on disk before the round file names them.
        let perRank = try federation.world.gatherv(Array(digest.utf8), root: 0)
        if federation.isServer {
            // ranks hold contiguous blocks of clients, so rank order is client order
            let digests = perRank.dropFirst().flatMap { String(decoding: $0, as: UTF8.self).split(separator: "\n").map(String.init) }
            guard digests.count == federation.clientCount else {
                throw PilotError.message("round \(m.round): \(digests.count) client files were written for \(federation.clientCount) clients")
            }
            point("after_client_files")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let f = try H5File.create(roundFile(run, m.round))
            let attributes: [(String, H5AttributeValue)] = [
                ("format", .string(format)), ("format_version", .int(formatVersion)), ("round", .int(Int64(m.round))),
                ("stage", .int(Int64(m.stage))), ("algorithm", .string(m.algorithm)), ("config", .string(m.configText)),
                ("config_sha256", .string(m.configHash)), ("seed", .int(Int64(m.seed))),
                ("blas_core", .string(m.blasCore)), ("engine_threads", .int(Int64(m.threads))), ("base_sha256", .string(m.baseHash)),
                ("clients", .int(Int64(federation.clientCount))),
                ("rng", .string("client k's data order in round r comes from PilotRNG seeded with SplitMix64(f(seed, r, k)), one shuffle per epoch; each client's seed is stored in its file as rng_seed")),
                ("client_files_sha256", .strings(digests)),
            ] + (m.excludedClients.isEmpty ? [] : [("excluded_clients", .ints(m.excludedClients.map(Int64.init)))])
              + (m.loraRanks.isEmpty ? [] : [("lora_ranks", .ints(m.loraRanks.map(Int64.init)))])
              + (m.bf16Kernel.isEmpty ? [] : [("bf16_kernel", .string(m.bf16Kernel))])
            for (name, value) in attributes { try f.setAttribute(name, value) }
            // datasets carry their own SHA-256; this covers the root attributes (#18 item 4)
            try f.setAttribute(attributesDigestName, .string(attributesDigest(attributes)))
            try f.write(federation.clientSamples.map(Int64.init), shape: [federation.clientCount], at: "federation/client_samples")
            try f.write(federation.clientTasks.map(Int64.init), shape: [federation.clientCount], at: "federation/client_tasks")
            try write(serverState, into: f, under: "server/")
            if let metrics {
                for field in StoredMetrics.fields where !ClientRoundMetrics.optionalFields.contains(field) || metrics.clients.contains(where: { !$0[field].isNaN }) {
                    try f.write(metrics.clients.map { $0[field] }, shape: [metrics.clients.count], at: "metrics/clients/" + field)
                }
                try f.write(metrics.server, shape: [metrics.server.count], at: "metrics/server/bytes_sent_received")
            }
            do {
                for k in 0..<federation.clientCount {
                    try f.linkExternal(at: String(format: "clients/%02d", k), file: clientRelative(m.round, k))
                }
            }
            try f.commit()
            point("after_round_file")
            try writeLatest(run: run, round: m.round)
            point("after_latest")
        }
        try federation.world.barrier()
    }

    /// Held while `latest` is renamed. The stop watchdog (PilotFederation's StopSignal) takes it
    /// for good before it reads `latest` and ends the process, so the round it reports as the last
    /// committed one is the one on disk.
    public static let latestLock = NSLock()

    static func writeLatest(run: String, round: Int) throws {
        let dir = directory(run)
        let tmp = dir + "/.latest.tmp-\(getpid())"
        try (roundName(round) + "\n").write(toFile: tmp, atomically: false, encoding: .utf8)
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        latestLock.lock()
        let renamed = rename(tmp, dir + "/latest") == 0
        let err = errno
        latestLock.unlock()
        guard renamed else {
            throw PilotError.message("cannot update '\(dir)/latest': \(String(cString: strerror(err)))")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Whether `name` is one of the temporary files a commit writes before its atomic rename
    /// (`.client_03.h5.tmp-PID-N`, `.round_002.h5.tmp-PID-N`, `.latest.tmp-PID`).
    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tmp-") }

    /// Deletes the temporary files that killed commits left in the run's checkpoint directory and its
    /// round folders; returns their paths relative to it. Call only while nothing writes the run.
    @discardableResult
    public static func removeStaleTemporaries(run: String) -> [String] {
        let fm = FileManager.default, dir = directory(run)
        var removed: [String] = []
        func sweep(_ sub: String) {
            let path = sub.isEmpty ? dir : dir + "/" + sub
            guard let names = try? fm.contentsOfDirectory(atPath: path) else { return }
            for n in names.sorted() {
                var isDir: ObjCBool = false
                let full = path + "/" + n
                guard fm.fileExists(atPath: full, isDirectory: &isDir) else { continue }
                if isDir.boolValue {
                    if sub.isEmpty && n.hasPrefix("round_") { sweep(n) }
                } else if isTemporary(n), (try? fm.removeItem(atPath: full)) != nil {
                    removed.append(sub.isEmpty ? n : sub + "/" + n)
                }
            }
        }
        sweep("")
        return removed
    }

    /// The newest complete round of a run directory, or nil if none was committed.
    public static func latestRound(run: String) throws -> Int? {
        let path = directory(run) + "/latest"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard name.hasPrefix("round_"), name.hasSuffix(".h5"), let r = Int(name.dropFirst(6).dropLast(3)) else {
            // Removing `latest` would restart the run and throw away every committed round: point at
            // the newest round file that is still intact instead.
            let shown = name.count > 60 ? String(name.prefix(60)) + "…" : name
            if let good = newestIntactRound(run: run) {
                throw PilotError.message("'\(path)' does not name a round file (it holds '\(shown)'). The newest intact round file is \(roundName(good)): write its name into it (echo \(roundName(good)) > \(path)), check it with `pilot inspect --verify \(roundFile(run, good))`, and --resume again; do not remove it, which would restart the run and discard the committed rounds")
            }
            throw PilotError.message("'\(path)' does not name a round file (it holds '\(shown)'), and \(directory(run)) has no intact round file to point it at; remove it to restart the run")
        }
        return r
    }

    /// The newest round in a run's ckpt directory whose round file opens and whose root attributes
    /// match their SHA-256 (nil if none).
    public static func newestIntactRound(run: String) -> Int? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory(run))) ?? []
        let rounds = names.compactMap { n -> Int? in
            guard n.hasPrefix("round_"), n.hasSuffix(".h5") else { return nil }
            return Int(n.dropFirst(6).dropLast(3))
        }
        for r in rounds.sorted(by: >) {
            guard let f = try? H5File.open(roundFile(run, r), checksums: .skip) else { continue }
            defer { f.close() }
            if (try? attributesIntact(f)) == .some(true) { return r }
        }
        return nil
    }

    /// The client files of an open round file (at `path`) whose whole-file SHA-256 differs from the
    /// one the round file recorded (`client_files_sha256`, what --resume checks before it loads
    /// them); an attribute edited in a client file changes no dataset checksum but shows here. A
    /// client file that cannot be read is left out (the caller reports its link as broken).
    public static func clientFileMismatches(_ f: H5File, path: String) throws -> [(client: Int, file: String, expected: String, actual: String)] {
        guard case let .strings(digests)? = try f.attribute("client_files_sha256"), let round = try f.attribute("round")?.intValue else { return [] }
        let dir = (path as NSString).deletingLastPathComponent
        var out: [(client: Int, file: String, expected: String, actual: String)] = []
        for (k, expected) in digests.enumerated() where !expected.isEmpty {
            let file = (dir.isEmpty ? "." : dir) + "/" + clientRelative(Int(round), k)
            guard let actual = try? fileDigest(file) else { continue }
            if actual != expected { out.append((k, file, expected, actual)) }
        }
        return out
    }

    /// SHA-256 of a whole file.
    public static func fileDigest(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw PilotError.notFound(file: path, object: "") }
        return data.withUnsafeBytes { SHA256.hex($0) }
    }

    static let attributesDigestName = "attributes_sha256"

    /// SHA-256 over the root attributes, sorted by name, each as name, a type tag and its value's bytes
    /// (doubles by bit pattern), so any change to one (round, config, seed, …) shows.
    static func attributesDigest(_ attributes: [(String, H5AttributeValue)]) -> String {
        var h = SHA256()
        func add(_ s: String) { h.update(Array(s.utf8)); h.update([0]) }
        for (name, value) in attributes.sorted(by: { $0.0 < $1.0 }) where name != attributesDigestName {
            add(name)
            switch value {
            case let .int(v): add("i"); add(String(v))
            case let .double(v): add("d"); add(String(v.bitPattern, radix: 16))
            case let .string(v): add("s"); add(v)
            case let .ints(v): add("I"); for x in v { add(String(x)) }
            case let .doubles(v): add("D"); for x in v { add(String(x.bitPattern, radix: 16)) }
            case let .strings(v): add("S"); add(String(v.count)); for x in v { add(x) }
            }
        }
        return SHA256.hex(h.finalize())
    }

    /// Whether an open file's root attributes still match their `attributes_sha256` (nil: the file has none).
    public static func attributesIntact(_ f: H5File) throws -> Bool? {
        guard let stored = try f.attribute(attributesDigestName)?.stringValue else { return nil }
        var attributes: [(String, H5AttributeValue)] = []
        for name in try f.attributeNames(at: "/") where name != attributesDigestName {
            if let v = try f.attribute(name) { attributes.append((name, v)) }
        }
        return attributesDigest(attributes) == stored
    }

    /// The metrics row a round file keeps (nil for a round file written before it kept one), as a
    /// `MetricsLog` row: the seconds are NaN, and so are the server's seconds.
    public static func readMetrics(run: String, round: Int) throws -> (stage: Int, clients: [ClientRoundMetrics], server: [Double])? {
        let path = roundFile(run, round)
        let f = try H5File.open(path)
        defer { f.close() }
        guard f.exists("metrics/clients/loss_total") else { return nil }
        let stage = Int(try f.attribute("stage")?.intValue ?? 0)
        var columns: [String: [Double]] = [:]
        for field in StoredMetrics.fields where f.exists("metrics/clients/" + field) {
            columns[field] = try f.read(Double.self, at: "metrics/clients/" + field).values
        }
        let k = columns["loss_total"]?.count ?? 0
        let clients = (0..<k).map { c in
            var row = ClientRoundMetrics()
            for (field, v) in columns { row[field] = v[c] }
            return row
        }
        let bytes = try f.read(Double.self, at: "metrics/server/bytes_sent_received").values
        let server = MetricsLog.serverFields.map { field -> Double in
            field == "bytes_sent" ? (bytes.first ?? .nan) : field == "bytes_received" ? (bytes.count > 1 ? bytes[1] : .nan) : .nan
        }
        return (stage, clients, server)
    }

    /// Rank 0's view of a committed round: metadata and server state.
    public static func readRound(run: String, round: Int) throws -> (metadata: Metadata, server: NamedTensors, clientDigests: [String]) {
        let path = roundFile(run, round)
        let f = try H5File.open(path)
        defer { f.close() }
        guard try f.attribute("format")?.stringValue == format else {
            throw PilotError.message("'\(path)' is not a pilot round checkpoint")
        }
        func int(_ k: String) throws -> Int {
            guard let v = try f.attribute(k)?.intValue else { throw PilotError.notFound(file: path, object: "attribute \(k)") }
            return Int(v)
        }
        func str(_ k: String) throws -> String {
            guard let v = try f.attribute(k)?.stringValue else { throw PilotError.notFound(file: path, object: "attribute \(k)") }
            return v
        }
        if try attributesIntact(f) == false {
            throw PilotError.message("the root attributes of '\(path)' (round, stage, config, seed, …) changed since pilot wrote them: their SHA-256 does not match. The checkpoint is corrupt or was edited; restore it, or resume from an earlier round by writing its name (e.g. \(roundName(max(1, round - 1)))) into \(directory(run))/latest")
        }
        var m = Metadata(round: try int("round"), stage: try int("stage"), algorithm: try str("algorithm"),
                         configText: try str("config"), configHash: try str("config_sha256"), seed: try int("seed"))
        // files from before the kernel was recorded: unknown
        m.blasCore = try f.attribute("blas_core")?.stringValue ?? ""
        m.threads = Int(try f.attribute("engine_threads")?.intValue ?? 0)
        m.baseHash = try f.attribute("base_sha256")?.stringValue ?? ""
        m.bf16Kernel = try f.attribute("bf16_kernel")?.stringValue ?? ""
        if case let .ints(e)? = try f.attribute("excluded_clients") { m.excludedClients = e.map(Int.init) }
        if case let .ints(r)? = try f.attribute("lora_ranks") { m.loraRanks = r.map(Int.init) }
        guard SHA256.hex(Array(m.configText.utf8)) == m.configHash else {
            throw PilotError.message("the config stored in '\(path)' does not match its SHA-256 (config_sha256): the file is corrupt, not your config changed. Restore it, or resume from an earlier round by writing its name into \(directory(run))/latest")
        }
        guard m.round == round else {
            throw PilotError.message("'\(path)' says it is round \(m.round), but its name says round \(round): the checkpoint is corrupt or was renamed")
        }
        let server = try read(f, under: "server")
        var digests: [String] = []
        if case let .strings(d)? = try f.attribute("client_files_sha256") { digests = d }
        return (m, server, digests)
    }

    /// A client's own state file of a round, verified against the digest the round file recorded.
    /// The SHA-256 of the shard a client's file of `round` was trained on (nil: not recorded).
    public static func readShardHash(run: String, round: Int, client: Int) throws -> String? {
        let f = try H5File.open(clientFile(run, round, client))
        defer { f.close() }
        return try f.attribute("shard_sha256")?.stringValue
    }

    public static func readClient(run: String, round: Int, client: Int, expectedDigest: String?) throws -> NamedTensors {
        let path = clientFile(run, round, client)
        if let expectedDigest, !expectedDigest.isEmpty {
            let actual = try fileDigest(path)
            guard actual == expectedDigest else {
                throw PilotError.checksumMismatch(file: path, dataset: "(whole file, as recorded in \(roundName(round)))", expected: expectedDigest, actual: actual)
            }
        }
        let f = try H5File.open(path)
        defer { f.close() }
        return try read(f, under: "state")
    }

    /// Every tensor as a dataset of its shape at `prefix` + its name, in name order.
    static func write(_ tensors: NamedTensors, into f: H5File, under prefix: String) throws {
        for (i, name) in tensors.names.enumerated().sorted(by: { $0.element < $1.element }).map({ ($0.offset, $0.element) }) {
            try f.write(Array(tensors[name]!), shape: tensors.shapes[i], at: prefix + name)
        }
    }

    /// The datasets under `group` as named tensors with their shapes, in name order (none if there is no such group).
    static func read(_ f: H5File, under group: String) throws -> NamedTensors {
        var out = NamedTensors()
        guard f.isGroup(group) else { return out }
        for p in try f.datasetPaths(under: group).sorted() {
            let a = try f.read(Float.self, at: p)
            try out.append(String(p.dropFirst(group.count + 2)), shape: a.shape, values: a.values)
        }
        return out
    }
}
