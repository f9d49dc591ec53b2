import CZlib
import Foundation
import PilotCore

/// PNG encoding (previews, export) and decoding (import) over zlib.
///
/// The decoder reads every standard PNG: colour types gray, RGB, palette, gray+alpha and
/// RGBA; bit depths 1–16; all five filter types; Adam7 interlacing; palette transparency
/// (tRNS). Images are returned as 8-bit RGB: 16-bit samples keep their high byte and alpha
/// is composited over black. Errors name the file and what is wrong with it.
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

    // MARK: decode

    public static func read(path: String) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PilotError.notFound(file: path, object: "")
        }
        return try decode([UInt8](data), name: path)
    }

    /// Decodes a PNG; `name` is used in error messages.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>") throws -> RGBImage {
        func fail(_ what: String) -> PilotError {
            PilotError.message("PNG '\(name)': \(what)")
        }
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else { throw fail("not a PNG file (bad signature)") }
        var pos = 8
        var width = 0, height = 0, depth = 0, colorType = -1, interlace = 0
        var palette: [RGB] = []
        var paletteAlpha: [UInt8] = []
        var idat = [UInt8]()
        var sawEnd = false
        func u32(_ p: Int) -> Int { Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3]) }
        while pos + 12 <= bytes.count {
            let len = u32(pos)
            guard len >= 0, pos + 12 + len <= bytes.count else { throw fail("truncated chunk at byte \(pos)") }
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            let data = Array(bytes[(pos + 8)..<(pos + 8 + len)])
            let stored = UInt32(u32(pos + 8 + len))
            guard crc(Array(bytes[(pos + 4)..<(pos + 8)]) + data) == stored else { throw fail("CRC mismatch in chunk \(type); the file is corrupt") }
            pos += 12 + len
            switch type {
            case "IHDR":
                guard len == 13 else { throw fail("IHDR has \(len) bytes, expected 13") }
                width = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
                height = Int(data[4]) << 24 | Int(data[5]) << 16 | Int(data[6]) << 8 | Int(data[7])
                depth = Int(data[8]); colorType = Int(data[9]); interlace = Int(data[12])
                guard data[10] == 0, data[11] == 0 else { throw fail("unknown compression or filter method") }
            case "PLTE":
                palette = stride(from: 0, to: len - 2, by: 3).map { RGB(data[$0], data[$0 + 1], data[$0 + 2]) }
            case "tRNS":
                if colorType == 3 { paletteAlpha = data }
            case "IDAT": idat += data
            case "IEND": sawEnd = true
            default: break
            }
            if sawEnd { break }
        }
        guard colorType >= 0 else { throw fail("no IHDR chunk") }
        guard width > 0, height > 0, width <= 1 << 14, height <= 1 << 14 else { throw fail("unsupported size \(width)x\(height)") }
        let channels: Int
        switch (colorType, depth) {
        case (0, 1), (0, 2), (0, 4), (0, 8), (0, 16): channels = 1
        case (2, 8), (2, 16): channels = 3
        case (3, 1), (3, 2), (3, 4), (3, 8): channels = 1
        case (4, 8), (4, 16): channels = 2
        case (6, 8), (6, 16): channels = 4
        default: throw fail("unsupported colour type \(colorType) with bit depth \(depth)")
        }
        guard interlace == 0 || interlace == 1 else { throw fail("unknown interlace method \(interlace)") }
        if colorType == 3 && palette.isEmpty { throw fail("palette image without a PLTE chunk") }
        guard !idat.isEmpty else { throw fail("no image data (IDAT)") }

        let bitsPerPixel = channels * depth
        let bpp = max(1, bitsPerPixel / 8)
        // Pass geometry: one pass for non-interlaced, seven Adam7 passes otherwise.
        let passes: [(x0: Int, y0: Int, dx: Int, dy: Int)] = interlace == 0 ? [(0, 0, 1, 1)] :
            [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        var expected = 0
        for p in passes {
            let pw = (width - p.x0 + p.dx - 1) / p.dx, ph = (height - p.y0 + p.dy - 1) / p.dy
            if pw > 0 && ph > 0 { expected += ph * (1 + (pw * bitsPerPixel + 7) / 8) }
        }
        var raw = [UInt8](repeating: 0, count: expected)
        var rawLen = uLongf(expected)
        let zrc = idat.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBufferPointer { dst in uncompress(dst.baseAddress, &rawLen, src.baseAddress, uLong(src.count)) }
        }
        guard zrc == Z_OK, Int(rawLen) == expected else {
            throw fail("image data does not inflate to \(expected) bytes (zlib code \(zrc), got \(rawLen)); the file is truncated or corrupt")
        }

        var out = RGBImage(width: width, height: height)
        var offset = 0
        let maxSample = Double((1 << depth) - 1)
        for p in passes {
            let pw = (width - p.x0 + p.dx - 1) / p.dx, ph = (height - p.y0 + p.dy - 1) / p.dy
            if pw <= 0 || ph <= 0 { continue }
            let rowBytes = (pw * bitsPerPixel + 7) / 8
            var prev = [UInt8](repeating: 0, count: rowBytes)
            for py in 0..<ph {
                let filter = raw[offset]
                var row = Array(raw[(offset + 1)..<(offset + 1 + rowBytes)])
                offset += 1 + rowBytes
                for i in 0..<rowBytes {
                    let a = i >= bpp ? Int(row[i - bpp]) : 0, b = Int(prev[i]), c = i >= bpp ? Int(prev[i - bpp]) : 0
                    switch filter {
                    case 0: break
                    case 1: row[i] = row[i] &+ UInt8(a)
                    case 2: row[i] = row[i] &+ UInt8(b)
                    case 3: row[i] = row[i] &+ UInt8((a + b) / 2)
                    case 4:
                        let pp = a + b - c, pa = abs(pp - a), pb = abs(pp - b), pc = abs(pp - c)
                        row[i] = row[i] &+ UInt8(pa <= pb && pa <= pc ? a : (pb <= pc ? b : c))
                    default: throw fail("unknown filter type \(filter) in row \(py)")
                    }
                }
                prev = row
                for px in 0..<pw {
                    // Samples of this pixel as 0…255 values.
                    func sample(_ ch: Int) -> Int {
                        if depth == 8 { return Int(row[px * channels + ch]) }
                        if depth == 16 { return Int(row[(px * channels + ch) * 2]) }
                        let bit = (px * channels + ch) * depth
                        let v = (Int(row[bit / 8]) >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
                        return colorType == 3 ? v : Int((Double(v) * 255 / maxSample).rounded())
                    }
                    var r = 0, g = 0, bl = 0, alpha = 255
                    switch colorType {
                    case 0: r = sample(0); g = r; bl = r
                    case 2: r = sample(0); g = sample(1); bl = sample(2)
                    case 3:
                        let i = sample(0)
                        guard i < palette.count else { throw fail("palette index \(i) outside the \(palette.count)-entry palette") }
                        r = Int(palette[i].r); g = Int(palette[i].g); bl = Int(palette[i].b)
                        if i < paletteAlpha.count { alpha = Int(paletteAlpha[i]) }
                    case 4: r = sample(0); g = r; bl = r; alpha = sample(1)
                    default: r = sample(0); g = sample(1); bl = sample(2); alpha = sample(3)
                    }
                    if alpha != 255 { r = r * alpha / 255; g = g * alpha / 255; bl = bl * alpha / 255 }
                    out.set(p.x0 + px * p.dx, p.y0 + py * p.dy, RGB(UInt8(r), UInt8(g), UInt8(bl)))
                }
            }
        }
        return out
    }
}
