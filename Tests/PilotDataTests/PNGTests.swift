import Foundation
import PilotData
import Testing

@Suite struct PNGTests {
    /// libpng decodes the hand-made fixtures (every colour type, depth, filter, Adam7, tRNS) to the
    /// expected pixels: exactly without alpha; with alpha within 1, because the fixtures were made with
    /// floor(c·a/255) and the decoder rounds (the Pillow corpus of `ImageCorpusTests` checks rounding exactly).
    @Test func decodesEveryColourTypeDepthFilterAndInterlace() throws {
        for f in pngFixtures {
            let bytes = [UInt8](Data(base64Encoded: f.base64)!)
            let img = try PNG.decode(bytes, name: f.name)
            #expect(img.width == f.width && img.height == f.height, "\(f.name)")
            let alpha = f.name.contains("alpha") || f.name.contains("rgba") || f.name.contains("trns")
            if alpha {
                let worst = zip(img.pixels, f.rgb).map { abs(Int($0) - Int($1)) }.max() ?? 0
                #expect(worst <= 1 && img.pixels.count == f.rgb.count, "\(f.name): decoded pixels differ by up to \(worst)")
            } else {
                #expect(img.pixels == f.rgb, "\(f.name): decoded pixels differ")
            }
        }
    }

    @Test func encodeDecodeRoundTrip() throws {
        var rng = PilotRNG(seed: 3)
        var img = RGBImage(width: 37, height: 23)
        for i in img.pixels.indices { img.pixels[i] = UInt8(truncatingIfNeeded: rng.next()) }
        #expect(try PNG.decode(try PNG.encode(img)) == img)
        let scene = TaskGenerator().example(.caption, id: "x", &rng).image
        #expect(try PNG.decode(try PNG.encode(scene)) == scene)
    }

    @Test func errorsNameTheFile() throws {
        let good = try PNG.encode(RGBImage(width: 4, height: 4))
        var badCRC = good
        badCRC[30] ^= 0xff
        let unsupported = [UInt8](Data(base64Encoded: pngUnsupportedRGB4)!)
        for (bytes, needle) in [([UInt8](repeating: 1, count: 40), "not a PNG"), (badCRC, "CRC error"),
                                (Array(good.prefix(40)), "truncated"), (unsupported, "Invalid IHDR")] {
            do { _ = try PNG.decode(bytes, name: "some/file.png"); Issue.record("expected an error for \(needle)") }
            catch { #expect("\(error)".contains("some/file.png") && "\(error)".contains(needle), "\(error)") }
        }
    }

    @Test func resizeAveragesAreasAndInterpolatesUp() throws {
        var img = RGBImage(width: 4, height: 4, fill: RGB(0, 0, 0))
        img.fillRect(x: 0, y: 0, w: 2, h: 4, RGB(200, 100, 50))
        let small = img.resized(width: 2, height: 2)
        #expect(small.pixel(0, 0) == RGB(200, 100, 50) && small.pixel(1, 1) == RGB(0, 0, 0))
        let half = img.resized(width: 1, height: 1)
        #expect(half.pixel(0, 0) == RGB(100, 50, 25))
        let up = small.resized(width: 8, height: 8)
        #expect(up.width == 8 && up.pixel(0, 0) == RGB(200, 100, 50) && up.pixel(7, 7) == RGB(0, 0, 0))
    }
}
