import Foundation
import PilotData
import PilotTestSupport
import Testing

/// The image corpus written by Tests/Fixtures/data/make_image_corpus.py with Pillow (the independent encoder):
/// every good file decodes to Pillow's pixels (exactly for PNG; within ±1 per channel or a mean
/// absolute error ≤ 0.5 for JPEG, which allows for IDCT differences), every bad one is refused with
/// an error that names the file and says what is wrong.
@Suite(.serialized) struct ImageCorpusTests {
    struct Entry: Decodable {
        let name: String, file: String, kind: String
        let format: String?, width: Int?, height: Int?, tolerance: String?
        let needles: [String]?
    }

    static let corpus: (dir: String, entries: [Entry]) = {
        let dir = TemporaryDirectory("image-corpus").path
        let r = try! runProcess("/usr/bin/python3", [repositoryRoot + "/Tests/Fixtures/data/make_image_corpus.py", dir])
        precondition(r.status == 0, "Tests/Fixtures/data/make_image_corpus.py failed (Pillow and numpy are needed: run scripts/bootstrap.sh, which installs python3-pil):\n\(r.stderr)")
        let data = FileManager.default.contents(atPath: dir + "/corpus.json")!
        return (dir, try! JSONDecoder().decode([Entry].self, from: data))
    }()

    @Test func everyGoodFileDecodesToPillowsPixels() throws {
        let (dir, entries) = Self.corpus
        let good = entries.filter { $0.kind == "good" }
        #expect(good.count >= 20)
        for e in good {
            let d = try ImageDecoder.read(path: dir + "/" + e.file)
            let want = [UInt8](FileManager.default.contents(atPath: dir + "/\(e.name).rgb")!)
            #expect(d.image.width == e.width && d.image.height == e.height, "\(e.name): \(d.image.width)x\(d.image.height), Pillow \(e.width!)x\(e.height!)")
            guard d.image.pixels.count == want.count else { Issue.record("\(e.name): size differs"); continue }
            #expect(d.format.rawValue == e.format, "\(e.name): format \(d.format) vs \(e.format!)")
            let diffs = zip(d.image.pixels, want).map { abs(Int($0) - Int($1)) }
            let worst = diffs.max() ?? 0, mae = Double(diffs.reduce(0, +)) / Double(diffs.count)
            if e.tolerance == "exact" {
                #expect(worst == 0, "\(e.name) (\(d.mode)): differs from Pillow by up to \(worst)")
            } else {
                #expect(worst <= 1 || mae <= 0.5, "\(e.name) (\(d.mode)): max diff \(worst), mean \(mae)")
            }
        }
    }

    @Test func modesAreRecognised() throws {
        let dir = Self.corpus.dir
        func mode(_ f: String) throws -> DecodedImage { try ImageDecoder.read(path: dir + "/" + f) }
        #expect(try mode("jpeg_progressive.jpg").mode.contains("progressive"))
        #expect(try mode("jpeg_cmyk.jpg").mode.contains("cmyk"))
        #expect(try mode("jpeg_gray.jpg").mode.contains("gray"))
        #expect(try mode("jpeg_420.jpg").mode.contains("4:2:0"))
        let o6 = try mode("jpeg_exif6.jpg")
        #expect(o6.orientation == 6 && o6.image.width == 32 && o6.image.height == 48 && o6.storedWidth == 48)
        #expect(try mode("png_palette_trns.png").mode == "png palette 8-bit trns")
        #expect(try mode("png_gray16.png").mode == "png gray 16-bit")
        #expect(try mode("lies_png_named_jpg.jpg").format == .png)
        #expect(try mode("lies_jpeg_named_png.png").format == .jpeg)
        // Orientation off: the stored pixels.
        let raw = try ImageDecoder.read(path: dir + "/jpeg_exif6.jpg", options: ImageDecodeOptions(applyOrientation: false))
        #expect(raw.image.width == 48 && raw.image.oriented(exif: 6) == o6.image)
    }

    @Test func everyBadFileIsRefusedByName() throws {
        let (dir, entries) = Self.corpus
        let bad = entries.filter { $0.kind == "bad" }
        #expect(bad.count >= 7)
        for e in bad {
            let path = dir + "/" + e.file
            do {
                let d = try ImageDecoder.read(path: path)
                Issue.record("\(e.name): decoded as \(d.mode) \(d.image.width)x\(d.image.height), expected an error")
            } catch {
                let text = "\(error)"
                #expect(text.contains(path), "\(e.name): the error does not name the file: \(text)")
                for n in e.needles ?? [] { #expect(text.contains(n), "\(e.name): the error lacks '\(n)': \(text)") }
            }
        }
    }

    /// A 60000×60000 header is refused before any pixel buffer exists: the call returns at once and
    /// the process does not grow by the 10.8 GB such a buffer would take.
    @Test func decompressionBombsAreRefusedBeforeAllocating() throws {
        let dir = Self.corpus.dir
        for f in ["bad_bomb_png.png", "bad_bomb_jpeg.jpg"] {
            let t0 = Date()
            #expect(throws: (any Error).self) { try ImageDecoder.read(path: dir + "/" + f) }
            #expect(Date().timeIntervalSince(t0) < 0.5)
        }
        // A lower limit refuses an ordinary image too, naming the option that raises it.
        do {
            _ = try ImageDecoder.read(path: dir + "/png_large.png", options: ImageDecodeOptions(maxPixels: 1000))
            Issue.record("expected the 320x240 image to be over a 1000-pixel limit")
        } catch { #expect("\(error)".contains("--max-image-pixels")) }
    }

    @Test func alphaIsCompositedOnTheChosenBackground() throws {
        var white = ImageDecodeOptions()
        white.background = RGB(255, 255, 255)
        let path = Self.corpus.dir + "/png_rgba.png"
        let onBlack = try ImageDecoder.read(path: path).image, onWhite = try ImageDecoder.read(path: path, options: white).image
        #expect(onBlack != onWhite)
        #expect(zip(onBlack.pixels, onWhite.pixels).allSatisfy { $0 <= $1 })
    }

    @Test func jpegEncodeDecodeRoundTripIsClose() throws {
        var rng = PilotRNG(seed: 5)
        var img = RGBImage(width: 40, height: 24, fill: RGB(90, 140, 200))
        img.fillRect(x: 5, y: 5, w: 12, h: 10, RGB(240, 30, 20))
        for i in img.pixels.indices { img.pixels[i] = UInt8(clamping: Int(img.pixels[i]) + rng.int(5) - 2) }
        let back = try ImageDecoder.decode(try JPEG.encode(img, quality: 95)).image
        let mae = Double(zip(img.pixels, back.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(img.pixels.count)
        #expect(back.width == 40 && back.height == 24 && mae < 3, "mean abs error \(mae)")
    }
}
