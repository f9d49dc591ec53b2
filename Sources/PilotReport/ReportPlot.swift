import Foundation
import PilotCore

/// The figure of `pilot report --plot`: eval score per round, one panel per task (caption's
/// CIDEr-D and the accuracies have different scales), one line per client and configuration.
/// Colour says the configuration (the method legend at the bottom); line style and marker say the
/// client (the legend under each panel). With several seeds a point is the mean over the seeds,
/// drawn at the rounds in which every seed evaluated the client.
public enum ReportPlot {
    /// Tableau 10: distinct colours that stay apart for most colour-vision deficiencies.
    public static let palette: [PlotScene.Color] = [
        .init(0x1f, 0x77, 0xb4), .init(0xff, 0x7f, 0x0e), .init(0x2c, 0xa0, 0x2c), .init(0xd6, 0x27, 0x28),
        .init(0x94, 0x67, 0xbd), .init(0x8c, 0x56, 0x4b), .init(0xe3, 0x77, 0xc2), .init(0x7f, 0x7f, 0x7f),
        .init(0xbc, 0xbd, 0x22), .init(0x17, 0xbe, 0xcf),
    ]
    /// Line style of the i-th client of a task (solid, dashed, dotted, dash-dot).
    public static let dashes: [[Double]] = [[], [6, 3], [1.5, 2.5], [8, 3, 2, 3]]

    static let ink = PlotScene.Color(0x33, 0x33, 0x33)
    static let grid = PlotScene.Color(0xe4, 0xe4, 0xe4)
    static let frame = PlotScene.Color(0x99, 0x99, 0x99)

    // Geometry in units (the PNG has 2 pixels per unit).
    static let margin = 16.0, tickLabelWidth = 40.0, plotWidth = 260.0, plotHeight = 190.0, panelGap = 26.0
    static let plotTop = 58.0, innerPad = 12.0, legendRow = 16.0

    /// Writes the figure as SVG or PNG, chosen by the extension of `path`.
    public static func write(_ report: RunReport, to path: String) throws {
        try write(scene(report), to: path, option: "--plot")
    }

    /// Writes `scene` as SVG or PNG (2 pixels per unit), chosen by the extension of `path`;
    /// `option` names the flag in the error for another extension.
    static func write(_ scene: PlotScene, to path: String, option: String) throws {
        let bytes: [UInt8]
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "svg": bytes = Array(scene.svg().utf8)
        case "png": bytes = try scene.png(scale: 2)
        default: throw PilotError.invalidArgument("\(option) '\(path)': the file name must end in .svg or .png")
        }
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw PilotError.message("cannot write the plot '\(path)': \(error.localizedDescription). Check that its folder exists and is writable.") }
    }

    /// The axes of one panel whose plot area starts at `left`: its title, frame, y ticks and grid
    /// for scores in [yLow, yHigh], round ticks from xLow to xHigh (about `roundTicks` of them)
    /// and the `round` label. `px` and `py` map a round and a score to units.
    static func drawAxes(_ scene: inout PlotScene, title: String, left: Double, y: (low: Double, high: Double, step: Double),
                         rounds: (low: Double, high: Double), roundTicks: Double,
                         px: (Double) -> Double, py: (Double) -> Double) {
        let bottom = plotTop + plotHeight
        scene.items.append(.text(title, at: .init(left + plotWidth / 2, plotTop - 16), size: 1, color: ink, anchor: .middle))
        scene.items.append(.rect(x: left, y: plotTop, width: plotWidth, height: plotHeight, fill: nil, stroke: frame))
        let decimals = max(0, Int((-log10(y.step)).rounded(.up)))
        var tick = y.low
        while tick <= y.high + y.step / 2 {
            let ty = py(tick)
            if tick > y.low + y.step / 2 && tick < y.high - y.step / 2 {
                scene.items.append(.line(.init(left + 1, ty), .init(left + plotWidth - 1, ty), color: grid, width: 1, dash: []))
            }
            scene.items.append(.text(String(format: "%.\(decimals)f", tick), at: .init(left - 5, ty - 3.5), size: 1, color: ink, anchor: .end))
            tick += y.step
        }
        let roundStep = max(1, Int((niceStep((rounds.high - rounds.low) / roundTicks)).rounded(.up)))
        for r in stride(from: Int(rounds.low), through: Int(rounds.high), by: roundStep) {
            scene.items.append(.line(.init(px(Double(r)), bottom), .init(px(Double(r)), bottom + 4), color: frame, width: 1, dash: []))
            scene.items.append(.text("\(r)", at: .init(px(Double(r)), bottom + 7), size: 1, color: ink, anchor: .middle))
        }
        scene.items.append(.text("round", at: .init(left + plotWidth / 2, bottom + 19), size: 1, color: ink, anchor: .middle))
    }

    /// The figure as drawing primitives.
    public static func scene(_ report: RunReport) -> PlotScene {
        let tasks = report.tasks
        let panelWidth = tickLabelWidth + plotWidth
        let width = 2 * margin + Double(tasks.count) * panelWidth + Double(max(0, tasks.count - 1)) * panelGap
        let clientsOf = tasks.map { t in report.clientTasks.indices.filter { report.clientTasks[$0] == t } }
        let clientLegendTop = plotTop + plotHeight + 36
        let clientRows = clientsOf.map { legendRows(labels: $0.map { "c\($0)" }, width: plotWidth).count }.max() ?? 1
        let methodTop = clientLegendTop + Double(clientRows) * legendRow + 14
        let methodRows = legendRows(labels: report.groups.map(\.label), width: width - 2 * margin)
        let height = methodTop + Double(methodRows.count) * legendRow + margin

        var scene = PlotScene(width: width, height: height)
        scene.items.append(.text("Eval score per round" + (report.groups.contains { $0.runs.count > 1 } ? " (mean over seeds)" : ""),
                                 at: .init(margin, margin), size: 2, color: ink, anchor: .start))
        for (i, task) in tasks.enumerated() {
            let left = margin + Double(i) * (panelWidth + panelGap) + tickLabelWidth
            drawPanel(&scene, report: report, task: task, clients: clientsOf[i], left: left, legendTop: clientLegendTop)
        }
        // Method legend: colour swatch, then the label.
        for (row, entries) in methodRows.enumerated() {
            var x = margin
            let y = methodTop + Double(row) * legendRow
            for g in entries {
                let color = palette[g % palette.count]
                scene.items.append(.line(.init(x, y + 3.5), .init(x + 22, y + 3.5), color: color, width: 3, dash: []))
                scene.items.append(.text(report.groups[g].label, at: .init(x + 28, y), size: 1, color: ink, anchor: .start))
                x += legendWidth(report.groups[g].label)
            }
        }
        return scene
    }

    static func drawPanel(_ scene: inout PlotScene, report: RunReport, task: String, clients: [Int], left: Double, legendTop: Double) {
        let bottom = plotTop + plotHeight
        // Series: (group, client, points in (round, score ×100)).
        var series: [(group: Int, client: Int, points: [(round: Int, value: Double)])] = []
        for (g, group) in report.groups.enumerated() {
            for k in clients { series.append((g, k, group.curve(client: k).map { ($0.round, $0.value * ReportUnits.scale) })) }
        }
        let rounds = series.flatMap { $0.points.map(\.round) }
        let values = series.flatMap { $0.points.map(\.value) }
        let (yLow, yHigh, yStep) = niceRange(values.min() ?? 0, values.max() ?? 1)
        let xLow = Double(rounds.min() ?? 1), xHigh = Double(rounds.max() ?? 1)
        func px(_ r: Double) -> Double {
            xHigh > xLow ? left + innerPad + (r - xLow) / (xHigh - xLow) * (plotWidth - 2 * innerPad) : left + plotWidth / 2
        }
        func py(_ v: Double) -> Double { bottom - (v - yLow) / (yHigh - yLow) * plotHeight }

        drawAxes(&scene, title: "\(task) (\(ReportUnits.plotMeaning(task)))", left: left, y: (yLow, yHigh, yStep),
                 rounds: (xLow, xHigh), roundTicks: 8, px: px, py: py)

        // Earlier configurations are drawn wider, so a line hidden under an equal later one still
        // shows as a border around it.
        let groups = report.groups.count
        func widen(_ g: Int) -> Double { 1.2 * Double(min(groups - 1 - g, 3)) }
        for s in series {
            let j = clients.firstIndex(of: s.client) ?? 0
            scene.items.append(.polyline(s.points.map { .init(px(Double($0.round)), py($0.value)) }, color: palette[s.group % palette.count],
                                         width: 1.5 + widen(s.group), dash: dashes[j % dashes.count],
                                         title: "\(report.groups[s.group].label): client \(s.client) (\(task))"))
        }
        for s in series {
            let j = clients.firstIndex(of: s.client) ?? 0
            let shape = PlotScene.MarkerShape.allCases[j % PlotScene.MarkerShape.allCases.count]
            for p in s.points {
                scene.items.append(.marker(.init(px(Double(p.round)), py(p.value)), shape, radius: 2.5 + widen(s.group) / 2,
                                           color: palette[s.group % palette.count]))
            }
        }
        // Client legend: line style and marker of each client of this task.
        for (row, entries) in legendRows(labels: clients.map { "c\($0)" }, width: plotWidth).enumerated() {
            var x = left
            let y = legendTop + Double(row) * legendRow
            for j in entries {
                let shape = PlotScene.MarkerShape.allCases[j % PlotScene.MarkerShape.allCases.count]
                scene.items.append(.line(.init(x, y + 3.5), .init(x + 22, y + 3.5), color: ink, width: 1.5, dash: dashes[j % dashes.count]))
                scene.items.append(.marker(.init(x + 11, y + 3.5), shape, radius: 2.5, color: ink))
                scene.items.append(.text("client \(clients[j])", at: .init(x + 28, y), size: 1, color: ink, anchor: .start))
                x += legendWidth("client \(clients[j])")
            }
        }
    }

    static func legendWidth(_ label: String) -> Double { 28 + PlotScene.textWidth(label, size: 1) + 18 }

    /// Greedy rows of legend entries (indices into `labels`) that fit in `width`.
    static func legendRows(labels: [String], width: Double) -> [[Int]] {
        var rows: [[Int]] = [[]]
        var used = 0.0
        for (i, label) in labels.enumerated() {
            let w = legendWidth(label)
            if used + w > width, !(rows.last ?? []).isEmpty { rows.append([]); used = 0 }
            rows[rows.count - 1].append(i)
            used += w
        }
        return rows
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let f = raw / magnitude
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude
    }

    /// An axis range with round ends covering [low, high], and its tick step (about 5 ticks).
    static func niceRange(_ low: Double, _ high: Double) -> (Double, Double, Double) {
        var lo = low, hi = high
        if hi - lo < 1e-9 {
            let pad = max(abs(hi) * 0.1, 1)
            lo -= pad; hi += pad
            if low >= 0 && lo < 0 { lo = 0 }
        }
        let step = niceStep((hi - lo) / 5)
        let a = (lo / step).rounded(.down) * step, b = (hi / step).rounded(.up) * step
        return (a, b > a ? b : a + step, step)
    }
}
