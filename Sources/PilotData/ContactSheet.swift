/// A contact sheet of examples for `pilot data preview`: each example's image enlarged,
/// with grounding boxes outlined, and its instruction, answer and references written beside
/// it with the project's bitmap font.
public enum ContactSheet {
    public struct Options: Sendable {
        /// Integer enlargement of each image.
        public var scale = 4
        /// Characters per text line.
        public var columns = 64
        public init(scale: Int = 4, columns: Int = 64) { self.scale = scale; self.columns = columns }
    }

    static let background = RGB(28, 28, 32)
    static let titleColor = RGB(255, 255, 255)
    static let idColor = RGB(150, 150, 160)
    static let questionColor = RGB(140, 210, 255)
    static let answerColor = RGB(255, 220, 90)
    static let refColor = RGB(200, 200, 200)
    static let boxColor = RGB(0, 255, 120)

    /// Renders sections (a title and its examples) one below the other.
    public static func render(_ sections: [(title: String, examples: [Example])], options: Options = Options()) -> RGBImage {
        let margin = 8, gap = 10, lineH = BitmapFont.glyphHeight + 3
        let imgSide = (sections.flatMap(\.examples).map { max($0.image.width, $0.image.height) }.max() ?? 32) * options.scale
        let textX = margin + imgSide + gap
        let width = textX + options.columns * BitmapFont.advance + margin
        struct Row { var example: Example; var lines: [(String, RGB)]; var height: Int }
        var layout: [(String, [Row])] = []
        var height = margin
        for (title, examples) in sections {
            height += 2 * lineH + 6
            var rows: [Row] = []
            for e in examples {
                var lines: [(String, RGB)] = [("\(e.task.rawValue) / \(e.category) / \(e.id)", idColor)]
                for l in BitmapFont.wrap("Q: " + e.instruction, columns: options.columns) { lines.append((l, questionColor)) }
                for l in BitmapFont.wrap("A: " + e.answer, columns: options.columns) { lines.append((l, answerColor)) }
                if e.references != [e.answer] {
                    for (i, r) in e.references.enumerated() {
                        for l in BitmapFont.wrap("R\(i + 1): " + r, columns: options.columns) { lines.append((l, refColor)) }
                    }
                }
                let h = max(e.image.height * options.scale, lines.count * lineH) + gap
                rows.append(Row(example: e, lines: lines, height: h))
                height += h
            }
            layout.append((title, rows))
        }
        height += margin
        var sheet = RGBImage(width: width, height: height, fill: background)
        var y = margin
        for (title, rows) in layout {
            BitmapFont.draw(title.uppercased(), into: &sheet, x: margin, y: y, color: titleColor, scale: 2)
            y += 2 * lineH + 6
            for row in rows {
                let e = row.example
                sheet.blit(e.image, x: margin, y: y, scale: options.scale)
                if e.task == .grounding, let b = Metrics.parseBox(e.answer) {
                    let sx = Double(e.image.width * options.scale), sy = Double(e.image.height * options.scale)
                    let x1 = margin + Int((b.x1 * sx).rounded()), y1 = y + Int((b.y1 * sy).rounded())
                    let x2 = margin + Int((b.x2 * sx).rounded()), y2 = y + Int((b.y2 * sy).rounded())
                    if x2 > x1 && y2 > y1 { sheet.strokeRect(x: x1, y: y1, w: x2 - x1, h: y2 - y1, boxColor, thickness: 1) }
                }
                for (i, (text, color)) in row.lines.enumerated() {
                    BitmapFont.draw(text, into: &sheet, x: textX, y: y + i * lineH, color: color)
                }
                y += row.height
            }
        }
        return sheet
    }
}
