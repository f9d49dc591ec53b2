import Foundation
import PilotCore

/// The largest JSON side file pilot reads whole (config.json, model.safetensors.index.json,
/// tokenizer_config.json): 16 MiB. Real ones take a few kilobytes (a 405B model's index: ~100 KB).
public let smallFileLimit = 16 << 20

/// The bytes of a file that is read whole (a JSON side file of a model), or nil when it does not exist.
/// A file above `limit` bytes is refused by name before it is read, so a mistaken or hostile
/// multi-gigabyte file never lands in memory (and in JSONSerialization, which needs several times as much).
public func readSmallFile(_ path: String, limit: Int, what: String) throws -> Data? {
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
    let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
    guard size <= limit else {
        throw PilotError.invalidArgument("\(path) is \(size) bytes, more than pilot reads for \(what) (\(limit) bytes); it is not the file it should be: download or save it again")
    }
    return FileManager.default.contents(atPath: path)
}

/// The largest tokenizer.json pilot reads: 128 MiB (SmolLM2's takes 2 MB, Gemma 3's 33 MB).
public let tokenizerFileLimit = 128 << 20
