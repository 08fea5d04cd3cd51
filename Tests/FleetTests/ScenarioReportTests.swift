import Fleet
import Testing

/// LeNet-5 as the wire sees it: convs as c_out × (c_in · 5 · 5), every layer low-rank at
/// full rank min(m, n), each with a bias of `outputs` values.
let leNet = [
    LayerShape(
        name: "conv1", outputs: 6, inputs: 1 * 5 * 5, isLowRank: true, rank: 6,
        sharedParameterCount: 6),
    LayerShape(
        name: "conv2", outputs: 16, inputs: 6 * 5 * 5, isLowRank: true, rank: 16,
        sharedParameterCount: 16),
    LayerShape(
        name: "fc1", outputs: 120, inputs: 400, isLowRank: true, rank: 120,
        sharedParameterCount: 120),
    LayerShape(
        name: "fc2", outputs: 84, inputs: 120, isLowRank: true, rank: 84, sharedParameterCount: 84),
    LayerShape(
        name: "fc3", outputs: 10, inputs: 84, isLowRank: true, rank: 10, sharedParameterCount: 10),
]

/// MLP 784-300-100-10.
let mlp = [
    LayerShape(
        name: "fc1", outputs: 300, inputs: 784, isLowRank: true, rank: 300,
        sharedParameterCount: 300),
    LayerShape(
        name: "fc2", outputs: 100, inputs: 300, isLowRank: true, rank: 100,
        sharedParameterCount: 100),
    LayerShape(
        name: "fc3", outputs: 10, inputs: 100, isLowRank: true, rank: 10, sharedParameterCount: 10),
]

@Suite("Scenario report: budgets and bytes per round")
struct ScenarioReportTests {
    // Dense LeNet-5: weights m·n plus bias m, per layer.
    static let leNetDense =
        (6 * 25 + 6) + (16 * 150 + 16) + (120 * 400 + 120) + (84 * 120 + 84) + (10 * 84 + 10)

    @Test("LeNet at p = 1/8, by hand: k = 1, 2, 15, 11, 2")
    func leNetLowTier() throws {
        let report = ScenarioReport(scenario: try shipped("default"), layers: leNet)
        let low = report.tiers[0]
        #expect(low.tier.rankFraction == 0.125)
        // ceil(6/8) = 1, ceil(16/8) = 2, ceil(120/8) = 15, ceil(84/8) = ceil(10.5) = 11, ceil(10/8) = 2.
        #expect(low.budgets == [1, 2, 15, 11, 2])
        // k·(m + n) + bias per layer.
        let parameters =
            1 * (6 + 25) + 6 + 2 * (16 + 150) + 16 + 15 * (120 + 400) + 120 + 11 * (84 + 120) + 84
            + 2 * (10 + 84) + 10
        #expect(parameters == 10_831)
        #expect(low.traffic.parameters == parameters)
        #expect(low.traffic.tensors == 15)  // U, V and bias for each of the 5 layers
        #expect(low.traffic.downloadBytes == 4 * parameters)
        #expect(low.traffic.uploadBytes == 4 * parameters)
        #expect(low.traffic.bytesPerRound == 86_648)

        #expect(Self.leNetDense == 61_706)
        #expect(report.dense.parameters == Self.leNetDense)
        #expect(report.dense.tensors == 10)
        #expect(report.dense.bytesPerRound == 8 * 61_706)
        #expect(abs(low.ratioToDense - 86_648.0 / 493_648.0) < 1e-12)
        #expect(low.clients == 40)
        // 43,324 B down at 20 Mbit/s + 43,324 B up at 5 Mbit/s + 2 × 80 ms.
        #expect(
            abs(low.transferSeconds - (43_324.0 * 8 / 20e6 + 43_324.0 * 8 / 5e6 + 0.16)) < 1e-12)
    }

    @Test("LeNet, every tier of default.yaml and the fleet's expected bytes per round, by hand")
    func leNetFleet() throws {
        let report = ScenarioReport(scenario: try shipped("default"), layers: leNet)
        #expect(
            report.tiers.map(\.budgets) == [
                [1, 2, 15, 11, 2], [2, 4, 30, 21, 3], [3, 8, 60, 42, 5], [6, 16, 120, 84, 10],
            ])
        let mid = 2 * 31 + 6 + 4 * 166 + 16 + 30 * 520 + 120 + 21 * 204 + 84 + 3 * 94 + 10
        let high = 3 * 31 + 6 + 8 * 166 + 16 + 60 * 520 + 120 + 42 * 204 + 84 + 5 * 94 + 10
        let full = 6 * 31 + 6 + 16 * 166 + 16 + 120 * 520 + 120 + 84 * 204 + 84 + 10 * 94 + 10
        #expect(report.tiers.map(\.traffic.parameters) == [10_831, mid, high, full])
        #expect([mid, high, full] == [21_128, 41_895, 83_554])
        // Full rank costs more than dense: k·(m + n) > m·n at k = min(m, n).
        #expect(report.tiers[3].ratioToDense > 1)
        // 10 clients a round by fleet share 0.4/0.3/0.2/0.1, 8 bytes per parameter (down + up).
        let lowAndMid: Double = 0.4 * 10_831 + 0.3 * 21_128
        let highAndFull: Double = 0.2 * 41_895 + 0.1 * 83_554
        let expected: Double = 10 * 8 * (lowAndMid + highAndFull)
        #expect(abs(report.expectedBytesPerRound - expected) < 1e-6)
        #expect(abs(report.expectedBytesPerRound - 2_192_416) < 1e-6)
        #expect(report.expectedDenseBytesPerRound == 10 * 8 * 61_706)
        #expect(abs(report.ratioToDense - 2_192_416.0 / 4_936_480.0) < 1e-12)
        // Budget growth: in rounds 1-100 every tier sends what the 1/8 tier does.
        #expect(
            report.cappedPhases == [
                .init(rounds: 1...100, cap: 0.125, expectedBytesPerRound: 10 * 8 * 10_831)
            ])
        #expect(
            report.render().contains(
                "budget growth, rounds 1-100: every tier at most p = 0.125, 866,480 B (0.176)"))
    }

    @Test("A tier that freezes the convolutions downloads them and uploads them with no rows")
    func frozenConvolutions() throws {
        var layers = leNet
        layers[0].isConvolution = true
        layers[1].isConvolution = true
        let overhead = MessageOverhead(perMessage: 64, perTensor: 16)
        let scenario = try shipped("default").overriding([("tiers[0].freezeConvolutions", "true")])
        let report = ScenarioReport(scenario: scenario, layers: layers, overhead: overhead)
        let low = report.tiers[0].traffic
        // Down as before; up less conv1 (1·31 + 6) and conv2 (2·166 + 16), same tensor count.
        #expect(low.downloadBytes == 4 * 10_831 + 64 + 16 * 15)
        #expect(low.uploadBytes == 4 * (10_831 - 37 - 348) + 64 + 16 * 15)
        #expect(report.tiers[1].traffic.uploadBytes == report.tiers[1].traffic.downloadBytes)
        #expect(
            report.render().contains(
                "Convolutions frozen on low: run forward only, sent back with no rows"))
    }

    @Test("Message overhead: per message plus per tensor, on both messages")
    func overhead() throws {
        let overhead = MessageOverhead(perMessage: 64, perTensor: 16)
        let report = ScenarioReport(
            scenario: try shipped("default"), layers: leNet, overhead: overhead)
        #expect(report.tiers[0].traffic.downloadBytes == 4 * 10_831 + 64 + 16 * 15)
        #expect(report.tiers[0].traffic.bytesPerRound == 86_648 + 2 * (64 + 16 * 15))
        #expect(report.dense.bytesPerRound == 8 * 61_706 + 2 * (64 + 16 * 10))
    }

    @Test("MLP 784-300-100-10 at p = 1/4 and p = 1 (smoke.yaml)")
    func mlpBudgets() throws {
        let report = ScenarioReport(scenario: try shipped("smoke"), layers: mlp)
        #expect(report.tiers[0].budgets == [75, 25, 3])
        #expect(
            report.tiers[0].traffic.parameters == 75 * (300 + 784) + 300 + 25 * (100 + 300) + 100
                + 3 * (10 + 100) + 10)
        #expect(report.tiers[0].traffic.parameters == 92_040)
        #expect(report.dense.parameters == 300 * 784 + 300 + 100 * 300 + 100 + 10 * 100 + 10)
        #expect(report.dense.parameters == 266_610)
        #expect(report.tiers[1].budgets == [300, 100, 10])
    }

    @Test("A dense layer in a LoD model is sent whole; denseFedAvg sends every layer whole")
    func denseLayers() throws {
        var layers = leNet
        layers[4].isLowRank = false
        let report = ScenarioReport(scenario: try shipped("default"), layers: layers)
        #expect(report.tiers[0].budgets == [1, 2, 15, 11, nil])
        #expect(report.tiers[0].traffic.parameters == 10_831 - (2 * 94 + 10) + (840 + 10))
        #expect(report.tiers[0].traffic.tensors == 14)

        let dense = ScenarioReport(scenario: try shipped("dense-fedavg"), layers: leNet)
        #expect(
            dense.tiers.allSatisfy {
                $0.traffic == dense.dense && $0.budgets == [nil, nil, nil, nil, nil]
            })
        #expect(dense.ratioToDense == 1)
    }

    @Test("Shrunk ranks lower the budgets: k follows the current r_l")
    func shrunkRanks() throws {
        var layers = leNet
        layers[2].rank = 40  // fc1 shrunk from 120 to 40
        let report = ScenarioReport(scenario: try shipped("default"), layers: layers)
        #expect(report.tiers.map { $0.budgets[2] } == [5, 10, 20, 40])
    }

    @Test("render() prints the fleet, the budgets and the bytes")
    func render() throws {
        let text = ScenarioReport(scenario: try shipped("default"), layers: leNet).render()
        let lines = text.split(separator: "\n").map(String.init)
        #expect(
            lines[0] == "Scenario default: fashion-mnist (Dirichlet α = 0.5), lenet, orderedLoD")
        #expect(lines[1] == "100 clients, 10 per round, 200 rounds, deadline 600 s")
        #expect(lines.contains("Fleet"))
        #expect(
            lines.contains {
                $0.hasPrefix("low ") && $0.contains("40  0-39") && $0.contains("0.125")
            })
        #expect(
            lines.contains {
                $0.hasPrefix("fc2 ") && $0.contains("84×120") && $0.hasSuffix("11   21    42    84")
            })
        #expect(
            lines.contains {
                $0.hasPrefix("low ") && $0.contains("10,831") && $0.contains("86,648")
                    && $0.contains("0.176")
            })
        #expect(
            lines.contains {
                $0.hasPrefix("dense FedAvg") && $0.contains("61,706") && $0.contains("493,648")
            })
        #expect(
            lines.suffix(2) == [
                "Expected per round (10 clients by fleet share): 2,192,416 B vs dense FedAvg 4,936,480 B (0.444)",
                "  budget growth, rounds 1-100: every tier at most p = 0.125, 866,480 B (0.176)",
            ])
        #expect(!lines.contains { $0.hasSuffix(" ") })
    }

    @Test("render() warns when a tier cannot even transfer within the deadline")
    func deadlineWarning() throws {
        let scenario = try shipped("default").overriding([("deadlineSeconds", "0.05")])
        let text = ScenarioReport(scenario: scenario, layers: leNet).render()
        #expect(
            text.contains(
                "Warning: tier low needs 0.2 s to transfer alone, over the 0.05 s deadline"))
    }
}
