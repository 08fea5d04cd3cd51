import LowRank
import Tensors
import TestSupport
import Testing
import Vocabulary

@Suite("Models, export and the model file")
struct ModelTests {
    static func trainedLeNet(seed: UInt64 = 1) -> Network {
        var generator = SeededGenerator(seed: seed)
        return Network(architecture: .make(.lenet, lowRank: true), using: &generator)
    }

    /// Whether two LeNets give the same logits (within 1e-4) on a random batch of two images.
    func sameLogits(
        _ network: Network, _ reference: Network, using generator: inout SeededGenerator
    ) -> Bool {
        let input = Tensor.randomNormal(shape: [2 * 784], using: &generator).scalars
        let y1 = Tensor(shape: [20], scalars: reference.forward(input, batch: 2).logits)
        let y2 = Tensor(shape: [20], scalars: network.forward(input, batch: 2).logits)
        return isClose(y2, y1, tolerance: 1e-4)
    }

    @Test("Shipped architectures have the expected shapes and dense parameter counts")
    func shapes() {
        var generator = SeededGenerator(seed: 1)
        let lenet = Network(architecture: .make(.lenet, lowRank: false), using: &generator)
        #expect(lenet.parameterCount(ranks: []) == 61_706)
        #expect(lenet.architecture.activationShapes.last == [10])
        let mlp = Network(architecture: .make(.mlp, lowRank: false), using: &generator)
        #expect(mlp.parameterCount(ranks: []) == 266_610)
        let lod = Network(architecture: .make(.lenet, lowRank: true), using: &generator)
        #expect(lod.maxRanks == [6, 16, 120, 84, 10])
        // At full rank every LoD layer is cheaper dense: counts equal the dense model.
        #expect(lod.parameterCount(ranks: lod.keptRanks) == 61_706)
        #expect(lod.macs(ranks: lod.keptRanks) == lenet.macs(ranks: []))
    }

    @Test("SVD initialisation reproduces the dense initial weight (√σ on each side)")
    func svdInitialisation() {
        var a = SeededGenerator(seed: 5)
        var b = SeededGenerator(seed: 5)
        let dense = Network(architecture: .make(.mlp, lowRank: false), using: &a)
        let lod = Network(architecture: .make(.mlp, lowRank: true), using: &b)
        let product = matmul(lod.parameters[0], lod.parameters[1], lhsTransposition: .transposed)
        #expect(isClose(product, dense.parameters[0], tolerance: 1e-4))
    }

    @Test("Full-rank forward of a LoD net equals the dense net it was factored from")
    func factoredForward() {
        var a = SeededGenerator(seed: 6)
        var b = SeededGenerator(seed: 6)
        let dense = Network(architecture: .make(.lenet, lowRank: false), using: &a)
        let lod = Network(architecture: .make(.lenet, lowRank: true), using: &b)
        #expect(sameLogits(lod, dense, using: &a))
    }
    @Test(
        "Evaluating several budgets in one sweep gives each budget's own forward-pass result",
        arguments: [0, 10_000])
    func evaluateRankSets(factoredMinimumWeights: Int) {
        var generator = SeededGenerator(seed: 8)
        let network = Network(
            architecture: .make(
                .lenet, lowRank: true, factoredMinimumWeights: factoredMinimumWeights),
            using: &generator)
        let count = 70  // not a multiple of the batch size
        let samples = TrainingSamples(
            features: Tensor.randomNormal(shape: [count * 784], using: &generator).scalars,
            labels: (0..<count).map { Int32($0 % 10) }, featureCount: 784)
        let rankSets = [[1, 2], [120, 84], [15, 11], [1, 2]].map { pair in
            factoredMinimumWeights == 0 ? [6, 16, pair[0], pair[1], 10] : pair
        }
        let results = network.evaluate(on: samples, rankSets: rankSets, batchSize: 32)
        #expect(results.count == rankSets.count)
        for (ranks, result) in zip(rankSets, results) {
            let logits = network.forward(samples.features, batch: count, ranks: ranks).logits
            let expected = SoftmaxCrossEntropy.lossAndGradient(
                logits: logits, labels: samples.labels, classCount: 10)
            let correct = SoftmaxCrossEntropy.correctCount(
                logits: logits, labels: samples.labels, classCount: 10)
            #expect(result.accuracy == Double(correct) / Double(count))
            #expect(abs(result.loss - expected.loss) <= 1e-5 * max(1, abs(expected.loss)))
        }
    }

    @Test(
        "Evaluating on several threads gives bit for bit the figures of one thread",
        arguments: [2, 3, 8])
    func evaluateOnThreads(threads: Int) {
        var generator = SeededGenerator(seed: 23)
        let network = Network(architecture: .make(.lenet, lowRank: true), using: &generator)
        let count = 150  // five batches and a short one
        let samples = TrainingSamples(
            features: Tensor.randomNormal(shape: [count * 784], using: &generator).scalars,
            labels: (0..<count).map { Int32($0 % 10) }, featureCount: 784)
        let rankSets = [[1, 2, 15, 11, 2], [6, 16, 120, 84, 10], [3, 8, 60, 42, 5]]
        let one = network.evaluateRows(on: samples, rankSets: rankSets, batchSize: 32)
        let many = network.evaluateRows(
            on: samples, rankSets: rankSets, batchSize: 32, threads: threads)
        #expect(one.count == many.count)
        for (a, b) in zip(one, many) {
            #expect(a.accuracy == b.accuracy)
            #expect(a.loss.bitPattern == b.loss.bitPattern)
            #expect(a.correct == b.correct)
        }
        // The figures differ between the budgets: the comparison above is not vacuous.
        #expect(Set(one.map(\.loss)).count == rankSets.count)
    }

    @Test("factoredMinimumWeights keeps the small layers dense, with the same initial weights")
    func partlyFactored() {
        var a = SeededGenerator(seed: 7)
        var b = SeededGenerator(seed: 7)
        let dense = Network(architecture: .make(.lenet, lowRank: false), using: &a)
        let mixed = Network(
            architecture: .make(.lenet, lowRank: true, factoredMinimumWeights: 10_000), using: &b)
        // conv1 (150 weights), conv2 (2 400) and fc3 (840) stay dense; fc1 and fc2 are factored.
        #expect(
            mixed.architecture.layers.map(\.kindName).filter { $0 != "relu" } == [
                "conv", "maxpool", "conv", "maxpool", "flatten", "lod-dense", "lod-dense", "dense",
            ])
        #expect(mixed.maxRanks == [120, 84])
        #expect(mixed.parameterCount(ranks: mixed.keptRanks) == 61_706)
        #expect(sameLogits(mixed, dense, using: &a))
    }

    @Test(
        "Export at a fraction is physically smaller and computes what the truncated model computes",
        arguments: [0.125, 0.5, 1.0])
    func export(fraction: Double) {
        let network = Self.trainedLeNet()
        let ranks = network.ranks(atFraction: fraction)
        let small = network.exported(ranks: ranks)
        var generator = SeededGenerator(seed: 9)
        let input = Tensor.randomNormal(shape: [3 * 784], using: &generator).scalars
        let truncated = Tensor(
            shape: [30], scalars: network.forward(input, batch: 3, ranks: ranks).logits)
        let exported = Tensor(shape: [30], scalars: small.forward(input, batch: 3).logits)
        #expect(isClose(exported, truncated, tolerance: 1e-4))
        let stored = small.parameters.reduce(0) { $0 + $1.count }
        #expect(stored == network.parameterCount(ranks: ranks))
        #expect(small.macs(ranks: small.keptRanks) == network.macs(ranks: ranks))
        if fraction == 1.0 {
            // Full rank is cheaper dense everywhere: the export is a dense LeNet.
            #expect(small.keptRanks.isEmpty)
        }
    }

    @Test("Masking zeroes the cut components and lowers the counts")
    func masking() {
        var network = Self.trainedLeNet()
        let before = network.parameterCount(ranks: network.keptRanks)
        network.mask(lowRankLayer: 2, toRank: 30)
        #expect(network.keptRanks == [6, 16, 30, 84, 10])
        #expect(
            network.parameterCount(ranks: network.keptRanks) == before - 48_000 - 120 + 30 * 520
                + 120)
        let up = network.parameters[
            network.parameterOffset(ofLayer: network.architecture.lowRankLayerIndices[2])]
        #expect(up.scalars[(30 * 120)...].allSatisfy { $0 == 0 })
    }

    @Test("Model file round trip is bit-exact")
    func roundTrip() throws {
        var network = Self.trainedLeNet()
        network.mask(lowRankLayer: 3, toRank: 20)
        let bytes = ModelFile.encode(network, metadata: ["seed": "1"])
        let (decoded, metadata) = try ModelFile.decode(bytes)
        #expect(decoded == network)
        #expect(metadata == ["seed": "1"])
        #expect(ModelFile.encode(decoded, metadata: metadata) == bytes)
    }

    @Test("Truncated, corrupted, foreign and newer files are refused with the reason")
    func refusals() throws {
        let bytes = ModelFile.encode(Self.trainedLeNet())
        for length in [0, 7, 19, 100, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ModelFile.Error.self) {
                try ModelFile.decode(Array(bytes.prefix(length)))
            }
        }
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x10
        #expect(throws: ModelFile.Error.self) { try ModelFile.decode(flipped) }
        do {
            _ = try ModelFile.decode(flipped)
        } catch {
            #expect(error.description.contains("checksum"))
        }
        var foreign = bytes
        foreign[0] = UInt8(ascii: "X")
        #expect(throws: ModelFile.Error.badMagic) { try ModelFile.decode(foreign) }
        var newer = bytes
        newer[8] = 2
        #expect(throws: ModelFile.Error.newerVersion(found: 2, supported: 1)) {
            try ModelFile.decode(newer)
        }
        var padded = bytes
        padded.append(0)
        #expect(throws: ModelFile.Error.self) { try ModelFile.decode(padded) }
    }

    @Test("A well-formed file whose architecture does not chain is refused, not run")
    func forgedArchitecture() throws {
        var generator = SeededGenerator(seed: 3)
        let good = Architecture(
            name: "t", inputShape: [4], classCount: 2, layers: [.dense(inputs: 4, outputs: 2)])
        #expect(good.inconsistency == nil)
        #expect(Architecture.make(.lenet, lowRank: true).inconsistency == nil)
        let forged = Architecture(
            name: "t", inputShape: [5], classCount: 2, layers: [.dense(inputs: 4, outputs: 2)])
        #expect(forged.inconsistency?.contains("layer 0") == true)
        let network = Network(architecture: good, using: &generator)
        // Re-label the input shape in the JSON header and fix up the checksum: still refused.
        var bytes = ModelFile.encode(network)
        let text = String(decoding: bytes, as: UTF8.self)
        let needle = Array("\"inputShape\":[4]".utf8)
        let replacement = Array("\"inputShape\":[5]".utf8)
        guard let range = bytes.firstRange(of: needle) else {
            Issue.record("header has no inputShape in \(text.prefix(200))")
            return
        }
        bytes.replaceSubrange(range, with: replacement)
        bytes.removeLast(4)
        let crc = CRC32C.checksum(bytes)
        bytes += [
            UInt8(crc & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8((crc >> 16) & 0xFF),
            UInt8(crc >> 24),
        ]
        #expect(throws: ModelFile.Error.self) { try ModelFile.decode(bytes) }
    }
}

@Suite("Rank samplers")
struct SamplerTests {
    @Test("perLayer visits every (layer, rank) pair exactly once per sweep")
    func perLayerSweep() {
        var state = RankSamplingState(sampler: .perLayer)
        var generator = SeededGenerator(seed: 1)
        let limits = [3, 5, 2]
        var seen: [String: Int] = [:]
        for _ in 0..<10 {
            let ranks = state.nextRanks(limits: limits, using: &generator)
            let truncated = zip(ranks, limits).enumerated().filter { $0.element.0 < $0.element.1 }
            #expect(truncated.count <= 1)
            // Exactly one layer may be cut (or a layer at its full rank, which leaves all full).
            let layer = truncated.first?.offset
            let key = layer.map { "\($0):\(ranks[$0])" } ?? "full"
            seen[key, default: 0] += 1
        }
        // 10 pairs: 3 + 5 + 2; the 3 full-rank pairs look identical ("full").
        #expect(seen["full"] == 3)
        #expect(seen.count == 8 && seen.values.reduce(0, +) == 10)
    }

    @Test("Samplers stay inside the limits; fixed and sharedFraction use ceil(p·r)")
    func limits() {
        var generator = SeededGenerator(seed: 2)
        let limits = [6, 16, 40, 0]
        for sampler in [
            RankSampler.perLayer, .acrossLayers, .sharedFraction(fractions: [0.25, 1]),
            .fixed(fraction: 0.125), .unsampled,
        ] {
            var state = RankSamplingState(sampler: sampler)
            for _ in 0..<200 {
                let ranks = state.nextRanks(limits: limits, using: &generator)
                #expect(zip(ranks, limits).allSatisfy { $0.0 <= $0.1 && ($0.1 == 0 || $0.0 >= 1) })
            }
        }
        var fixed = RankSamplingState(sampler: .fixed(fraction: 0.125))
        #expect(fixed.nextRanks(limits: limits, using: &generator) == [1, 2, 5, 0])
        #expect(RankSampler(name: "fixed:0.25") == .fixed(fraction: 0.25))
        #expect(RankSampler(name: "sometimes") == nil)
        // Fractions that crossed the wire as 32-bit floats land on the same ranks.
        #expect(RankBudget.rank(fraction: Double(Float(0.3)), of: 10) == 3)
        #expect(RankBudget.rank(fraction: Double(Float(0.1 / 0.3)), of: 3) == 1)
        #expect(RankBudget.rank(fraction: 0.125, of: 86) == 11)
        #expect(RankBudget.rank(fraction: 0.30001, of: 10) == 4)
    }

    @Test("Shrinking keeps the prefix whose suffix importance passes the threshold")
    func shrinking() {
        // Components with norms 4, 2, 1, 1e-3 on both sides: suffix norms are √21, √5, 1,
        // 1e-3, so suffix products are 21, 5, 1, 1e-6. Relative 1e-3 keeps 3; absolute 1.5 keeps 2.
        var up = Tensor(zeros: [4, 2])
        var down = Tensor(zeros: [4, 3])
        for (i, norm) in [4, 2, 1, 1e-3].enumerated() {
            up[i, 0] = Float(norm)
            down[i, 1] = Float(norm)
        }
        #expect(
            GroupLasso.keptRank(up: up, down: down, kept: 4, threshold: 1e-3, relative: true) == 3)
        #expect(GroupLasso.keptRank(up: up, down: down, kept: 4, threshold: 0, relative: true) == 4)
        #expect(
            GroupLasso.keptRank(up: up, down: down, kept: 4, threshold: 1.5, relative: false) == 2)
    }
}
