import CZlib
import Foundation
import PilotCore

/// PNG encoding (previews, export) over zlib, and decoding through libpng (`ImageDecoder`).
///
/// The encoder stays hand-written: it is 30 lines, writes one fixed form (8-bit RGB, filter Sub,
/// zlib level 9) whose bytes the previews and exports rely on, and libpng would add nothing to it.
/// Decoding, where the variety of real files lives, is libpng's.
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    // MARK: encode

    /// An 8-bit RGB, non-interlaced PNG (filter Sub on every row, zlib level 9).
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        let rowBytes = image.width * 3
        var raw = [UInt8]()
        raw.reserveCapacity(image.height * (rowBytes + 1))
        image.pixels.withUnsafeBufferPointer { p in
            for y in 0..<image.height {
                raw.append(1)  // Sub: small differences compress better than raw noise-free pixels
                let row = y * rowBytes
                for x in 0..<rowBytes {
                    let left: UInt8 = x >= 3 ? p[row + x - 3] : 0
                    raw.append(p[row + x] &- left)
                }
            }
        }
        var destLen = compressBound(uLong(raw.count))
        var dest = [UInt8](repeating: 0, count: Int(destLen))
        let rc = raw.withUnsafeBufferPointer { src in
            dest.withUnsafeMutableBufferPointer { dst in
                compress2(dst.baseAddress, &destLen, src.baseAddress, uLong(src.count), 9)
            }
        }
        guard rc == Z_OK else { throw PilotError.message("PNG encode: zlib compress2 failed with code \(rc)") }
        dest.removeSubrange(Int(destLen)...)

        var out = signature
        var ihdr = [UInt8]()
        ihdr += be32(UInt32(image.width)) + be32(UInt32(image.height))
        ihdr += [8, 2, 0, 0, 0]  // bit depth 8, RGB, deflate, adaptive filtering, no interlace
        appendChunk(&out, "IHDR", ihdr)
        appendChunk(&out, "IDAT", dest)
        appendChunk(&out, "IEND", [])
        return out
    }

    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes = try encode(image)
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw PilotError.message("cannot write PNG '\(path)': \(error.localizedDescription). Check that the folder exists and is writable.") }
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

    static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        let t = Array(type.utf8)
        out += be32(UInt32(data.count)) + t + data + be32(crc(t + data))
    }

    // MARK: decode (libpng, through ImageDecoder)

    public static func read(path: String) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PilotError.notFound(file: path, object: "")
        }
        return try decode([UInt8](data), name: path)
    }

    /// Decodes a PNG with libpng (`ImageDecoder`); `name` is used in error messages. Alpha is
    /// composited over black, 16-bit samples keep their high byte.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>") throws -> RGBImage {
        guard ImageFormat.sniff(bytes) == .png else {
            throw PilotError.message("PNG '\(name)': not a PNG file (bad signature)")
        }
        return try ImageDecoder.decode(bytes, name: name).image
    }
}
