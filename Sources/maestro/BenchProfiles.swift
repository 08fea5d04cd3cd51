import Foundation
import LowRank
import Runtime
import Tensors

extension BenchSuite {
    /// Per layer, forward and backward milliseconds of each case (`bench layers`): the
    /// suite's own `cases`, then the larger presets' (``ModelStepTiming``) that `isSelected`
    /// picks.
    func layerProfile(
        _ cases: [(ModelKind, String, Double)],
        models isSelected: (ModelKind, String, Double) -> Bool = { _, _, _ in false }
    ) -> String {
        var generator = SeededGenerator(seed: 1)
        var lines: [String] = []
        let suiteCases = cases.map { ($0.0, $0.1, $0.2, nil as [Int]?) }
        let modelCases = ModelStepTiming.cases.filter {
            isSelected($0.model, $0.variant, $0.fraction)
        }
        .map { ($0.model, $0.variant, $0.fraction, Optional($0.input)) }
        for (model, variant, fraction, input) in suiteCases + modelCases {
            let network =
                input.map {
                    ModelStepTiming.network(
                        model, variant: variant, fraction: fraction, input: $0,
                        generator: &generator)
                } ?? Self.network(model, variant, fraction, generator: &generator)
            let inputCount = network.architecture.inputShape.reduce(1, *)
            let x = Tensor.randomNormal(shape: [batchSize * inputCount], using: &generator).scalars
            let times = network.layerTimes(x, batch: batchSize) { medianTime($0) }
            let label = variant == "dense" ? variant : "\(variant) at \(fraction)"
            lines.append(
                "\(model.rawValue) \(label), batch \(batchSize), ranks \(network.keptRanks)")
            lines.append("  layer  kind           forward ms  backward ms")
            for time in times {
                let layers =
                    time.layers.count == 1
                    ? "\(time.layers.lowerBound)"
                    : "\(time.layers.lowerBound)-\(time.layers.upperBound - 1)"
                lines.append(
                    "  " + layers.padding(toLength: 5, withPad: " ", startingAt: 0)
                        + time.name.padding(toLength: 13, withPad: " ", startingAt: 0)
                        + String(format: "%12.3f %12.3f", time.forward * 1e3, time.backward * 1e3))
            }
            let forward = times.reduce(0) { $0 + $1.forward }
            let backward = times.reduce(0) { $0 + $1.backward }
            lines.append(
                "  total" + "".padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(format: "%12.3f %12.3f", forward * 1e3, backward * 1e3))
        }
        return lines.joined(separator: "\n")
    }

    /// GFLOP/s of dense training steps of `model` (one BLAS thread, the suite's batch).
    func deviceSpeed(_ model: ModelKind) -> Double {
        var generator = SeededGenerator(seed: 1)
        let network = Network(architecture: .make(model, lowRank: false), using: &generator)
        let seconds = stepTime(network, generator: &generator)
        return network.trainingStepFLOPs(batch: batchSize) / seconds / 1e9
    }
}

extension DeviceProfile {
    /// The lines `bench profile` prints: what was measured, as comments, then the tier line.
    static func tierLines(
        name: String, model: ModelKind, batchSize: Int, gflops: Double, link: LinkFigures?,
        coordinator: String?
    ) -> [String] {
        // sysconf asks the kernel (sysinfo), so this works without /proc, as on a board.
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        let memoryMB = pages > 0 && pageSize > 0 ? (pages * pageSize) >> 20 : nil
        let host = ProcessInfo.processInfo.hostName
        var lines = [
            "# maestro bench profile on \(host): \(model.rawValue) dense training steps (batch \(batchSize), one BLAS thread, kernel \(BLASKernel.coreName)) at \(String(format: "%.2f", gflops)) GFLOP/s"
                + (memoryMB.map { ", \($0) MB of memory" } ?? "")
        ]
        var fields = [
            "name: \(name)", "count: 1", "rankFraction: 1.0",
            String(format: "gflops: %.2f", gflops),
        ]
        if let link, let coordinator {
            lines.append(
                String(
                    format:
                        "# link to %@: round trip %.3f ms (median of 5 small probes), %d KiB transfers up and echoed back",
                    coordinator, 2 * link.latencyMilliseconds, link.transferBytes >> 10))
            fields.append(String(format: "latencyMs: %.3f", link.latencyMilliseconds))
            for (key, value) in [
                ("uplinkMbps", link.uplinkMbps), ("downlinkMbps", link.downlinkMbps),
            ] {
                if let value {
                    fields.append(String(format: "\(key): %.1f", value))
                } else {
                    lines.append(
                        "# \(key): too fast to tell from the round trip's noise with \(link.transferBytes >> 10) KiB; not written"
                    )
                }
            }
        } else {
            lines.append(
                "# not measured: latencyMs, uplinkMbps and downlinkMbps (give --coordinator tcp://IP:PORT of a running coordinator); add the link's figures before use"
            )
        }
        lines.append("- {\(fields.joined(separator: ", "))}")
        return lines
    }
}
