import Foundation

/// One line of a chart.
public struct ChartSeries: Sendable {
    public var run: String
    public var label: String
    public var colour: String
    /// SVG `stroke-dasharray`, or nil for a solid line.
    public var dash: String?
    public var width: Double
    public var points: [(x: Double, y: Double)]
    /// A step line (the value holds until the next point), for ranks.
    public var step: Bool
    public var markers: Bool

    public init(
        run: String, label: String, colour: String, dash: String? = nil, width: Double = 2,
        points: [(x: Double, y: Double)], step: Bool = false, markers: Bool = false
    ) {
        self.run = run
        self.label = label
        self.colour = colour
        self.dash = dash
        self.width = width
        self.points = points
        self.step = step
        self.markers = markers
    }
}

/// How an axis maps and labels its values.
public struct ChartAxis: Sendable {
    public var label: String
    public var format: @Sendable (Double) -> String
    public var minimum: Double?
    public var maximum: Double?
    /// Base-2 logarithmic (rank fractions).
    public var log2: Bool
    /// Ticks at whole numbers only (rounds, ranks, clients).
    public var integer: Bool

    public init(
        label: String, minimum: Double? = nil, maximum: Double? = nil, log2: Bool = false,
        integer: Bool = false, format: @escaping @Sendable (Double) -> String
    ) {
        self.label = label
        self.integer = integer
        self.minimum = minimum
        self.maximum = maximum
        self.log2 = log2
        self.format = format
    }
}

/// A horizontal or vertical reference line with a label.
public struct ChartGuide: Sendable {
    public enum Orientation: Sendable { case horizontal, vertical }
    public var orientation: Orientation
    public var value: Double
    public var label: String
    public var colour: String

    public init(
        _ orientation: Orientation, at value: Double, label: String, colour: String = "#8a8f98"
    ) {
        self.orientation = orientation
        self.value = value
        self.label = label
        self.colour = colour
    }
}

/// A stack of values at one x (one bar).
public struct StackedBar: Sendable {
    public var x: Double
    public var values: [Double]

    public init(x: Double, values: [Double]) {
        self.x = x
        self.values = values
    }
}

/// Plot geometry shared by the chart kinds (SVG user units).
struct PlotFrame {
    static let width = 640.0
    static let height = 340.0
    /// How far past the plot area a clipped line may draw: half the widest stroke.
    static let clipPadding = 1.5
    let left = 70.0
    let right = 18.0
    let top = 14.0
    let bottom = 50.0

    var plotWidth: Double { Self.width - left - right }
    var plotHeight: Double { Self.height - top - bottom }
}

/// Linear (or log2) mapping from data to plot coordinates with readable ticks.
struct Scale {
    let low: Double
    let high: Double
    let log2: Bool
    let ticks: [Double]

    init(
        values: [Double], minimum: Double?, maximum: Double?, log2: Bool, includeZero: Bool,
        integer: Bool = false
    ) {
        self.log2 = log2
        if log2 {
            let positive = values.filter { $0 > 0 }
            let lowest = minimum ?? positive.min() ?? 1
            let highest = maximum ?? positive.max() ?? 1
            let a = Foundation.log2(lowest).rounded(.down)
            let b = max(a + 1, Foundation.log2(highest).rounded(.up))
            low = a
            high = b
            ticks = stride(from: a, through: b, by: 1).map { $0 }
            return
        }
        var lowest = minimum ?? values.min() ?? 0
        var highest = maximum ?? values.max() ?? 1
        if includeZero && minimum == nil { lowest = min(lowest, 0) }
        if highest <= lowest { highest = lowest + (lowest == 0 ? 1 : abs(lowest) * 0.1) }
        let step = Self.niceStep((highest - lowest) / 5, integer: integer)
        if minimum == nil { lowest = (lowest / step).rounded(.down) * step }
        if maximum == nil { highest = (highest / step).rounded(.up) * step }
        low = lowest
        high = highest
        var marks: [Double] = []
        var tick = (lowest / step).rounded(.up) * step
        while tick <= highest + step * 1e-9 {
            marks.append(abs(tick) < step * 1e-9 ? 0 : tick)
            tick += step
        }
        ticks = marks
    }

    /// 1, 2, 2.5 or 5 times a power of ten, at least `raw` (no 2.5 and at least 1 for
    /// whole-number axes).
    static func niceStep(_ raw: Double, integer: Bool = false) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        if integer && raw <= 1 { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let factors: [Double] = integer && magnitude < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]
        for factor in factors where factor * magnitude >= raw * 0.999 {
            return factor * magnitude
        }
        return 10 * magnitude
    }

    /// The value's position in [0, 1] along the axis.
    func unit(_ value: Double) -> Double {
        let v = log2 ? Foundation.log2(max(value, 1e-12)) : value
        return (v - low) / (high - low)
    }

    /// A tick's data value (ticks of a log axis are exponents).
    func tickValue(_ tick: Double) -> Double { log2 ? pow(2, tick) : tick }
}

func number(_ value: Double) -> String {
    String(format: "%.1f", value)
}

/// The SVG shell of a chart: frame, grid, ticks and axis labels; `body` draws the data.
func chartSVG(
    id: String, title: String, x: ChartAxis, y: ChartAxis, xScale: Scale, yScale: Scale,
    guides: [ChartGuide], body: (PlotFrame, (Double) -> Double, (Double) -> Double) -> String
) -> String {
    let frame = PlotFrame()
    let px: (Double) -> Double = { frame.left + xScale.unit($0) * frame.plotWidth }
    let py: (Double) -> Double = { frame.top + (1 - yScale.unit($0)) * frame.plotHeight }
    var svg =
        "<svg class=\"chart\" id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(PlotFrame.width)) \(Int(PlotFrame.height))\" role=\"img\" aria-label=\"\(escapeXML(title))\">"
    svg += "<title>\(escapeXML(title))</title>"
    // Lines are clipped to the plot area (and half a stroke around it, so a line along the
    // frame stays whole): a value below the axis minimum (the first rounds' accuracy) ends
    // at the frame instead of running over the tick labels.
    let pad = PlotFrame.clipPadding
    svg +=
        "<defs><clipPath id=\"\(id)-clip\"><rect x=\"\(number(frame.left - pad))\" y=\"\(number(frame.top - pad))\" width=\"\(number(frame.plotWidth + 2 * pad))\" height=\"\(number(frame.plotHeight + 2 * pad))\"/></clipPath></defs>"
    svg +=
        "<rect class=\"plot\" x=\"\(number(frame.left))\" y=\"\(number(frame.top))\" width=\"\(number(frame.plotWidth))\" height=\"\(number(frame.plotHeight))\"/>"
    for tick in yScale.ticks {
        let yy =
            frame.top + (1 - (tick - yScale.low) / (yScale.high - yScale.low)) * frame.plotHeight
        svg +=
            "<line class=\"grid\" x1=\"\(number(frame.left))\" x2=\"\(number(frame.left + frame.plotWidth))\" y1=\"\(number(yy))\" y2=\"\(number(yy))\"/>"
        svg +=
            "<text class=\"tick\" x=\"\(number(frame.left - 6))\" y=\"\(number(yy + 4))\" text-anchor=\"end\">\(escapeXML(y.format(yScale.tickValue(tick))))</text>"
    }
    for tick in xScale.ticks {
        let xx = frame.left + (tick - xScale.low) / (xScale.high - xScale.low) * frame.plotWidth
        svg +=
            "<line class=\"grid\" x1=\"\(number(xx))\" x2=\"\(number(xx))\" y1=\"\(number(frame.top))\" y2=\"\(number(frame.top + frame.plotHeight))\"/>"
        svg +=
            "<text class=\"tick\" x=\"\(number(xx))\" y=\"\(number(frame.top + frame.plotHeight + 16))\" text-anchor=\"middle\">\(escapeXML(x.format(xScale.tickValue(tick))))</text>"
    }
    svg +=
        "<text class=\"axis-label\" x=\"\(number(frame.left + frame.plotWidth / 2))\" y=\"\(number(PlotFrame.height - 8))\" text-anchor=\"middle\">\(escapeXML(x.label))</text>"
    svg +=
        "<text class=\"axis-label\" transform=\"translate(16 \(number(frame.top + frame.plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(escapeXML(y.label))</text>"
    for guide in guides {
        switch guide.orientation {
        case .horizontal:
            let yy = py(guide.value)
            guard yy >= frame.top - 0.5 && yy <= frame.top + frame.plotHeight + 0.5 else {
                continue
            }
            svg +=
                "<line class=\"guide\" stroke=\"\(guide.colour)\" x1=\"\(number(frame.left))\" x2=\"\(number(frame.left + frame.plotWidth))\" y1=\"\(number(yy))\" y2=\"\(number(yy))\"/>"
            svg +=
                "<text class=\"guide-label\" x=\"\(number(frame.left + 4))\" y=\"\(number(yy - 3))\">\(escapeXML(guide.label))</text>"
        case .vertical:
            let xx = px(guide.value)
            guard xx >= frame.left - 0.5 && xx <= frame.left + frame.plotWidth + 0.5 else {
                continue
            }
            svg +=
                "<line class=\"guide\" stroke=\"\(guide.colour)\" x1=\"\(number(xx))\" x2=\"\(number(xx))\" y1=\"\(number(frame.top))\" y2=\"\(number(frame.top + frame.plotHeight))\"/>"
            // A label at the right edge (the full budget) goes left of its line, inside the
            // chart, instead of past the frame.
            let atRight = xx > frame.left + frame.plotWidth - 48
            svg +=
                "<text class=\"guide-label\" x=\"\(number(atRight ? xx - 3 : xx + 3))\" y=\"\(number(frame.top + 12))\" fill=\"\(guide.colour)\"\(atRight ? " text-anchor=\"end\"" : "")>\(escapeXML(guide.label))</text>"
        }
    }
    svg += body(frame, px, py)
    svg += "</svg>"
    return svg
}

/// A line chart of several series on shared axes.
public struct LineChart: Sendable {
    public var id: String
    public var title: String
    public var x: ChartAxis
    public var y: ChartAxis
    public var series: [ChartSeries]
    public var guides: [ChartGuide]
    public var includeZero: Bool

    public init(
        id: String, title: String, x: ChartAxis, y: ChartAxis, series: [ChartSeries],
        guides: [ChartGuide] = [], includeZero: Bool = false
    ) {
        self.id = id
        self.title = title
        self.x = x
        self.y = y
        self.series = series
        self.guides = guides
        self.includeZero = includeZero
    }

    public func svg() -> String {
        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) }
        let xScale = Scale(
            values: xs, minimum: x.minimum, maximum: x.maximum, log2: x.log2, includeZero: false,
            integer: x.integer)
        let yScale = Scale(
            values: ys, minimum: y.minimum, maximum: y.maximum, log2: y.log2,
            includeZero: includeZero, integer: y.integer)
        return chartSVG(
            id: id, title: title, x: x, y: y, xScale: xScale, yScale: yScale, guides: guides
        ) { _, px, py in
            var body = ""
            for line in series {
                body +=
                    "<g class=\"series\" data-run=\"\(escapeXML(line.run))\" data-series=\"\(escapeXML(line.label))\" data-points=\"\(line.points.count)\">"
                var path = ""
                for (index, point) in line.points.enumerated() {
                    let (xx, yy) = (px(point.x), py(point.y))
                    if index == 0 {
                        path += "M\(number(xx)) \(number(yy))"
                    } else if line.step {
                        path += "H\(number(xx))V\(number(yy))"
                    } else {
                        path += "L\(number(xx)) \(number(yy))"
                    }
                }
                let dash = line.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
                if line.points.count > 1 {
                    body +=
                        "<path d=\"\(path)\" fill=\"none\" stroke=\"\(line.colour)\" stroke-width=\"\(line.width)\"\(dash) stroke-linejoin=\"round\" clip-path=\"url(#\(id)-clip)\"/>"
                }
                if line.markers || line.points.count == 1 {
                    // Whole markers for the points on the axes' ranges; none off them.
                    let inside = { (u: Double) in u >= -1e-9 && u <= 1 + 1e-9 }
                    for point in line.points
                    where inside(xScale.unit(point.x)) && inside(yScale.unit(point.y)) {
                        body +=
                            "<circle cx=\"\(number(px(point.x)))\" cy=\"\(number(py(point.y)))\" r=\"3\" fill=\"\(line.colour)\"/>"
                    }
                }
                body += "</g>"
            }
            return body
        }
    }
}

/// Bars of stacked values at each x (bytes per round per tier), with optional lines on top.
public struct StackedBarChart: Sendable {
    public var id: String
    public var title: String
    public var x: ChartAxis
    public var y: ChartAxis
    public var run: String
    /// A name and colour per stacked value, bottom first.
    public var layers: [(label: String, colour: String)]
    public var bars: [StackedBar]
    public var lines: [ChartSeries]

    public init(
        id: String, title: String, x: ChartAxis, y: ChartAxis, run: String,
        layers: [(label: String, colour: String)], bars: [StackedBar], lines: [ChartSeries] = []
    ) {
        self.id = id
        self.title = title
        self.x = x
        self.y = y
        self.run = run
        self.layers = layers
        self.bars = bars
        self.lines = lines
    }

    public func svg() -> String {
        let xs = bars.map(\.x)
        let spacing = zip(xs, xs.dropFirst()).map { $1 - $0 }.min() ?? 1
        let xScale = Scale(
            values: xs.map { $0 - spacing / 2 } + xs.map { $0 + spacing / 2 }, minimum: x.minimum,
            maximum: x.maximum, log2: false, includeZero: false, integer: x.integer)
        let tops = bars.map { $0.values.reduce(0, +) } + lines.flatMap { $0.points.map(\.y) }
        let yScale = Scale(
            values: tops, minimum: y.minimum, maximum: y.maximum, log2: false, includeZero: true,
            integer: y.integer)
        return chartSVG(
            id: id, title: title, x: x, y: y, xScale: xScale, yScale: yScale, guides: []
        ) { frame, px, py in
            let barWidth = max(0.6, (px(spacing) - px(0)) * 0.82)
            var body = ""
            for (index, layer) in layers.enumerated() {
                body +=
                    "<g class=\"series\" data-run=\"\(escapeXML(run))\" data-series=\"\(escapeXML(layer.label))\" data-points=\"\(bars.count)\" fill=\"\(layer.colour)\">"
                for bar in bars {
                    let below = bar.values.prefix(index).reduce(0, +)
                    let value = index < bar.values.count ? bar.values[index] : 0
                    guard value > 0 else { continue }
                    let top = py(below + value)
                    let height = py(below) - top
                    body +=
                        "<rect x=\"\(number(px(bar.x) - barWidth / 2))\" y=\"\(number(top))\" width=\"\(String(format: "%.2f", barWidth))\" height=\"\(String(format: "%.2f", max(height, 0.3)))\"/>"
                }
                body += "</g>"
            }
            for line in lines {
                var path = ""
                for (i, point) in line.points.enumerated() {
                    path += (i == 0 ? "M" : "L") + "\(number(px(point.x))) \(number(py(point.y)))"
                }
                let dash = line.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
                body +=
                    "<g class=\"series\" data-run=\"\(escapeXML(line.run))\" data-series=\"\(escapeXML(line.label))\" data-points=\"\(line.points.count)\"><path d=\"\(path)\" fill=\"none\" stroke=\"\(line.colour)\" stroke-width=\"\(line.width)\"\(dash) clip-path=\"url(#\(id)-clip)\"/></g>"
            }
            _ = frame
            return body
        }
    }
}
