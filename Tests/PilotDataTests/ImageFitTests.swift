import PilotData
import Testing

@Suite struct ImageFitTests {
    /// A 6×2 image: left half red, right half blue.
    var wide: RGBImage {
        var img = RGBImage(width: 6, height: 2, fill: RGB(0, 0, 255))
        img.fillRect(x: 0, y: 0, w: 3, h: 2, RGB(255, 0, 0))
        return img
    }

    @Test func padCentresTheImageOnTheMeanColour() {
        // expand2square: 6×6 canvas, the image pasted at row (6 − 2) // 2 = 2; then 6×6 → 3×3 averages 2×2 blocks.
        let p = ImageFit.fit(wide, size: 3, mode: .pad)
        let m = ImageFit.llavaMean
        #expect(p.pixel(0, 0) == m && p.pixel(2, 2) == m)
        #expect(p.pixel(0, 1) == RGB(255, 0, 0) && p.pixel(2, 1) == RGB(0, 0, 255))
        // The middle column straddles red and blue.
        #expect(p.pixel(1, 1) == RGB(128, 0, 128))
    }

    @Test func cropKeepsTheCentredSquare() {
        // Centre square of side 2 starts at x = 2: one red column, one blue.
        let c = ImageFit.fit(wide, size: 2, mode: .crop)
        #expect(c.pixel(0, 0) == RGB(255, 0, 0) && c.pixel(1, 0) == RGB(0, 0, 255))
    }

    @Test func stretchUsesTheWholeImage() {
        let s = ImageFit.fit(wide, size: 2, mode: .stretch)
        #expect(s.pixel(0, 0) == RGB(255, 0, 0) && s.pixel(1, 1) == RGB(0, 0, 255))
        #expect(s.width == 2 && s.height == 2)
    }

    @Test func squareImagesAreTheSameInEveryMode() {
        var img = RGBImage(width: 8, height: 8, fill: RGB(10, 20, 30))
        img.fillRect(x: 0, y: 0, w: 4, h: 8, RGB(200, 100, 0))
        let s = ImageFit.fit(img, size: 4, mode: .stretch)
        #expect(ImageFit.fit(img, size: 4, mode: .pad) == s && ImageFit.fit(img, size: 4, mode: .crop) == s)
        #expect(ImageFit.fit(img, size: 8, mode: .pad) == img)
    }

    @Test func exifOrientationsMatchTheirDefinitions() {
        // 3×2 image with distinct pixels: value = 10·y + x.
        var img = RGBImage(width: 3, height: 2)
        for y in 0..<2 { for x in 0..<3 { img.set(x, y, RGB(UInt8(10 * y + x), 0, 0)) } }
        func grid(_ i: RGBImage) -> [[Int]] { (0..<i.height).map { y in (0..<i.width).map { Int(i.pixel($0, y).r) } } }
        #expect(grid(img.oriented(exif: 1)) == [[0, 1, 2], [10, 11, 12]])
        #expect(grid(img.oriented(exif: 2)) == [[2, 1, 0], [12, 11, 10]])
        #expect(grid(img.oriented(exif: 3)) == [[12, 11, 10], [2, 1, 0]])
        #expect(grid(img.oriented(exif: 4)) == [[10, 11, 12], [0, 1, 2]])
        #expect(grid(img.oriented(exif: 5)) == [[0, 10], [1, 11], [2, 12]])
        #expect(grid(img.oriented(exif: 6)) == [[10, 0], [11, 1], [12, 2]])   // rotate 90° clockwise
        #expect(grid(img.oriented(exif: 7)) == [[12, 2], [11, 1], [10, 0]])
        #expect(grid(img.oriented(exif: 8)) == [[2, 12], [1, 11], [0, 10]])   // rotate 90° counter-clockwise
    }
}
