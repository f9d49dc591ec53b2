import Foundation
import PilotCore

/// `pilot-model.json`: what `pilot model import` wrote into a model directory, and from what.
/// The rest of the directory is a plain Hugging Face layout (config.json, model.safetensors in F32,
/// tokenizer.json, tokenizer_config.json), so transformers loads it as it is and so does every
/// `pilot … --model DIR` command. See docs/models.md.
public struct ModelManifest: Codable, Sendable, Equatable {
    public static let fileName = "pilot-model.json"
    public static let currentVersion = 1

    public var format = "pilot-model"
    public var version = ModelManifest.currentVersion
    /// What was imported: a GGUF file or a Hugging Face directory, as given on the command line.
    public var source: String
    /// `gguf` or `safetensors`.
    public var sourceFormat: String
    /// SHA-256 of the source file (GGUF) or of its weight files (safetensors), in the order read.
    public var sourceSHA256: [String: String]
    /// Stored element types of the source tensors and how many tensors had each (`Q4_1: 210`).
    public var sourceDTypes: [String: Int]
    /// The chat layout every command uses unless `--chat-format` says otherwise.
    public var chatFormat: String
    /// The default system prompt of the chat template, if it has a literal one.
    public var defaultSystemPrompt: String?
    public var parameters: Int
    /// SHA-256 of every file of the directory but this one, so a checkpoint that refers to the model
    /// can check that it is still the same.
    public var files: [String: String]
    public var importedBy: String
    /// The dtype the matrices were written in, `bf16` or `q8` (`pilot model import --dtype`); nil: F32.
    public var dtype: String? = nil

    enum CodingKeys: String, CodingKey {
        case format, version, source, parameters, files, dtype
        case sourceFormat = "source_format", sourceSHA256 = "source_sha256", sourceDTypes = "source_dtypes"
        case chatFormat = "chat_format", defaultSystemPrompt = "default_system_prompt", importedBy = "imported_by"
    }

    public static func read(directory: String) throws -> ModelManifest? {
        let path = directory + "/" + fileName
        guard let data = try readSmallFile(path, limit: smallFileLimit, what: "a pilot-model.json") else { return nil }
        do {
            let m = try JSONDecoder().decode(ModelManifest.self, from: data)
            guard m.format == "pilot-model", m.version <= currentVersion else {
                throw PilotError.invalidArgument("\(path): format '\(m.format)' version \(m.version) is not one this pilot reads (pilot-model version ≤ \(currentVersion)); re-import the model with this pilot")
            }
            return m
        } catch let e as PilotError { throw e } catch {
            throw PilotError.invalidArgument("\(path) is not a valid pilot model manifest (\(error)); re-run `pilot model import`")
        }
    }

    public func write(directory: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try atomicWrite(try enc.encode(self), to: directory + "/" + Self.fileName)
    }
}

/// SHA-256 of a file, read in 4 MiB pieces.
public func sha256(file path: String) throws -> String {
    guard let h = FileHandle(forReadingAtPath: path) else { throw PilotError.notFound(file: path, object: "") }
    defer { try? h.close() }
    var sha = SHA256()
    while let chunk = try h.read(upToCount: 4 << 20), !chunk.isEmpty { chunk.withUnsafeBytes { sha.update($0) } }
    return SHA256.hex(sha.finalize())
}

/// Writes `data` atomically (Foundation's temp file + rename, as the rest of the project does), so a
/// reader never sees a half-written file.
public func atomicWrite(_ data: Data, to path: String) throws {
    do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw PilotError.message("cannot write '\(path)': \(error.localizedDescription); check that the directory exists and is writable and that the disk has room")
    }
}
