import Foundation
import PilotCore
import PilotHDF5

/// What a shard file holds besides its examples (root attributes of the file).
public struct ShardMetadata: Equatable, Sendable {
    /// "client", "test", "pretrain" or "imported".
    public var split: String
    /// The task of every example, or "mixed" (the pretraining split).
    public var task: String
    /// Client index 0..<K for client shards, else -1.
    public var client: Int
    /// "vu", "gvqa" or "" for imported data.
    public var scenario: String
    public var seed: Int64
    /// Where the data came from: the generator and its version, or the imported JSON file.
    public var source: String

    public init(split: String, task: String, client: Int = -1, scenario: String = "", seed: Int64 = 0, source: String) {
        self.split = split; self.task = task; self.client = client; self.scenario = scenario; self.seed = seed; self.source = source
    }
}

/// One HDF5 file of examples: a client's shard, a task's test split or the pretraining split.
///
/// Layout (every dataset carries the store's `sha256` attribute; strings are UTF-8):
///
///     /                      attrs format="pilot-fedmit-shard", format_version=1, split, task,
///                                  client, scenario, seed, source, count, image_height, image_width
///     /images                uint8 [n, H, W, 3]
///     /ids                   string [n]   example ids
///     /image_ids             string [n]   image file names (`<id>.png` for generated data)
///     /tasks                 string [n]   task of each example
///     /categories            string [n]   question family ("vqa/count", …, "imported")
///     /instructions          string [n]   the human turn, without the <image> tag
///     /answers               string [n]   the gpt turn (the training target)
///     /references            string [m]   every example's references, concatenated
///     /reference_offsets     int64 [n+1]  references of example i are [off[i], off[i+1])
///
/// Written only when needed, so that generated shards are byte-identical to those of earlier versions
/// (readers that do not know them still read the first exchange of every example):
///
///     /turns                 string [m]   follow-up exchanges, human and gpt alternating
///     /turn_offsets          int64 [n+1]  exchanges of example i are turns[off[i]:off[i+1]] (pairs)
///     /eval_turns            int64 [n]    the exchange each example is scored on (0 = first)
///     /@task_metrics         strings      "name=metric" for every task that is not built in
public struct Shard: Equatable, Sendable {
    public static let format = "pilot-fedmit-shard"
    public static let formatVersion: Int64 = 1

    public var metadata: ShardMetadata
    public var examples: [Example]

    public init(metadata: ShardMetadata, examples: [Example]) {
        self.metadata = metadata
        self.examples = examples
    }

    /// Writes the shard atomically (temp file + rename through the HDF5 store).
    public func write(to path: String) throws {
        guard let first = examples.first else {
            throw PilotError.invalidArgument("shard '\(path)': refusing to write a shard with no examples")
        }
        let h = first.image.height, w = first.image.width
        for e in examples where e.image.height != h || e.image.width != w {
            throw PilotError.invalidArgument("shard '\(path)': example '\(e.id)' has a \(e.image.height)x\(e.image.width) image, the first has \(h)x\(w); resize images to one size first")
        }
        let f = try H5File.create(path)
        var images = [UInt8]()
        images.reserveCapacity(examples.count * h * w * 3)
        for e in examples { images += e.image.pixels }
        try f.write(images, shape: [examples.count, h, w, 3], at: "/images")
        try f.write(strings: examples.map(\.id), at: "/ids")
        try f.write(strings: examples.map(\.imageID), at: "/image_ids")
        try f.write(strings: examples.map(\.task.rawValue), at: "/tasks")
        try f.write(strings: examples.map(\.category), at: "/categories")
        try f.write(strings: examples.map(\.instruction), at: "/instructions")
        try f.write(strings: examples.map(\.answer), at: "/answers")
        var offsets: [Int64] = [0]
        var refs: [String] = []
        for e in examples { refs += e.references; offsets.append(Int64(refs.count)) }
        try f.write(strings: refs, at: "/references")
        try f.write(offsets, shape: [offsets.count], at: "/reference_offsets")
        if examples.contains(where: { !$0.followUps.isEmpty }) {
            var turns: [String] = []
            var turnOffsets: [Int64] = [0]
            for e in examples {
                for x in e.followUps { turns.append(x.human); turns.append(x.gpt) }
                turnOffsets.append(Int64(turns.count))
            }
            try f.write(strings: turns, at: "/turns")
            try f.write(turnOffsets, shape: [turnOffsets.count], at: "/turn_offsets")
        }
        if examples.contains(where: { $0.evalTurn != 0 }) {
            try f.write(examples.map { Int64($0.evalTurn) }, shape: [examples.count], at: "/eval_turns")
        }
        let custom = Set(examples.map(\.task).filter { !$0.isBuiltin }).sorted()
        if !custom.isEmpty {
            try f.setAttribute("task_metrics", .strings(custom.map { "\($0.rawValue)=\($0.metric.rawValue)" }))
        }
        let m = metadata
        try f.setAttribute("format", .string(Self.format))
        try f.setAttribute("format_version", .int(Self.formatVersion))
        try f.setAttribute("split", .string(m.split))
        try f.setAttribute("task", .string(m.task))
        try f.setAttribute("client", .int(Int64(m.client)))
        try f.setAttribute("scenario", .string(m.scenario))
        try f.setAttribute("seed", .int(m.seed))
        try f.setAttribute("source", .string(m.source))
        try f.setAttribute("count", .int(Int64(examples.count)))
        try f.setAttribute("image_height", .int(Int64(h)))
        try f.setAttribute("image_width", .int(Int64(w)))
        try f.commit()
    }

    /// Reads a shard written by `write(to:)`, checking checksums, the format and that every
    /// dataset has one entry per example.
    public static func read(path: String) throws -> Shard {
        let f = try H5File.open(path)
        defer { f.close() }
        guard case .string(let fmt)? = try f.attribute("format"), fmt == format else {
            throw PilotError.message("'\(path)' is not a FedMIT shard (root attribute format != \"\(format)\"); write shards with `pilot data generate` or `pilot data import`")
        }
        if let v = try f.attribute("format_version")?.intValue, v > formatVersion {
            throw PilotError.message("shard '\(path)' has format_version \(v); this pilot reads up to \(formatVersion). Update pilot.")
        }
        func str(_ name: String) throws -> String {
            guard let v = try f.attribute(name)?.stringValue else { throw PilotError.notFound(file: path, object: "/@\(name)") }
            return v
        }
        func int(_ name: String) throws -> Int64 {
            guard let v = try f.attribute(name)?.intValue else { throw PilotError.notFound(file: path, object: "/@\(name)") }
            return v
        }
        let meta = ShardMetadata(split: try str("split"), task: try str("task"), client: Int(try int("client")),
                                 scenario: try str("scenario"), seed: try int("seed"), source: try str("source"))
        let images = try f.read(UInt8.self, at: "/images")
        guard images.shape.count == 4, images.shape[3] == 3 else {
            throw PilotError.typeMismatch(file: path, object: "/images", expected: "uint8 [n, H, W, 3]", found: "shape \(images.shape)")
        }
        let n = images.shape[0], h = images.shape[1], w = images.shape[2]
        func strings(_ name: String) throws -> [String] {
            let s = try f.readStrings(at: name)
            guard s.count == n else { throw PilotError.typeMismatch(file: path, object: name, expected: "\(n) strings", found: "\(s.count)") }
            return s
        }
        let ids = try strings("/ids"), imageIDs = try strings("/image_ids"), tasks = try strings("/tasks")
        let cats = try strings("/categories"), ins = try strings("/instructions"), ans = try strings("/answers")
        let refs = try f.readStrings(at: "/references")
        let off = try f.read(Int64.self, at: "/reference_offsets").values
        guard off.count == n + 1, off.first == 0, off.last == Int64(refs.count), zip(off, off.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw PilotError.typeMismatch(file: path, object: "/reference_offsets", expected: "\(n + 1) non-decreasing offsets from 0 to \(refs.count)", found: "\(off.count) values")
        }
        var followUps = [[Exchange]](repeating: [], count: n)
        if f.exists("/turns") {
            let turns = try f.readStrings(at: "/turns")
            let toff = try f.read(Int64.self, at: "/turn_offsets").values
            guard toff.count == n + 1, toff.first == 0, toff.last == Int64(turns.count), turns.count % 2 == 0,
                  zip(toff, toff.dropFirst()).allSatisfy({ $0 <= $1 && ($1 - $0) % 2 == 0 }) else {
                throw PilotError.typeMismatch(file: path, object: "/turn_offsets", expected: "\(n + 1) non-decreasing even offsets from 0 to \(turns.count)", found: "\(toff.count) values")
            }
            for i in 0..<n {
                followUps[i] = stride(from: Int(toff[i]), to: Int(toff[i + 1]), by: 2).map { Exchange(human: turns[$0], gpt: turns[$0 + 1]) }
            }
        }
        var evalTurns = [Int](repeating: 0, count: n)
        if f.exists("/eval_turns") {
            let v = try f.read(Int64.self, at: "/eval_turns").values
            guard v.count == n, v.enumerated().allSatisfy({ $0.element >= 0 && Int($0.element) <= followUps[$0.offset].count }) else {
                throw PilotError.typeMismatch(file: path, object: "/eval_turns", expected: "\(n) exchange indices within each conversation", found: "\(v.count) values")
            }
            evalTurns = v.map(Int.init)
        }
        var metricOf: [String: String] = [:]
        if case .strings(let list)? = try f.attribute("task_metrics") {
            for item in list {
                let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw PilotError.message("shard '\(path)' /@task_metrics: '\(item)' is not name=metric") }
                metricOf[kv[0]] = kv[1]
            }
        }
        var taskOf: [String: FedTask] = [:]
        var examples: [Example] = []
        examples.reserveCapacity(n)
        let px = h * w * 3
        for i in 0..<n {
            let task: FedTask
            if let t = taskOf[tasks[i]] { task = t } else {
                do { task = try FedTask.named(tasks[i], metric: metricOf[tasks[i]]) }
                catch { throw PilotError.message("shard '\(path)' /tasks[\(i)] (example '\(ids[i])'): \(error)") }
                taskOf[tasks[i]] = task
            }
            let img = try RGBImage(width: w, height: h, pixels: Array(images.values[(i * px)..<((i + 1) * px)]))
            examples.append(Example(id: ids[i], task: task, imageID: imageIDs[i], image: img, instruction: ins[i], answer: ans[i],
                                    references: Array(refs[Int(off[i])..<Int(off[i + 1])]), category: cats[i],
                                    followUps: followUps[i], evalTurn: evalTurns[i]))
        }
        return Shard(metadata: meta, examples: examples)
    }
}
