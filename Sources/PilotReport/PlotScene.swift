import Foundation

/// A figure as a list of drawing primitives in logical units (origin top left, y down). The SVG
/// writer here and the rasteriser in `PlotScene+PNG.swift` draw the same list, so the two files
/// show the same figure. Text is laid out in the metrics of the project's 5×7 bitmap font
/// (`BitmapFont`): a character advances 6·size units and its capitals are 7·size units high.
public struct PlotScene: Sendable {
    public struct Point: Sendable, Equatable {
        public var x: Double, y: Double
        public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
    }

    public struct Color: Sendable, Equatable {
        public var r: UInt8, g: UInt8, b: UInt8
        public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
        public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }
        public static let white = Color(255, 255, 255)
    }

    public enum Anchor: Sendable { case start, middle, end }
    public enum MarkerShape: Sendable, CaseIterable { case circle, square, triangle, diamond }

    public enum Item: Sendable {
        case rect(x: Double, y: Double, width: Double, height: Double, fill: Color?, stroke: Color?)
        /// `dash`: on/off lengths in units; empty for a solid line.
        case line(Point, Point, color: Color, width: Double, dash: [Double])
        /// One data series; `title` names it (an SVG tooltip).
        case polyline([Point], color: Color, width: Double, dash: [Double], title: String)
        case marker(Point, MarkerShape, radius: Double, color: Color)
        /// `at` is the top of the text; `anchor` says whether `at.x` is its left end, centre or right end.
        case text(String, at: Point, size: Int, color: Color, anchor: Anchor)
    }

    public let width: Double
    public let height: Double
    public var items: [Item] = []

    public init(width: Double, height: Double) { self.width = width; self.height = height }

    /// Width in units of `text` at `size` (the bitmap font's advance).
    public static func textWidth(_ text: String, size: Int) -> Double { Double(max(0, text.count * 6 - 1) * size) }

    /// The left end of a text of `width` anchored at `x`.
    static func left(_ x: Double, width: Double, anchor: Anchor) -> Double {
        switch anchor {
        case .start: return x
        case .middle: return x - width / 2
        case .end: return x - width
        }
    }

    /// The corners of a triangle or diamond marker (circle and square are drawn natively).
    static func polygon(_ shape: MarkerShape, at c: Point, radius r: Double) -> [Point] {
        switch shape {
        case .triangle: return [Point(c.x, c.y - r * 1.2), Point(c.x + r * 1.1, c.y + r * 0.8), Point(c.x - r * 1.1, c.y + r * 0.8)]
        case .diamond: return [Point(c.x, c.y - r * 1.3), Point(c.x + r * 1.3, c.y), Point(c.x, c.y + r * 1.3), Point(c.x - r * 1.3, c.y)]
        case .circle, .square: return [Point(c.x - r, c.y - r), Point(c.x + r, c.y - r), Point(c.x + r, c.y + r), Point(c.x - r, c.y + r)]
        }
    }

    // MARK: SVG

    /// A standalone SVG 1.1 document.
    public func svg() -> String {
        func n(_ v: Double) -> String {
            let r = (v * 100).rounded() / 100
            return r == r.rounded() ? String(Int(r)) : String(r)
        }
        func dashAttributes(_ dash: [Double]) -> String {
            dash.isEmpty ? " stroke-linecap=\"round\"" : " stroke-dasharray=\"\(dash.map(n).joined(separator: ","))\" stroke-linecap=\"butt\""
        }
        var out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\">",
                   "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>"]
        for item in items {
            switch item {
            case let .rect(x, y, w, h, fill, stroke):
                out.append("<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"\(fill?.hex ?? "none")\""
                           + (stroke.map { " stroke=\"\($0.hex)\" stroke-width=\"1\"" } ?? "") + "/>")
            case let .line(a, b, color, w, dash):
                out.append("<line x1=\"\(n(a.x))\" y1=\"\(n(a.y))\" x2=\"\(n(b.x))\" y2=\"\(n(b.y))\" stroke=\"\(color.hex)\" stroke-width=\"\(n(w))\"\(dashAttributes(dash))/>")
            case let .polyline(points, color, w, dash, title):
                let pts = points.map { "\(n($0.x)),\(n($0.y))" }.joined(separator: " ")
                out.append("<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color.hex)\" stroke-width=\"\(n(w))\" stroke-linejoin=\"round\"\(dashAttributes(dash))>"
                           + "<title>\(Self.escape(title))</title></polyline>")
            case let .marker(c, shape, r, color):
                switch shape {
                case .circle: out.append("<circle cx=\"\(n(c.x))\" cy=\"\(n(c.y))\" r=\"\(n(r))\" fill=\"\(color.hex)\"/>")
                case .square: out.append("<rect x=\"\(n(c.x - r))\" y=\"\(n(c.y - r))\" width=\"\(n(2 * r))\" height=\"\(n(2 * r))\" fill=\"\(color.hex)\"/>")
                case .triangle, .diamond:
                    let pts = Self.polygon(shape, at: c, radius: r).map { "\(n($0.x)),\(n($0.y))" }.joined(separator: " ")
                    out.append("<polygon points=\"\(pts)\" fill=\"\(color.hex)\"/>")
                }
            case let .text(s, at, size, color, anchor):
                let a = anchor == .start ? "start" : anchor == .middle ? "middle" : "end"
                // font-size 10·size gives a monospace advance of about 6·size and capitals about 7·size high,
                // so the baseline sits 7·size below the top, as in the bitmap font.
                out.append("<text x=\"\(n(at.x))\" y=\"\(n(at.y + 7 * Double(size)))\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"\(10 * size)\" "
                           + "text-anchor=\"\(a)\" fill=\"\(color.hex)\">\(Self.escape(s))</text>")
            }
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
