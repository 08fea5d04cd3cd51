import Federation
import LowRank
import Tensors
import Testing

@Suite("Width coverage: the channels some aggregated slice held, round by round")
struct WidthCoverageTests {
    /// 4 inputs → dense 6 → relu → dense 3 classes: one sliced space of 6 units.
    let mlp = Architecture(
        name: "mlp", inputShape: [4], classCount: 3,
        layers: [.dense(inputs: 4, outputs: 6), .relu, .dense(inputs: 6, outputs: 3)])

    @Test("A rolling window of 2 of 6 units covers all of them once it has wrapped")
    func rollingWindowWraps() throws {
        let spaces = try ChannelSpaces(mlp)
        var coverage = WidthCoverage(spaces: spaces)
        #expect(coverage.roundsTrained == [[], [0, 0, 0, 0, 0, 0], []])
        // FedRolex's round r starts the window at channel r − 1: {0,1}, {1,2}, {2,3}, {3,4}.
        for round in 1...4 {
            coverage.record(round: [spaces.rollingWindow(fraction: 1.0 / 3, offset: round - 1)])
        }
        #expect(coverage.roundsTrained[1] == [1, 2, 2, 2, 1, 0])
        let early = coverage.layers(of: spaces)
        // The output layer's classes are never sliced: only the hidden layer is reported.
        #expect(early.count == 1)
        #expect(early[0].layer == 0)
        #expect(early[0].kind == "dense")
        #expect(early[0].channels == 6)
        #expect(early[0].trained == 5)
        #expect(early[0].fraction == 5.0 / 6)
        #expect(early[0].minimumRounds == 0)
        #expect(early[0].meanRounds == 8.0 / 6)
        #expect(early[0].maximumRounds == 2)
        // Rounds 5 and 6: {4,5}, then {5,0}, wrapping past the last unit.
        coverage.record(round: [spaces.rollingWindow(fraction: 1.0 / 3, offset: 4)])
        coverage.record(round: [spaces.rollingWindow(fraction: 1.0 / 3, offset: 5)])
        #expect(coverage.roundsTrained[1] == [2, 2, 2, 2, 2, 2])
        let layer = coverage.layers(of: spaces)[0]
        #expect(layer.trained == 6)
        #expect(layer.fraction == 1)
        #expect(layer.minimumRounds == 2)
        #expect(layer.meanRounds == 2)
        #expect(layer.maximumRounds == 2)
    }

    @Test(
        "Nested prefixes leave the channels no tier holds untrained; a channel counts once a round")
    func prefixesAndOverlap() throws {
        let spaces = try ChannelSpaces(mlp)
        var coverage = WidthCoverage(spaces: spaces)
        // HeteroFL tiers 1/3 and 1/2: prefixes {0,1} and {0,1,2}, both in each of two rounds.
        for _ in 0..<2 {
            coverage.record(round: [spaces.prefix(fraction: 1.0 / 3), spaces.prefix(fraction: 0.5)])
        }
        #expect(coverage.roundsTrained[1] == [2, 2, 2, 0, 0, 0])
        let layer = coverage.layers(of: spaces)[0]
        #expect(layer.trained == 3)
        #expect(layer.fraction == 0.5)
        #expect((layer.minimumRounds, layer.maximumRounds) == (0, 2))
        #expect(layer.meanRounds == 1)
        // A round with no aggregated slice changes nothing.
        coverage.record(round: [])
        #expect(coverage.roundsTrained[1] == [2, 2, 2, 0, 0, 0])
    }

    @Test("A convolution's channels are counted; counts from a checkpoint are checked")
    func convolutionAndRestore() throws {
        let geometry = ConvolutionGeometry(
            height: 4, width: 4, channels: 1, kernelSize: 3, padding: 1, stride: 1)
        let convolutional = Architecture(
            name: "conv", inputShape: [4, 4, 1], classCount: 2,
            layers: [
                .convolution(geometry: geometry, outputs: 4), .relu,
                .maxPool(height: 4, width: 4, channels: 4), .flatten,
                .dense(inputs: 16, outputs: 2),
            ])
        let spaces = try ChannelSpaces(convolutional)
        var coverage = WidthCoverage(spaces: spaces)
        coverage.record(round: [spaces.rollingWindow(fraction: 0.5, offset: 3)])
        #expect(coverage.roundsTrained[1] == [1, 0, 0, 1])
        let layers = coverage.layers(of: spaces)
        #expect(layers.map(\.layer) == [0])
        #expect(layers[0].kind == "convolution")
        #expect(layers[0].trained == 2)
        let restored = WidthCoverage(
            roundsTrained: coverage.roundsTrained, spaces: spaces, rounds: 1)
        #expect(restored == coverage)
        // More rounds than the run has had, a negative count, or the wrong shape: refused.
        #expect(
            WidthCoverage(roundsTrained: [[], [2, 0, 0, 0], []], spaces: spaces, rounds: 1) == nil)
        #expect(
            WidthCoverage(roundsTrained: [[], [-1, 0, 0, 0], []], spaces: spaces, rounds: 1) == nil)
        #expect(
            WidthCoverage(roundsTrained: [[], [0, 0, 0], []], spaces: spaces, rounds: 1) == nil)
    }
}
