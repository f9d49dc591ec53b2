import CPNG
import CTurboJPEG
import Foundation
import PilotCore

/// The image file formats the importer reads (by their first bytes, never by the extension).
public enum ImageFormat: String, CaseIterable, Sendable, Comparable {
    case jpeg, png

    public static func < (a: ImageFormat, b: ImageFormat) -> Bool { a.rawValue < b.rawValue }

    /// The format of a file from its signature, or nil.
    public static func sniff<C: Collection>(_ head: C) -> ImageFormat? where C.Element == UInt8 {
        let b = Array(head.prefix(8))
        if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF { return .jpeg }
        if b.count >= 8, b == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        return nil
    }

    /// What a file that is neither JPEG nor PNG looks like, for the error message.
    static func describeUnknown<C: Collection>(_ head: C) -> String where C.Element == UInt8 {
        let b = Array(head.prefix(12))
        func starts(_ s: [UInt8]) -> Bool { b.count >= s.count && Array(b.prefix(s.count)) == s }
        if b.isEmpty { return "an empty file" }
        if starts(Array("GIF8".utf8)) { return "a GIF file" }
        if starts(Array("RIFF".utf8)), b.count >= 12, Array(b[8..<12]) == Array("WEBP".utf8) { return "a WebP file" }
        if starts(Array("BM".utf8)) { return "a BMP file" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "a TIFF file" }
        if b.count >= 12, Array(b[4..<8]) == Array("ftyp".utf8) { return "an ISO media file (HEIC/AVIF?)" }
        if b.allSatisfy({ $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20..<0x7F).contains($0) }) { return "a text file" }
        return "an unknown format (first bytes \(b.prefix(4).map { String($0, radix: 16) }.joined(separator: " ")))"
    }
}

/// How images are decoded.
public struct ImageDecodeOptions: Equatable, Sendable {
    /// Largest width × height accepted; checked from the header, before any pixel buffer is
    /// allocated (decompression bombs). The default is Pillow's `MAX_IMAGE_PIXELS` (89,478,485:
    /// about 9459 × 9459), which takes every camera photo.
    public var maxPixels: Int
    /// The colour that alpha (RGBA, gray+alpha, tRNS) is composited on: round((c·a + bg·(255−a))/255).
    public var background: RGB
    /// Apply the EXIF orientation tag of a JPEG (as Pillow's `ImageOps.exif_transpose` does).
    public var applyOrientation: Bool

    public static let defaultMaxPixels = 89_478_485

    public init(maxPixels: Int = defaultMaxPixels, background: RGB = RGB(0, 0, 0), applyOrientation: Bool = true) {
        self.maxPixels = maxPixels
        self.background = background
        self.applyOrientation = applyOrientation
    }
}

/// A decoded image and what the file held.
public struct DecodedImage: Sendable {
    public var image: RGBImage
    public var format: ImageFormat
    /// The source's mode in words: "png rgba 8-bit interlaced", "jpeg ycbcr 4:2:0 progressive", "jpeg cmyk".
    public var mode: String
    /// The EXIF orientation (1–8) found in the file; 1 when there is none. Applied when the options say so.
    public var orientation: Int
    /// The width × height in the file, before orientation.
    public var storedWidth: Int, storedHeight: Int
}

/// JPEG and PNG decoding through Debian's libraries: libjpeg-turbo (TurboJPEG API) and libpng.
///
/// Every image comes out as 8-bit RGB [H, W, 3]:
/// - PNG: gray, gray+alpha, palette (with tRNS), RGB, RGBA at 1–16 bits, Adam7; 16-bit samples keep
///   their high byte, alpha is composited on `ImageDecodeOptions.background`; no gamma correction.
/// - JPEG: baseline and progressive, gray, YCbCr (any subsampling), CMYK and YCCK (converted as
///   Pillow does: Adobe's inverted convention, r = (255−c)(255−k)/255), EXIF orientation applied.
/// - Refused with an error that names the file: a truncated or corrupt file (libjpeg's warnings are
///   errors here), an image over `maxPixels` (checked from the header), any other format.
public enum ImageDecoder {
    public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> DecodedImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PilotError.notFound(file: path, object: "")
        }
        return try decode(data, name: path, options: options)
    }

    public static func decode<D: ContiguousBytes>(_ bytes: D, name: String = "<memory>",
                                                  options: ImageDecodeOptions = ImageDecodeOptions()) throws -> DecodedImage {
        try bytes.withUnsafeBytes { raw in
            let buf = raw.bindMemory(to: UInt8.self)
            switch ImageFormat.sniff(buf) {
            case .jpeg?: return try decodeJPEG(buf, name: name, options: options)
            case .png?: return try decodePNG(buf, name: name, options: options)
            case nil:
                throw PilotError.message("image '\(name)': not a PNG or JPEG file (it is \(ImageFormat.describeUnknown(buf))); convert it to JPEG or PNG")
            }
        }
    }

    static func checkSize(_ w: Int, _ h: Int, _ format: String, _ name: String, _ options: ImageDecodeOptions) throws {
        guard w > 0, h > 0 else { throw PilotError.message("\(format) '\(name)': the header declares an empty \(w)x\(h) image") }
        guard w.multipliedReportingOverflow(by: h).partialValue <= options.maxPixels, w <= 1 << 20, h <= 1 << 20 else {
            throw PilotError.message("\(format) '\(name)': the header declares \(w)x\(h) = \(w * h) pixels, over the limit of \(options.maxPixels) (a decompression bomb, or a huge image); refused before decoding. Shrink the image, or raise the limit (--max-image-pixels)")
        }
    }

    // MARK: PNG (libpng, CPNG shim)

    static func decodePNG(_ buf: UnsafeBufferPointer<UInt8>, name: String, options: ImageDecodeOptions) throws -> DecodedImage {
        var info = pilot_png_info()
        func message() -> String {
            withUnsafeBytes(of: &info.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        guard pilot_png_header(buf.baseAddress, buf.count, &info) == 0 else {
            throw PilotError.message("PNG '\(name)': unreadable (libpng: \(message())); the file is corrupt or truncated")
        }
        let w = Int(info.width), h = Int(info.height)
        try checkSize(w, h, "PNG", name, options)
        let kinds = [0: "gray", 2: "rgb", 3: "palette", 4: "gray+alpha", 6: "rgba"]
        var mode = "png \(kinds[Int(info.color_type)] ?? "type \(info.color_type)") \(info.bit_depth)-bit"
        if info.has_trns != 0 { mode += " trns" }
        if info.interlaced != 0 { mode += " interlaced" }
        let bg = options.background
        let pixels = try [UInt8](unsafeUninitializedCapacity: w * h * 3) { out, count in
            let rc = pilot_png_decode(buf.baseAddress, buf.count, out.baseAddress, bg.r, bg.g, bg.b, &info)
            guard rc == 0 else {
                throw PilotError.message("PNG '\(name)': cannot decode (libpng: \(message())); the file is corrupt or truncated")
            }
            count = w * h * 3
        }
        return DecodedImage(image: try RGBImage(width: w, height: h, pixels: pixels), format: .png, mode: mode,
                            orientation: 1, storedWidth: w, storedHeight: h)
    }

    // MARK: JPEG (libjpeg-turbo, TurboJPEG API)

    static func decodeJPEG(_ buf: UnsafeBufferPointer<UInt8>, name: String, options: ImageDecodeOptions) throws -> DecodedImage {
        guard let tj = tjInitDecompress() else { throw PilotError.message("JPEG '\(name)': cannot start libjpeg-turbo (out of memory?)") }
        defer { tjDestroy(tj) }
        func tjMessage() -> String { String(cString: tjGetErrorStr2(tj)) }
        var w: Int32 = 0, h: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(tj, buf.baseAddress, UInt(buf.count), &w, &h, &subsamp, &colorspace) == 0 else {
            throw PilotError.message("JPEG '\(name)': unreadable header (libjpeg-turbo: \(tjMessage())); the file is corrupt or truncated")
        }
        let W = Int(w), H = Int(h)
        try checkSize(W, H, "JPEG", name, options)
        let markers = JPEGMarkers.scan(buf)
        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let spaces = [TJCS_RGB.rawValue: "rgb", TJCS_YCbCr.rawValue: "ycbcr", TJCS_GRAY.rawValue: "gray",
                      TJCS_CMYK.rawValue: "cmyk", TJCS_YCCK.rawValue: "ycck"]
        let samp = [TJSAMP_444.rawValue: "4:4:4", TJSAMP_422.rawValue: "4:2:2", TJSAMP_420.rawValue: "4:2:0",
                    TJSAMP_GRAY.rawValue: "", TJSAMP_440.rawValue: "4:4:0", TJSAMP_411.rawValue: "4:1:1"]
        var mode = "jpeg " + (spaces[UInt32(colorspace)] ?? "colorspace \(colorspace)")
        if let s = samp[UInt32(subsamp)], !s.isEmpty, !cmyk { mode += " " + s }
        if markers.progressive { mode += " progressive" }
        let flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
        let channels = cmyk ? 4 : 3
        var pixels = try [UInt8](unsafeUninitializedCapacity: W * H * channels) { out, count in
            let format = cmyk ? TJPF_CMYK : TJPF_RGB
            let rc = tjDecompress2(tj, buf.baseAddress, UInt(buf.count), out.baseAddress, w, 0, h, Int32(format.rawValue), flags)
            guard rc == 0 else {
                throw PilotError.message("JPEG '\(name)': cannot decode (libjpeg-turbo: \(tjMessage())); the file is truncated or corrupt")
            }
            count = W * H * channels
        }
        if cmyk { cmykToRGBInPlace(&pixels, count: W * H) }
        var image = try RGBImage(width: W, height: H, pixels: pixels)
        pixels = []
        if options.applyOrientation && markers.orientation != 1 { image = image.oriented(exif: markers.orientation) }
        return DecodedImage(image: image, format: .jpeg, mode: mode, orientation: markers.orientation, storedWidth: W, storedHeight: H)
    }

    /// CMYK as libjpeg gives it (Adobe's inverted convention: 255 is no ink; Pillow reads every CMYK
    /// JPEG this way) to RGB with Pillow's `cmyk2rgb` arithmetic, in place (RGB is written behind the read position).
    static func cmykToRGBInPlace(_ p: inout [UInt8], count n: Int) {
        p.withUnsafeMutableBufferPointer { b in
            @inline(__always) func mul255(_ a: Int, _ c: Int) -> Int { let t = a * c + 128; return ((t >> 8) + t) >> 8 }
            for i in 0..<n {
                // Inverted: the stored value is 255 − ink. Pillow: CMYK;I → true ink, then nk − c·nk/255.
                let c = 255 - Int(b[4 * i]), m = 255 - Int(b[4 * i + 1]), y = 255 - Int(b[4 * i + 2]), k = 255 - Int(b[4 * i + 3])
                let nk = 255 - k
                b[3 * i] = clamp8(nk - mul255(c, nk))
                b[3 * i + 1] = clamp8(nk - mul255(m, nk))
                b[3 * i + 2] = clamp8(nk - mul255(y, nk))
            }
        }
        p.removeLast(n)
    }
}

/// What the importer needs from a JPEG's markers before the scan data: the SOF kind and the EXIF orientation.
struct JPEGMarkers {
    var progressive = false
    var orientation = 1

    static func scan(_ b: UnsafeBufferPointer<UInt8>) -> JPEGMarkers {
        var m = JPEGMarkers()
        var pos = 2
        while pos + 4 <= b.count {
            guard b[pos] == 0xFF else { break }
            let marker = b[pos + 1]
            if marker == 0xFF { pos += 1; continue }
            if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { pos += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }  // start of scan / end of image
            let len = Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            guard len >= 2, pos + 2 + len <= b.count else { break }
            let body = UnsafeBufferPointer(rebasing: b[(pos + 4)..<(pos + 2 + len)])
            switch marker {
            case 0xC2, 0xC6, 0xCA, 0xCE: m.progressive = true
            case 0xE1: if let o = exifOrientation(body) { m.orientation = o }
            default: break
            }
            pos += 2 + len
        }
        return m
    }

    /// The orientation tag (0x0112) of IFD0 in an APP1 "Exif\0\0" body; nil if absent or malformed.
    static func exifOrientation(_ body: UnsafeBufferPointer<UInt8>) -> Int? {
        let header: [UInt8] = Array("Exif".utf8) + [0, 0]
        guard body.count >= 14, Array(body.prefix(6)) == header else { return nil }
        let t = UnsafeBufferPointer(rebasing: body[6...])
        let little: Bool
        if t[0] == 0x49 && t[1] == 0x49 { little = true } else if t[0] == 0x4D && t[1] == 0x4D { little = false } else { return nil }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let n = u16(ifd) else { return nil }
        for i in 0..<min(n, 512) {
            let e = ifd + 2 + 12 * i
            guard let tag = u16(e) else { return nil }
            if tag == 0x0112 {
                guard let type = u16(e + 2), type == 3, let v = u16(e + 8), (1...8).contains(v) else { return nil }
                return v
            }
        }
        return nil
    }
}

extension RGBImage {
    /// The image as an EXIF orientation says it should be shown (1 = as stored; 2 mirror; 3 rotate 180;
    /// 4 flip; 5 transpose; 6 rotate 90 clockwise; 7 transverse; 8 rotate 90 counter-clockwise),
    /// as Pillow's `ImageOps.exif_transpose`.
    public func oriented(exif o: Int) -> RGBImage {
        guard (2...8).contains(o) else { return self }
        let W = width, H = height
        let swap = o >= 5
        let ow = swap ? H : W, oh = swap ? W : H
        var out = [UInt8](repeating: 0, count: W * H * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // (sx, sy): the stored pixel shown at (x, y).
                        let sx: Int, sy: Int
                        switch o {
                        case 2: sx = W - 1 - x; sy = y
                        case 3: sx = W - 1 - x; sy = H - 1 - y
                        case 4: sx = x; sy = H - 1 - y
                        case 5: sx = y; sy = x
                        case 6: sx = y; sy = H - 1 - x
                        case 7: sx = W - 1 - y; sy = H - 1 - x
                        default: sx = W - 1 - y; sy = x  // 8
                        }
                        let s = 3 * (sy * W + sx), d = 3 * (y * ow + x)
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return try! RGBImage(width: ow, height: oh, pixels: out)
    }
}

/// JPEG encoding through libjpeg-turbo, for `pilot data export --image-format jpeg`.
public enum JPEG {
    /// Baseline JPEG, 4:4:4 (no chroma subsampling: the images are small and colour matters), quality 95 by default.
    public static func encode(_ image: RGBImage, quality: Int = 95) throws -> [UInt8] {
        guard let tj = tjInitCompress() else { throw PilotError.message("JPEG encode: cannot start libjpeg-turbo") }
        defer { tjDestroy(tj) }
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let rc = image.pixels.withUnsafeBufferPointer { p in
            tjCompress2(tj, p.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &out, &size, Int32(TJSAMP_444.rawValue), Int32(max(1, min(100, quality))), 0)
        }
        defer { if let out { tjFree(out) } }
        guard rc == 0, let out else { throw PilotError.message("JPEG encode: \(String(cString: tjGetErrorStr2(tj)))") }
        return Array(UnsafeBufferPointer(start: out, count: Int(size)))
    }

    public static func write(_ image: RGBImage, to path: String, quality: Int = 95) throws {
        let bytes = try encode(image, quality: quality)
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw PilotError.message("cannot write JPEG '\(path)': \(error.localizedDescription). Check that the folder exists and is writable.") }
    }
}
