import Foundation
import LowRank
import Tensors
import Testing

@Suite("Crafted model files")
struct CraftedModelFileTests {
    /// Three 63×63 convolutions between 16 000 000 channels: each layer passes the header's
    /// checks, but their weights add up to more than 2⁶¹ floats, whose byte count overflowed.
    static let overflowing = Architecture(
        name: "crafted", inputShape: [1, 1, 16_000_000], classCount: 10,
        layers: [
            .convolution(
                geometry: ConvolutionGeometry(
                    height: 1, width: 1, channels: 16_000_000, kernelSize: 63, padding: 62),
                outputs: 16_000_000),
            .convolution(
                geometry: ConvolutionGeometry(
                    height: 63, width: 63, channels: 16_000_000, kernelSize: 63, padding: 0),
                outputs: 16_000_000),
            .convolution(
                geometry: ConvolutionGeometry(
                    height: 1, width: 1, channels: 16_000_000, kernelSize: 63, padding: 62),
                outputs: 16_000_000),
            .convolution(
                geometry: ConvolutionGeometry(
                    height: 63, width: 63, channels: 16_000_000, kernelSize: 63, padding: 0),
                outputs: 16_000_000),
            .flatten, .dense(inputs: 16_000_000, outputs: 10),
        ])

    @Test("Shapes whose sizes overflow are refused as inconsistent, before any allocation")
    func overflowingShapes() throws {
        // Caught by the bounds on activations and weights, before any size is multiplied out.
        #expect(Self.overflowing.inconsistency != nil)
        #expect(Self.overflowing.checkedParameterFloatCount == nil)
        let architecture = String(
            decoding: try JSONEncoder().encode(Self.overflowing), as: UTF8.self)
        let json = Array(
            "{\"architecture\":\(architecture),\"keptRanks\":[],\"metadata\":{}}".utf8)
        #expect(
            try JSONDecoder().decode(ModelFile.Header.self, from: Data(json)).architecture
                == Self.overflowing)
        var bytes = ModelFile.magic
        for value in [ModelFile.version, UInt32(json.count)] {
            withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
        }
        bytes += json + [0, 0, 0, 0]
        do {
            _ = try ModelFile.decode(bytes)
            Issue.record("a crafted header decoded")
        } catch {
            guard case .inconsistent(let reason) = error else {
                Issue.record("expected inconsistent, got \(error)")
                return
            }
            #expect(reason.contains("activation") || reason.contains("weights"), "\(reason)")
        }
    }

    @Test(
        "A crafted model description (as a client receives it) whose shape products overflow is refused, never trapped"
    )
    func overflowingDescription() throws {
        let huge = 8_388_607  // below the per-extent limit; five of them overflow Int64
        let crafted: [Architecture] = [
            Architecture(
                name: "wide input", inputShape: Array(repeating: huge, count: 5), classCount: 10,
                layers: [.flatten, .dense(inputs: 10, outputs: 10)]),
            Architecture(
                name: "wide activation", inputShape: [4096, 4096, 1], classCount: 10,
                layers: [.flatten, .dense(inputs: 16_777_216, outputs: 10)]),
            Architecture(
                name: "huge convolution output", inputShape: [4000, 4000, 1], classCount: 10,
                layers: [
                    .convolution(
                        geometry: ConvolutionGeometry(
                            height: 4000, width: 4000, channels: 1, kernelSize: 3, padding: 1),
                        outputs: 16_000_000),
                    .flatten, .dense(inputs: 10, outputs: 10),
                ]),
        ]
        for architecture in crafted {
            let json = try JSONEncoder().encode(architecture)
            let decoded = try JSONDecoder().decode(Architecture.self, from: json)
            #expect(decoded.inconsistency != nil, "\(architecture.name) passed")
        }
    }
}
