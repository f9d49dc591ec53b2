/// Procedural scenes: a noisy, varied background with a few coloured shapes.
///
/// All tasks draw from the same attribute sets (colours, kinds, sizes, positions), so that
/// knowledge learned on one task is useful on another (docs/design.md §5, calibration).

public enum ShapeKind: String, CaseIterable, Sendable {
    case circle, square, triangle, diamond, cross
    public var plural: String { self == .cross ? "crosses" : rawValue + "s" }
}

public enum ShapeColor: String, CaseIterable, Sendable {
    case red, green, blue, yellow, purple, white
    /// Nominal RGB; every drawn shape gets a jitter of up to ±24 per channel on top.
    public var rgb: RGB {
        switch self {
        case .red: return RGB(215, 40, 40)
        case .green: return RGB(45, 175, 60)
        case .blue: return RGB(50, 85, 225)
        case .yellow: return RGB(230, 210, 40)
        case .purple: return RGB(155, 60, 195)
        case .white: return RGB(235, 235, 235)
        }
    }
}

public enum ShapeSize: String, CaseIterable, Sendable {
    case small, large
}

/// One shape with its pixel bounding box [x, x+w) × [y, y+h).
public struct SceneShape: Equatable, Sendable {
    public var kind: ShapeKind
    public var color: ShapeColor
    public var size: ShapeSize
    public var x: Int, y: Int, w: Int, h: Int
    public var centerX: Double { Double(x) + Double(w) / 2 }
    public var centerY: Double { Double(y) + Double(h) / 2 }
}

public struct Scene: Sendable {
    public var width: Int
    public var height: Int
    public var shapes: [SceneShape]
    public var image: RGBImage
}

/// Draws backgrounds and shapes with seeded variation.
public struct SceneDrawer: Sendable {
    public let size: Int
    public init(size: Int) { self.size = size }

    /// Side lengths in pixels for the two size classes (6–8 and 11–14 at 32×32).
    func side(_ s: ShapeSize, _ rng: inout PilotRNG) -> Int {
        let lo: Double, hi: Double
        switch s {
        case .small: lo = 0.19; hi = 0.25
        case .large: lo = 0.34; hi = 0.44
        }
        let a = max(3, Int((lo * Double(size)).rounded())), b = max(a, Int((hi * Double(size)).rounded()))
        return rng.int(in: a...b)
    }

    /// A background: a dark or mid tone with a tint, a gradient and per-pixel noise.
    public func background(_ rng: inout PilotRNG) -> RGBImage {
        var img = RGBImage(width: size, height: size)
        let base = rng.int(in: 25...95)
        let tint = (rng.int(in: -14...14), rng.int(in: -14...14), rng.int(in: -14...14))
        let gx = rng.int(in: -20...20), gy = rng.int(in: -20...20)
        let noise = rng.int(in: 2...10)
        for y in 0..<size {
            for x in 0..<size {
                let g = (gx * x + gy * y) / max(1, size)
                let n = (rng.int(2 * noise + 1) - noise)
                img.set(x, y, RGB(clamp8(base + tint.0 + g + n), clamp8(base + tint.1 + g + n), clamp8(base + tint.2 + g + n)))
            }
        }
        return img
    }

    /// Draws `shape` with a colour jitter and per-pixel noise.
    public func draw(_ shape: SceneShape, into img: inout RGBImage, _ rng: inout PilotRNG) {
        let c = shape.color.rgb
        let j = (rng.int(in: -24...24), rng.int(in: -24...24), rng.int(in: -24...24))
        let cw = Double(shape.w) / 2, ch = Double(shape.h) / 2
        for py in shape.y..<(shape.y + shape.h) {
            for px in shape.x..<(shape.x + shape.w) {
                // Pixel centre relative to the box centre, in units of the half side.
                let dx = (Double(px - shape.x) + 0.5 - cw) / cw
                let dy = (Double(py - shape.y) + 0.5 - ch) / ch
                let inside: Bool
                switch shape.kind {
                case .square: inside = true
                case .circle: inside = dx * dx + dy * dy <= 1.0
                case .diamond: inside = abs(dx) + abs(dy) <= 1.0
                case .triangle: inside = abs(dx) <= (dy + 1) / 2 + 0.06
                case .cross: inside = abs(dx) <= 0.36 || abs(dy) <= 0.36
                }
                if !inside { continue }
                let n = rng.int(in: -8...8)
                img.set(px, py, RGB(clamp8(Int(c.r) + j.0 + n), clamp8(Int(c.g) + j.1 + n), clamp8(Int(c.b) + j.2 + n)))
            }
        }
    }

    /// Places shapes with the given attributes at random, without overlap (one pixel of gap).
    /// Returns nil when no placement was found (the caller draws new attributes).
    public func place(_ specs: [(ShapeKind, ShapeColor, ShapeSize)], _ rng: inout PilotRNG) -> [SceneShape]? {
        var placed: [SceneShape] = []
        for (kind, color, sz) in specs {
            let s = side(sz, &rng)
            var ok = false
            for _ in 0..<60 {
                let x = rng.int(in: 1...(size - s - 1)), y = rng.int(in: 1...(size - s - 1))
                let cand = SceneShape(kind: kind, color: color, size: sz, x: x, y: y, w: s, h: s)
                if placed.allSatisfy({ !overlaps($0, cand) }) { placed.append(cand); ok = true; break }
            }
            if !ok { return nil }
        }
        return placed
    }

    func overlaps(_ a: SceneShape, _ b: SceneShape) -> Bool {
        !(a.x + a.w + 1 <= b.x || b.x + b.w + 1 <= a.x || a.y + a.h + 1 <= b.y || b.y + b.h + 1 <= a.y)
    }

    /// A scene of `count` shapes with distinct (colour, kind) pairs, so that "the red circle"
    /// always names exactly one shape. At most two shapes are large.
    public func scene(count: Int, _ rng: inout PilotRNG) -> Scene {
        while true {
            var specs: [(ShapeKind, ShapeColor, ShapeSize)] = []
            var used = Set<String>()
            var large = 0
            while specs.count < count {
                let k = rng.pick(ShapeKind.allCases), c = rng.pick(ShapeColor.allCases)
                var s: ShapeSize = rng.bool() ? .large : .small
                if s == .large && (large >= 2 || count >= 4) { s = .small }
                let key = "\(c.rawValue) \(k.rawValue)"
                if used.contains(key) { continue }
                used.insert(key)
                if s == .large { large += 1 }
                specs.append((k, c, s))
            }
            guard let shapes = place(specs, &rng) else { continue }
            var img = background(&rng)
            for s in shapes { draw(s, into: &img, &rng) }
            return Scene(width: size, height: size, shapes: shapes, image: img)
        }
    }
}

extension SceneShape {
    /// Where the shape sits in the image, in words ("left", "right", "top", "bottom", "middle").
    func region(imageSize: Int) -> String {
        let s = Double(imageSize)
        let dx = centerX - s / 2, dy = centerY - s / 2
        if abs(dx) < s * 0.12 && abs(dy) < s * 0.12 { return "middle" }
        if abs(dx) >= abs(dy) { return dx < 0 ? "left" : "right" }
        return dy < 0 ? "top" : "bottom"
    }

    /// The spatial relation of self to `other` ("left of", "right of", "above", "below").
    func relation(to other: SceneShape) -> String {
        let dx = centerX - other.centerX, dy = centerY - other.centerY
        if abs(dx) >= abs(dy) { return dx < 0 ? "left of" : "right of" }
        return dy < 0 ? "above" : "below"
    }
}

func inverseRelation(_ r: String) -> String {
    switch r {
    case "left of": return "right of"
    case "right of": return "left of"
    case "above": return "below"
    default: return "above"
    }
}
