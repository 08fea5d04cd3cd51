import Foundation
import Tensors

/// What `maestro bench --json` prints (keys in snake case). A subcommand that does not
/// measure a part leaves it out; `maestro bench` measures every part.
struct BenchResults: Encodable {
    struct Shape: Encodable {
        var name: String
        var m: Int
        var n: Int
        var k: Int
        var gflops: Double
    }

    struct Step: Encodable {
        var model: String
        var variant: String
        var rankFraction: Double?
        var batch: Int
        var seconds: Double
        var gflops: Double
        var ranks: [Int]
        var parameters: Int
    }

    struct FleetShare: Encodable {
        var scenario: String
        var rounds: Int
        var wallSeconds: Double
        var cpuSeconds: Double
        var trainingCPUSeconds: Double
        var trainingShare: Double
    }

    var kernel: String
    /// Which version of the convolution kernels (`CKernels`) runs here.
    var convolutionKernels = streamingKernelsVectorized ? "avx2+fma" : "portable"
    var sgemmGflopsSingleThread: Double?
    var codecFrameBytes: Int?
    var codecEncodeGBPerSecond: Double?
    var codecDecodeGBPerSecond: Double?
    var aggregationPayloadBytes: Int?
    var aggregationGBPerSecond: Double?
    var fleet: FleetShare?
    var sgemmShapes: [Shape] = []
    var trainingSteps: [Step] = []

    /// As JSON, keys sorted and in snake case.
    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// As tables, one section per part measured.
    var table: String {
        var sections = [
            ["BLAS kernel: \(kernel) (one thread); convolution kernels: \(convolutionKernels)"]
        ]
        if let peak = sgemmGflopsSingleThread {
            sections[0].append(String(format: "sgemm 1024³: %.1f GFLOP/s", peak))
        }
        if !sgemmShapes.isEmpty {
            sections.append(
                ["sgemm shape                        m      n      k   GFLOP/s"]
                    + sgemmShapes.map { s in
                        s.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                            + String(format: " %6d %6d %6d   %7.1f", s.m, s.n, s.k, s.gflops)
                    })
        }
        if !trainingSteps.isEmpty {
            var lines = [
                "training step (batch \(trainingSteps.first?.batch ?? 0))   fraction   ms/step   GFLOP/s   %sgemm   parameters"
            ]
            for s in trainingSteps {
                let label = "\(s.model) \(s.variant)".padding(
                    toLength: 25, withPad: " ", startingAt: 0)
                let fraction = (s.rankFraction.map { String($0) } ?? "-").padding(
                    toLength: 8, withPad: " ", startingAt: 0)
                let share =
                    sgemmGflopsSingleThread.map {
                        String(format: "%5.0f%%", 100 * s.gflops / $0)
                    } ?? "    -"
                lines.append(
                    label + fraction
                        + String(format: "  %8.3f  %8.1f   ", s.seconds * 1e3, s.gflops) + share
                        + String(format: "   %10d", s.parameters))
            }
            sections.append(lines)
        }
        var federation: [String] = []
        if let frame = codecFrameBytes, let encode = codecEncodeGBPerSecond,
            let decode = codecDecodeGBPerSecond
        {
            federation.append(
                String(
                    format: "wire codec (%.2f MB TRAIN frame): encode %.2f GB/s, decode %.2f GB/s",
                    Double(frame) / 1e6, encode, decode))
        }
        if let payload = aggregationPayloadBytes, let rate = aggregationGBPerSecond {
            federation.append(
                String(
                    format: "ordered aggregation (10 clients, %.2f MB of updates): %.2f GB/s",
                    Double(payload) / 1e6, rate))
        }
        if let fleet {
            federation.append(
                String(
                    format:
                        "fleet %@ (%d rounds): %.1f s wall, %.1f CPU s, of which client training %.1f s = %.0f%%",
                    fleet.scenario, fleet.rounds, fleet.wallSeconds, fleet.cpuSeconds,
                    fleet.trainingCPUSeconds, 100 * fleet.trainingShare))
        }
        if !federation.isEmpty { sections.append(federation) }
        return sections.map { $0.joined(separator: "\n") }.joined(separator: "\n\n")
    }
}

/// A device's measured figures, as `bench profile` prints them.
enum DeviceProfile {
    /// The `gflops:` figure of a profile file (its tier line).
    static func gflops(inFile path: String) throws -> Double {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandError("\(path): cannot read the device profile")
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let range = line.range(of: "gflops:") else { continue }
            let rest = line[range.upperBound...].drop { $0 == " " }
            let number = rest.prefix { $0.isNumber || $0 == "." || $0 == "e" || $0 == "-" }
            if let value = Double(number), value > 0, value.isFinite { return value }
            throw CommandError("\(path): '\(line)' has no positive gflops figure")
        }
        throw CommandError(
            "\(path): no 'gflops:' figure (write the file with `maestro bench profile`)")
    }
}
