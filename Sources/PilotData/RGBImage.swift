import PilotCore

/// An 8-bit RGB image in row-major [H, W, 3] order: the layout of the shard datasets
/// (`images` is uint8 [n, H, W, 3]) and of the model's input.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// [height, width, 3], row-major.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: RGB = RGB(0, 0, 0)) {
        precondition(width > 0 && height > 0, "image size must be positive")
        self.width = width
        self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { p[3 * i] = fill.r; p[3 * i + 1] = fill.g; p[3 * i + 2] = fill.b }
        pixels = p
    }

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw PilotError.invalidArgument("RGBImage: \(pixels.count) bytes do not make a \(height)x\(width)x3 image")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    @inline(__always) public func pixel(_ x: Int, _ y: Int) -> RGB {
        let o = 3 * (y * width + x)
        return RGB(pixels[o], pixels[o + 1], pixels[o + 2])
    }

    @inline(__always) public mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let o = 3 * (y * width + x)
        pixels[o] = c.r; pixels[o + 1] = c.g; pixels[o + 2] = c.b
    }

    public mutating func fillRect(x: Int, y: Int, w: Int, h: Int, _ c: RGB) {
        for yy in max(0, y)..<min(height, y + h) where yy >= 0 {
            for xx in max(0, x)..<min(width, x + w) { set(xx, yy, c) }
        }
    }

    /// A one-pixel outline of the rectangle [x, x+w) × [y, y+h).
    public mutating func strokeRect(x: Int, y: Int, w: Int, h: Int, _ c: RGB, thickness: Int = 1) {
        for t in 0..<thickness {
            for xx in x..<(x + w) { set(xx, y + t, c); set(xx, y + h - 1 - t, c) }
            for yy in y..<(y + h) { set(x + t, yy, c); set(x + w - 1 - t, yy, c) }
        }
    }

    /// Copy `other` into this image with its top-left corner at (x, y), scaled by an integer factor.
    public mutating func blit(_ other: RGBImage, x: Int, y: Int, scale: Int = 1) {
        for sy in 0..<other.height {
            for sx in 0..<other.width {
                let c = other.pixel(sx, sy)
                for dy in 0..<scale { for dx in 0..<scale { set(x + sx * scale + dx, y + sy * scale + dy, c) } }
            }
        }
    }

    /// Resize to `width`×`height` (aspect ratio not kept): area averaging along an axis that shrinks,
    /// bilinear along one that grows (`ImageFit`, which also pads and crops).
    public func resized(width ow: Int, height oh: Int) -> RGBImage {
        ImageFit.resample(self, x0: 0, y0: 0, w: width, h: height, outW: ow, outH: oh, fill: RGB(0, 0, 0))
    }
}

@inline(__always) func clamp8(_ v: Double) -> UInt8 { UInt8(max(0, min(255, (v + 0.5).rounded(.down)))) }
@inline(__always) func clamp8(_ v: Int) -> UInt8 { UInt8(max(0, min(255, v))) }

public struct RGB: Equatable, Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
}
