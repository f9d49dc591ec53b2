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

    /// Resize to `width`×`height`: area averaging when shrinking (each output pixel is the
    /// coverage-weighted mean of the source pixels under it), bilinear when enlarging.
    /// Used by the importer to bring images of any size to the model's size.
    public func resized(width ow: Int, height oh: Int) -> RGBImage {
        if ow == width && oh == height { return self }
        var out = RGBImage(width: ow, height: oh)
        let sx = Double(width) / Double(ow), sy = Double(height) / Double(oh)
        for oy in 0..<oh {
            for ox in 0..<ow {
                var acc = (0.0, 0.0, 0.0)
                if sx >= 1 && sy >= 1 {
                    let x0 = Double(ox) * sx, x1 = x0 + sx, y0 = Double(oy) * sy, y1 = y0 + sy
                    var wsum = 0.0
                    var yy = Int(y0)
                    while Double(yy) < y1 && yy < height {
                        let wy = min(Double(yy + 1), y1) - max(Double(yy), y0)
                        var xx = Int(x0)
                        while Double(xx) < x1 && xx < width {
                            let wx = min(Double(xx + 1), x1) - max(Double(xx), x0)
                            let w = wx * wy
                            let p = pixel(xx, yy)
                            acc.0 += w * Double(p.r); acc.1 += w * Double(p.g); acc.2 += w * Double(p.b)
                            wsum += w
                            xx += 1
                        }
                        yy += 1
                    }
                    acc = (acc.0 / wsum, acc.1 / wsum, acc.2 / wsum)
                } else {
                    let fx = max(0, min(Double(width - 1), (Double(ox) + 0.5) * sx - 0.5))
                    let fy = max(0, min(Double(height - 1), (Double(oy) + 0.5) * sy - 0.5))
                    let x0 = Int(fx), y0 = Int(fy)
                    let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
                    let ax = fx - Double(x0), ay = fy - Double(y0)
                    for (xx, yy, w) in [(x0, y0, (1 - ax) * (1 - ay)), (x1, y0, ax * (1 - ay)),
                                        (x0, y1, (1 - ax) * ay), (x1, y1, ax * ay)] {
                        let p = pixel(xx, yy)
                        acc.0 += w * Double(p.r); acc.1 += w * Double(p.g); acc.2 += w * Double(p.b)
                    }
                }
                out.set(ox, oy, RGB(clamp8(acc.0), clamp8(acc.1), clamp8(acc.2)))
            }
        }
        return out
    }
}

@inline(__always) func clamp8(_ v: Double) -> UInt8 { UInt8(max(0, min(255, (v + 0.5).rounded(.down)))) }
@inline(__always) func clamp8(_ v: Int) -> UInt8 { UInt8(max(0, min(255, v))) }

public struct RGB: Equatable, Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
}
