import Foundation
import PilotCore

/// The figure of `pilot report --plot-average`: the average of the task averages per round, then
/// each task's average per round, one panel each; one line per configuration (the mean over the
/// seeds) with error bars of ± one sample standard deviation where a configuration has several
/// seeds. Colour and marker say the configuration (legend at the bottom); the bars of different
/// configurations at one round are spread a little sideways so that they do not hide each other.
public enum ReportAveragePlot {
    typealias P = ReportPlot

    /// Writes the figure as SVG or PNG, chosen by the extension of `path`.
    public static func write(_ report: RunReport, to path: String) throws {
        try P.write(scene(report), to: path, option: "--plot-average")
    }

    public static func scene(_ report: RunReport) -> PlotScene {
        let columns = [ReportColumn.average] + report.tasks.map(ReportColumn.taskAverage)
        let panelWidth = P.tickLabelWidth + P.plotWidth
        let width = 2 * P.margin + Double(columns.count) * panelWidth + Double(max(0, columns.count - 1)) * P.panelGap
        let legendTop = P.plotTop + P.plotHeight + 36
        let rows = P.legendRows(labels: report.groups.map(\.label), width: width - 2 * P.margin)
        let height = legendTop + Double(rows.count) * P.legendRow + P.margin
        let seeds = Set(report.groups.map(\.runs.count))
        let seedText = seeds.count == 1 ? "\(seeds.first!) seed\(seeds.first! == 1 ? "" : "s")" : "seeds per legend"
        var scene = PlotScene(width: width, height: height)
        scene.items.append(.text("Average eval score per round (mean +- std over \(seedText))",
                                 at: .init(P.margin, P.margin), size: 2, color: P.ink, anchor: .start))
        for (i, column) in columns.enumerated() {
            let left = P.margin + Double(i) * (panelWidth + P.panelGap) + P.tickLabelWidth
            drawPanel(&scene, report: report, column: column, left: left)
        }
        for (row, entries) in rows.enumerated() {
            var x = P.margin
            let y = legendTop + Double(row) * P.legendRow
            for g in entries {
                let color = P.palette[g % P.palette.count]
                scene.items.append(.line(.init(x, y + 3.5), .init(x + 22, y + 3.5), color: color, width: 2, dash: []))
                scene.items.append(.marker(.init(x + 11, y + 3.5), shape(g), radius: 2.5, color: color))
                let label = report.groups[g].label + " (n=\(report.groups[g].runs.count))"
                scene.items.append(.text(label, at: .init(x + 28, y), size: 1, color: P.ink, anchor: .start))
                x += P.legendWidth(label)
            }
        }
        return scene
    }

    static func shape(_ g: Int) -> PlotScene.MarkerShape { PlotScene.MarkerShape.allCases[g % PlotScene.MarkerShape.allCases.count] }

    static func drawPanel(_ scene: inout PlotScene, report: RunReport, column: ReportColumn, left: Double) {
        let bottom = P.plotTop + P.plotHeight
        let series = report.groups.map { $0.curve(column, clientTasks: report.clientTasks) }
        let scale = ReportUnits.scale
        let lows = series.flatMap { $0.map { ($0.statistic.mean - ($0.statistic.std ?? 0)) * scale } }
        let highs = series.flatMap { $0.map { ($0.statistic.mean + ($0.statistic.std ?? 0)) * scale } }
        let (yLow, yHigh, yStep) = P.niceRange(lows.min() ?? 0, highs.max() ?? 1)
        let rounds = series.flatMap { $0.map(\.round) }
        let xLow = Double(rounds.min() ?? 1), xHigh = Double(rounds.max() ?? 1)
        let groups = report.groups.count
        // Sideways spread of a configuration's points: up to ±0.2 of a round in all.
        func dodge(_ g: Int) -> Double { groups > 1 ? (Double(g) / Double(groups - 1) - 0.5) * 0.4 : 0 }
        func px(_ r: Double) -> Double {
            xHigh > xLow ? left + P.innerPad + (r - xLow) / (xHigh - xLow) * (P.plotWidth - 2 * P.innerPad) : left + P.plotWidth / 2
        }
        func py(_ v: Double) -> Double { bottom - (v - yLow) / (yHigh - yLow) * P.plotHeight }

        let title: String
        switch column {
        case .average: title = "avg (mean of the task averages)"
        case .taskAverage(let t): title = "\(t) avg (\(ReportUnits.plotMeaning(t)))"
        case .client(let k): title = "client \(k)"
        }
        P.drawAxes(&scene, title: title, left: left, y: (yLow, yHigh, yStep), rounds: (xLow, xHigh), roundTicks: 10, px: px, py: py)

        for (g, points) in series.enumerated() {
            let color = P.palette[g % P.palette.count]
            let label = report.groups[g].label
            scene.items.append(.polyline(points.map { .init(px(Double($0.round) + dodge(g)), py($0.statistic.mean * scale)) },
                                         color: color, width: 1.5, dash: [], title: "\(label): \(title)"))
            for p in points {
                let x = px(Double(p.round) + dodge(g))
                if let std = p.statistic.std, std > 0 {
                    let lo = py((p.statistic.mean - std) * scale), hi = py((p.statistic.mean + std) * scale)
                    scene.items.append(.line(.init(x, lo), .init(x, hi), color: color, width: 1, dash: []))
                    scene.items.append(.line(.init(x - 2, lo), .init(x + 2, lo), color: color, width: 1, dash: []))
                    scene.items.append(.line(.init(x - 2, hi), .init(x + 2, hi), color: color, width: 1, dash: []))
                }
                scene.items.append(.marker(.init(x, py(p.statistic.mean * scale)), shape(g), radius: 2.5, color: color))
            }
        }
    }
}
