import Foundation
import PilotCore
import PilotTensor

/// A Hugging Face checkpoint directory as one `TensorSource`: `model.safetensors`, or the shards that
/// `model.safetensors.index.json` lists in its `weight_map` (`model-0000k-of-0000n.safetensors`).
public final class SafetensorsCheckpoint: TensorSource {
    public let path: String
    public let tensorInfos: [TensorInfo]
    public let files: [SafetensorsFile]
    let owner: [String: Int]

    public init(directory: String) throws {
        path = directory
        let single = directory + "/model.safetensors", indexPath = directory + "/model.safetensors.index.json"
        let fm = FileManager.default
        if fm.fileExists(atPath: indexPath) {
            guard let data = try readSmallFile(indexPath, limit: smallFileLimit, what: "a safetensors index"),
                  let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                  let map = obj["weight_map"] as? [String: String] else {
                throw PilotError.invalidArgument("\(indexPath) is not a safetensors index (a JSON object with a weight_map of tensor → shard file)")
            }
            let shards = Array(Set(map.values)).sorted()
            var opened: [SafetensorsFile] = []
            for s in shards {
                let p = directory + "/" + s
                guard fm.fileExists(atPath: p) else {
                    throw PilotError.invalidArgument("\(indexPath) lists shard '\(s)' but \(p) does not exist; download every shard of the checkpoint")
                }
                opened.append(try SafetensorsFile(path: p))
            }
            files = opened
            for (name, shard) in map {
                guard let f = opened.first(where: { $0.path == directory + "/" + shard }), f.info(name) != nil else {
                    throw PilotError.invalidArgument("\(indexPath) says tensor '\(name)' is in '\(shard)', but that shard has no such tensor; the index and the shards do not belong together")
                }
            }
        } else if fm.fileExists(atPath: single) {
            files = [try SafetensorsFile(path: single)]
        } else {
            throw PilotError.invalidArgument("\(directory) has neither model.safetensors nor model.safetensors.index.json; pilot reads safetensors checkpoints (save with save_pretrained(DIR, safe_serialization=True))")
        }
        var infos: [TensorInfo] = [], own: [String: Int] = [:]
        for (i, f) in files.enumerated() {
            for t in f.tensorInfos {
                if let j = own[t.name] {
                    throw PilotError.invalidArgument("tensor '\(t.name)' is in both \(files[j].path) and \(f.path)")
                }
                own[t.name] = i
                infos.append(t)
            }
        }
        tensorInfos = infos
        owner = own
    }

    public func info(_ name: String) -> TensorInfo? { owner[name].flatMap { files[$0].info(name) } }

    /// The shard that holds `name`; for a tensor that is missing, model.safetensors or the directory of the shards.
    public func location(of name: String) -> String {
        if let i = owner[name] { return files[i].path }
        return files.count == 1 ? files[0].path : path
    }

    public func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let i = owner[name] else { throw PilotError.notFound(file: path, object: name) }
        try files[i].readFloat32(name, into: out)
    }

    public func readEncoded(_ name: String, as dtype: BaseDType, into out: UnsafeMutableRawBufferPointer) throws {
        guard let i = owner[name] else { throw PilotError.notFound(file: path, object: name) }
        try files[i].readEncoded(name, as: dtype, into: out)
    }
}
