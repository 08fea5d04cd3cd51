import CZlib
import Foundation
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// An 8-bit, non-interlaced PNG decoded to RGB (what headless Chromium writes).
struct DecodedPNG {
    let width: Int
    let height: Int
    /// Row-major RGB bytes.
    let rgb: [UInt8]

    init(contentsOf path: String) throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        struct Bad: Error, CustomStringConvertible { let description: String }
        guard data.count > 8, data[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw Bad(description: "\(path): not a PNG")
        }
        func u32(_ at: Int) -> Int {
            Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8
                | Int(data[at + 3])
        }
        var position = 8
        var (width, height, channels) = (0, 0, 0)
        var compressed: [UInt8] = []
        while position + 8 <= data.count {
            let length = u32(position)
            let kind = String(decoding: data[position + 4..<position + 8], as: UTF8.self)
            let body = Array(data[position + 8..<position + 8 + length])
            position += 12 + length
            if kind == "IHDR" {
                width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
                height = Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7])
                guard body[8] == 8, body[12] == 0 else {
                    throw Bad(description: "\(path): not 8-bit")
                }
                switch body[9] {
                case 2: channels = 3
                case 6: channels = 4
                default: throw Bad(description: "\(path): colour type \(body[9])")
                }
            } else if kind == "IDAT" {
                compressed += body
            }
        }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var rawLength = uLongf(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            compressed.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &rawLength, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else {
            throw Bad(description: "\(path): image data does not inflate (\(status))")
        }
        var previous = [UInt8](repeating: 0, count: stride)
        var rgb = [UInt8]()
        rgb.reserveCapacity(width * height * 3)
        for row in 0..<height {
            let filter = raw[row * (stride + 1)]
            var line = Array(raw[(row * (stride + 1) + 1)..<((row + 1) * (stride + 1))])
            for x in 0..<stride {
                let a = x >= channels ? Int(line[x - channels]) : 0
                let b = Int(previous[x])
                let c = x >= channels ? Int(previous[x - channels]) : 0
                var value = Int(line[x])
                switch filter {
                case 1: value += a
                case 2: value += b
                case 3: value += (a + b) / 2
                case 4:
                    let p = a + b - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                    value += pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: break
                }
                line[x] = UInt8(truncatingIfNeeded: value)
            }
            for x in 0..<width {
                rgb += line[(x * channels)..<(x * channels + 3)]
            }
            previous = line
        }
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    func pixel(_ x: Int, _ y: Int) -> (Int, Int, Int) {
        let i = (y * width + x) * 3
        return (Int(rgb[i]), Int(rgb[i + 1]), Int(rgb[i + 2]))
    }
}

@Suite("maestro report and compare on real runs", .serialized)
struct ReportEndToEndTests {
    @Test(
        "fleet writes report.html; report renders in headless Chromium with charts in the tier colours; compare prints not reached"
    )
    func reportOfRealRuns() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lod = "\(directory)/lod"
        let dense = "\(directory)/dense"
        let first = try maestro(
            ["fleet", "Scenarios/smoke.yaml", "--out", lod, "--quiet"], timeout: 600)
        #expect(first.status == 0, "\(first.error.suffix(2000))")
        #expect(first.output.contains("report: \(lod)/report.html"))
        #expect(first.output.contains("at equal accuracy: give --baseline RUNDIR"))
        #expect(FileManager.default.fileExists(atPath: "\(lod)/report.html"))
        #expect(FileManager.default.fileExists(atPath: "\(lod)/truncation.json"))
        let second = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--set", "model.strategy=denseFedAvg", "--set",
                "training.sampler=none", "--out", dense, "--baseline", lod, "--targets", "0.5,0.99",
                "--quiet",
            ], timeout: 600)
        #expect(second.status == 0, "\(second.error.suffix(2000))")
        // The smoke runs reach 50 % at once and never 99 %.
        #expect(second.output.contains("at equal accuracy (best tier) vs lod: 50% "))
        #expect(second.output.contains("99% reached by neither"))

        let page = "\(directory)/report.html"
        let report = try maestro(["report", lod, dense, "--out", page])
        #expect(report.status == 0, "\(report.error)")
        #expect(report.output.contains("report: \(page)"))
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let parser = XMLParser(data: Data(html.utf8))
        #expect(
            parser.parse(),
            "report.html is not well-formed: \(String(describing: parser.parserError))")
        #expect(html.components(separatedBy: "<svg class=\"chart\"").count - 1 >= 9)
        #expect(html.contains("Bytes, rounds and device time to reach a target accuracy"))

        let compare = try maestro(["compare", lod, dense, "--targets", "0.5,0.99", "--json"])
        #expect(compare.status == 0, "\(compare.error)")
        let json =
            try JSONSerialization.jsonObject(with: Data(compare.output.utf8)) as! [String: Any]
        #expect(json["baseline"] as? String == "dense")
        let reaches = json["targets"] as! [[String: Any]]
        #expect(
            reaches.filter { $0["target"] as? Double == 0.99 }.allSatisfy { $0["round"] is NSNull })
        #expect(
            reaches.filter { $0["target"] as? Double == 0.5 }.allSatisfy {
                $0["reached"] as? Bool == true
            })

        // Per tier, the cost model's training FLOPs per sample and the deployed MACs: the
        // 1/4 tier of the (fully factored) MLP costs a quarter of the full tier or less.
        let tiers = ((json["runs"] as! [[String: Any]])[0]["tiers"] as! [[String: Any]])
        let flops = tiers.map { $0["training_flops_per_sample"] as? Double ?? 0 }
        let macs = tiers.map { $0["macs"] as? Int ?? 0 }
        #expect(flops.allSatisfy { $0 > 0 } && macs.allSatisfy { $0 > 0 }, "\(tiers)")
        #expect(flops[0] <= 0.26 * flops[1] && macs[0] <= macs[1] / 2, "\(flops) \(macs)")

        // Headless Chromium (the test bootstrap installs it) renders the page.
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        let browser = try #require(
            chromium,
            "no chromium: run tools/bootstrap chromium fonts-dejavu-core (the README's test command does)"
        )
        let screenshot = "\(directory)/report.png"
        let render = try runProgram(
            browser,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=\(directory)/chromium", "--window-size=1280,5200",
                "--screenshot=\(screenshot)", "file://\(page)",
            ], timeout: 180)
        #expect(render.status == 0, "\(render.error.suffix(1000))")
        let image = try DecodedPNG(contentsOf: screenshot)
        #expect(image.width == 1280 && image.height == 5200)

        // Not blank: a good share of the page differs from the white background.
        var ink = 0
        var tierPixels = [0, 0]  // low (#4e79a7) and full (#f28e2b), the smoke run's tiers
        var colouredRows: [Int] = []
        let tierColours = [(0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B)]
        for y in 0..<image.height {
            var coloured = 0
            for x in 0..<image.width {
                let (r, g, b) = image.pixel(x, y)
                if r < 245 || g < 245 || b < 245 { ink += 1 }
                for (index, colour) in tierColours.enumerated()
                where abs(r - colour.0) + abs(g - colour.1) + abs(b - colour.2) < 40 {
                    tierPixels[index] += 1
                    coloured += 1
                }
            }
            if coloured >= 3 { colouredRows.append(y) }
        }
        let share = Double(ink) / Double(image.width * image.height)
        #expect(share > 0.03, "ink share \(share)")
        // The tier-coloured lines and bars are there, in several separate chart regions.
        #expect(tierPixels.allSatisfy { $0 > 2000 }, "tier colour pixels \(tierPixels)")
        var regions = colouredRows.isEmpty ? 0 : 1
        for (a, b) in zip(colouredRows, colouredRows.dropFirst()) where b - a > 40 { regions += 1 }
        #expect(regions >= 5, "tier-coloured regions: \(regions)")
    }

    @Test("report and compare name a directory that is not a run, and exit non-zero")
    func badRunDirectory() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = try maestro(["report", directory])
        #expect(report.status != 0)
        #expect(report.error.contains("\(directory)/summary.json: not found"))
        let compare = try maestro(["compare", directory, "--targets", "0.8,high"])
        #expect(compare.status != 0)
        #expect(compare.error.contains("--targets: 'high' is not an accuracy"))
        let fleet = try maestro([
            "fleet", "Scenarios/smoke.yaml", "--out", "\(directory)/run", "--baseline", directory,
        ])
        #expect(fleet.status != 0)
        #expect(fleet.error.contains("--baseline \(directory): "))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/run/metrics.jsonl"))
    }
}
