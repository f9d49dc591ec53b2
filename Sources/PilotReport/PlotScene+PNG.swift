import Foundation
import PilotData

/// Rasterises a `PlotScene` with our own code: anti-aliased lines and markers (coverage from the
/// distance to the shape), text in the bitmap font, then `PNG.encode`.
extension PlotScene {
    /// The figure as an image of `scale` pixels per unit.
    public func rasterise(scale: Int = 2) -> RGBImage {
        let s = Double(scale)
        var canvas = Canvas(width: max(1, Int((width * s).rounded(.up))), height: max(1, Int((height * s).rounded(.up))))
        for item in items {
            switch item {
            case let .rect(x, y, w, h, fill, stroke):
                if let fill { canvas.fill(x0: x * s, y0: y * s, x1: (x + w) * s, y1: (y + h) * s, fill) }
                if let stroke {
                    let c = [Point(x, y), Point(x + w, y), Point(x + w, y + h), Point(x, y + h), Point(x, y)]
                    canvas.stroke(c.map { Point($0.x * s, $0.y * s) }, width: s, dash: [], color: stroke)
                }
            case let .line(a, b, color, w, dash):
                canvas.stroke([Point(a.x * s, a.y * s), Point(b.x * s, b.y * s)], width: w * s, dash: dash.map { $0 * s }, color: color)
            case let .polyline(points, color, w, dash, _):
                canvas.stroke(points.map { Point($0.x * s, $0.y * s) }, width: w * s, dash: dash.map { $0 * s }, color: color)
            case let .marker(c, shape, r, color):
                let center = Point(c.x * s, c.y * s)
                switch shape {
                case .circle: canvas.disc(center, radius: r * s, color: color)
                case .square: canvas.fill(x0: center.x - r * s, y0: center.y - r * s, x1: center.x + r * s, y1: center.y + r * s, color)
                case .triangle, .diamond: canvas.convexPolygon(Self.polygon(shape, at: center, radius: r * s), color: color)
                }
            case let .text(text, at, size, color, anchor):
                let left = Self.left(at.x, width: Self.textWidth(text, size: size), anchor: anchor)
                BitmapFont.draw(text, into: &canvas.image, x: Int((left * s).rounded()), y: Int((at.y * s).rounded()),
                                color: RGB(color.r, color.g, color.b), scale: size * scale)
            }
        }
        return canvas.image
    }

    /// PNG bytes of `rasterise(scale:)`.
    public func png(scale: Int = 2) throws -> [UInt8] { try PNG.encode(rasterise(scale: scale)) }
}

/// A white RGB image with alpha blending of coverage values in [0, 1].
struct Canvas {
    typealias Point = PlotScene.Point
    var image: RGBImage

    init(width: Int, height: Int) { image = RGBImage(width: width, height: height, fill: RGB(255, 255, 255)) }

    mutating func blend(_ x: Int, _ y: Int, _ c: PlotScene.Color, _ alpha: Double) {
        guard alpha > 0, x >= 0, y >= 0, x < image.width, y < image.height else { return }
        let a = min(1, alpha)
        let old = image.pixel(x, y)
        func mix(_ o: UInt8, _ n: UInt8) -> UInt8 { UInt8((Double(o) * (1 - a) + Double(n) * a).rounded()) }
        image.set(x, y, RGB(mix(old.r, c.r), mix(old.g, c.g), mix(old.b, c.b)))
    }

    /// Pixel-centre sampling of an axis-aligned rectangle in pixel coordinates.
    mutating func fill(x0: Double, y0: Double, x1: Double, y1: Double, _ c: PlotScene.Color) {
        let xa = max(0, Int(x0.rounded())), xb = min(image.width, Int(x1.rounded()))
        let ya = max(0, Int(y0.rounded())), yb = min(image.height, Int(y1.rounded()))
        guard xa < xb, ya < yb else { return }
        for y in ya..<yb { for x in xa..<xb { blend(x, y, c, 1) } }
    }

    /// A polyline of `width` pixels, optionally dashed (on/off lengths in pixels measured along the
    /// line). Coverage is the larger over segments, so joins are not blended twice.
    mutating func stroke(_ points: [Point], width: Double, dash: [Double], color: PlotScene.Color) {
        guard let first = points.first else { return }
        let half = width / 2
        let pad = half + 1
        let xs = points.map(\.x), ys = points.map(\.y)
        let bx0 = max(0, Int(((xs.min() ?? first.x) - pad).rounded(.down))), bx1 = min(image.width - 1, Int(((xs.max() ?? first.x) + pad).rounded(.up)))
        let by0 = max(0, Int(((ys.min() ?? first.y) - pad).rounded(.down))), by1 = min(image.height - 1, Int(((ys.max() ?? first.y) + pad).rounded(.up)))
        guard bx0 <= bx1, by0 <= by1 else { return }
        let w = bx1 - bx0 + 1
        var coverage = [Double](repeating: 0, count: w * (by1 - by0 + 1))
        let period = dash.reduce(0, +)
        func on(_ distance: Double) -> Bool {
            guard period > 0 else { return true }
            var d = distance.truncatingRemainder(dividingBy: period)
            for (i, length) in dash.enumerated() {
                if d < length { return i % 2 == 0 }
                d -= length
            }
            return true
        }
        let segments = points.count == 1 ? [(first, first)] : Array(zip(points, points.dropFirst()))
        var travelled = 0.0
        for (a, b) in segments {
            let dx = b.x - a.x, dy = b.y - a.y
            let length2 = dx * dx + dy * dy, length = length2.squareRoot()
            let sx0 = max(bx0, Int((min(a.x, b.x) - pad).rounded(.down))), sx1 = min(bx1, Int((max(a.x, b.x) + pad).rounded(.up)))
            let sy0 = max(by0, Int((min(a.y, b.y) - pad).rounded(.down))), sy1 = min(by1, Int((max(a.y, b.y) + pad).rounded(.up)))
            if sx0 <= sx1 && sy0 <= sy1 {
                for y in sy0...sy1 {
                    for x in sx0...sx1 {
                        let px = Double(x) + 0.5, py = Double(y) + 0.5
                        let t = length2 > 0 ? max(0, min(1, ((px - a.x) * dx + (py - a.y) * dy) / length2)) : 0
                        if !on(travelled + t * length) { continue }
                        let ex = px - (a.x + t * dx), ey = py - (a.y + t * dy)
                        let c = max(0, min(1, half + 0.5 - (ex * ex + ey * ey).squareRoot()))
                        let i = (y - by0) * w + (x - bx0)
                        coverage[i] = max(coverage[i], c)
                    }
                }
            }
            travelled += length
        }
        for y in by0...by1 { for x in bx0...bx1 { blend(x, y, color, coverage[(y - by0) * w + (x - bx0)]) } }
    }

    /// A filled disc with an anti-aliased edge.
    mutating func disc(_ c: Point, radius r: Double, color: PlotScene.Color) {
        for y in Int((c.y - r - 1).rounded(.down))...Int((c.y + r + 1).rounded(.up)) {
            for x in Int((c.x - r - 1).rounded(.down))...Int((c.x + r + 1).rounded(.up)) {
                let dx = Double(x) + 0.5 - c.x, dy = Double(y) + 0.5 - c.y
                blend(x, y, color, max(0, min(1, r + 0.5 - (dx * dx + dy * dy).squareRoot())))
            }
        }
    }

    /// A filled convex polygon, coverage from 4×4 samples per pixel.
    mutating func convexPolygon(_ corners: [Point], color: PlotScene.Color) {
        guard corners.count >= 3 else { return }
        // Winding of the corners, so "inside" is the same side of every edge.
        var area = 0.0
        for (a, b) in zip(corners, corners.dropFirst() + [corners[0]]) { area += a.x * b.y - b.x * a.y }
        let sign = area >= 0 ? 1.0 : -1.0
        func inside(_ x: Double, _ y: Double) -> Bool {
            for (a, b) in zip(corners, corners.dropFirst() + [corners[0]]) where sign * ((b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x)) < 0 {
                return false
            }
            return true
        }
        let xs = corners.map(\.x), ys = corners.map(\.y)
        for y in Int((ys.min() ?? 0).rounded(.down))...Int((ys.max() ?? 0).rounded(.up)) {
            for x in Int((xs.min() ?? 0).rounded(.down))...Int((xs.max() ?? 0).rounded(.up)) {
                var hits = 0
                for sy in 0..<4 { for sx in 0..<4 where inside(Double(x) + (Double(sx) + 0.5) / 4, Double(y) + (Double(sy) + 0.5) / 4) { hits += 1 } }
                blend(x, y, color, Double(hits) / 16)
            }
        }
    }
}
