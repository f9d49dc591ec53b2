import Foundation
import PilotData
import Testing

@Suite struct PNGTests {
    @Test func decodesEveryColourTypeDepthFilterAndInterlace() throws {
        for f in pngFixtures {
            let bytes = [UInt8](Data(base64Encoded: f.base64)!)
            let img = try PNG.decode(bytes, name: f.name)
            #expect(img.width == f.width && img.height == f.height, "\(f.name)")
            #expect(img.pixels == f.rgb, "\(f.name): decoded pixels differ")
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
        for (bytes, needle) in [([UInt8](repeating: 1, count: 40), "not a PNG"), (badCRC, "CRC mismatch"),
                                (Array(good.prefix(40)), "no image data"), (unsupported, "unsupported colour type 2 with bit depth 4")] {
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
