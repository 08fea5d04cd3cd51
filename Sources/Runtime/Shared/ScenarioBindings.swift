import Datasets
import Fleet
import Foundation
import LowRank
import Tensors
import Vocabulary

/// How a scenario's plain values become the model, samplers, optimisers and data of a run.
extension Scenario {
    /// The model description the scenario gives (a preset or layers: one definition of the
    /// models for the scenario, the runtime and the model files).
    public var modelDescription: ModelDescription { model.architecture }

    /// Whether the run ships LoD factors (ordered LoD, fixed rank) or dense weights.
    public var isLowRank: Bool { model.strategy.usesLoDFactors }

    /// The rank fraction a tier trains in round `round` (1-based): its own, under the cap of
    /// `training.budgetGrowth` while one applies.
    public func rankFraction(of tier: Tier, round: Int) -> Double {
        min(tier.rankFraction, training.budgetGrowth?.cap(atRound: round) ?? 1)
    }

    /// How many leading layers of `architecture` a tier's clients run forward only: those
    /// through the last convolution when the tier freezes the convolutions, else none.
    public func frozenLayers(of tier: Tier, architecture: LowRank.Architecture) -> Int {
        isLowRank && tier.freezeConvolutions ? architecture.layersThroughLastConvolution : 0
    }

    /// Per-sample input shape and class count of the scenario's data.
    public var inputShape: [Int] { dataset.sampleShape }

    public var classCount: Int { dataset.classCount }

    /// The architecture every participant builds.
    ///
    /// The scenario validator has checked that the description chains on the data set's
    /// samples (`ModelDescription.shapeProblem`), which is what building it needs.
    public var networkArchitecture: LowRank.Architecture {
        architecture(lowRank: isLowRank)
    }

    /// The scenario's model built dense (`lowRank: false`) or as the run factors it.
    public func architecture(lowRank: Bool) -> LowRank.Architecture {
        do {
            return try LowRank.Architecture(
                description: model.architecture, inputShape: inputShape, classCount: classCount,
                lowRank: lowRank, factoredMinimumWeights: model.factoredMinimumWeights)
        } catch {
            preconditionFailure("a validated scenario's model does not build: \(error)")
        }
    }

    /// The initial global model: He-initialised dense weights, factored by SVD for LoD, from
    /// a generator derived from the scenario seed (so both strategies start from the same
    /// dense weights).
    public func initialNetwork() -> Network {
        var generator = SeededGenerator.derived(seed: seed, stream: RandomStream.initialModel)
        return Network(
            architecture: networkArchitecture, initialization: .he, factorization: .svd,
            using: &generator)
    }

    /// The client learning rate of round `round` (1-based).
    public func learningRate(round: Int) -> Float {
        switch training.learningRateSchedule {
        case .constant: return Float(training.learningRate)
        case .cosine:
            let progress = Double(round - 1) / Double(max(rounds, 1))
            return Float(training.learningRate * 0.5 * (1 + cos(Double.pi * progress)))
        }
    }

    /// The partition scheme of a centralised data set.
    var partitionScheme: PartitionScheme? {
        switch dataset.partition {
        case nil, .natural: return nil
        case .iid: return .iid
        case .dirichlet(let alpha): return .dirichlet(alpha: alpha)
        case .shards(let perClient): return .shards(perClient: perClient)
        case .tiered(let alpha, let tierAlpha):
            return .tiered(alpha: alpha, tierAlpha: tierAlpha, tierSizes: clientsPerTier)
        }
    }

    private var syntheticGenerator: FedProxSynthetic? {
        switch dataset {
        case .fashionMNIST, .cifar10, .cifar100, .leaf: nil
        case .synthetic(let alpha, let beta):
            FedProxSynthetic(alpha: alpha, beta: beta, deviceCount: clients)
        case .syntheticIID: .iid(deviceCount: clients)
        }
    }

    /// The training samples of fleet client `index`, derived from (dataset, seed, partition,
    /// index) alone: no training data crosses the wire.
    public func clientSamples(index: Int) throws(DatasetError) -> TrainingSamples {
        precondition(index >= 0 && index < clients, "client index \(index) outside 0..<\(clients)")
        switch dataset {
        case .fashionMNIST(let directory, _):
            let pool = try trainingPool(directory: directory)
            let indices = partitionIndices(
                forClient: index, labels: pool.labels, classCount: classCount,
                clientCount: clients, scheme: partitionScheme ?? .iid, seed: seed
            ).map { pool.rows[$0] }
            return try FashionMNIST.load(
                split: .train, directory: directory,
                selecting: Array(indices.prefix(samplesPerClient ?? indices.count))
            ).samples
        case .cifar10, .cifar100, .leaf:
            let files = dataFiles!
            return try dataFileTrainingSamples(files, rows: dataFilePartitionRows(files)[index])
                .samples
        case .synthetic, .syntheticIID:
            let train = syntheticGenerator!.device(index, seed: seed).train
            return train.subset(Array(0..<min(train.count, samplesPerClient ?? train.count)))
                .samples
        }
    }

    /// Every client's training rows of a centralised data set, computed once for the whole
    /// fleet (a worker hosting thousands of clients is sent its clients' rows instead of
    /// partitioning 60 000 labels for each), or `nil` for data generated per client.
    public func partitionRows() throws(DatasetError) -> [[Int]]? {
        if let files = dataFiles { return try dataFilePartitionRows(files) }
        guard case .fashionMNIST(let directory, _) = dataset else { return nil }
        let pool = try trainingPool(directory: directory)
        return partition(
            labels: pool.labels, classCount: classCount, clientCount: clients,
            scheme: partitionScheme ?? .iid, seed: seed
        ).map { $0.prefix(samplesPerClient ?? $0.count).map { pool.rows[$0] } }
    }

    /// The rows of the Fashion-MNIST training split the partition splits among the clients
    /// (all but the coordinator's validation rows, `evaluation.validationSamples`), and their
    /// labels.
    private func trainingPool(
        directory: String
    ) throws(DatasetError) -> (
        rows: [Int], labels: [Int32]
    ) {
        let labels = try FashionMNIST.labels(split: .train, directory: directory)
        guard evaluation.validationSamples > 0 else { return (Array(labels.indices), labels) }
        let rows = try split(labels: labels, directory: directory).training
        return (rows, rows.map { labels[$0] })
    }

    /// The validation and training rows of the Fashion-MNIST training split.
    ///
    /// - Throws: `DatasetError.itemOutOfRange` naming the labels file when it holds no more
    ///   images than the validation set.
    private func split(
        labels: [Int32], directory: String
    ) throws(DatasetError) -> (validation: [Int], training: [Int]) {
        let held = evaluation.validationSamples
        guard held < labels.count else {
            throw .itemOutOfRange(
                path: FashionMNIST.paths(split: .train, directory: directory).labels,
                index: held, itemCount: labels.count)
        }
        return validationSplit(sampleCount: labels.count, held: held, seed: seed)
    }

    /// The coordinator's validation set (`evaluation.validationSamples` training images no
    /// client holds), or `nil` when the scenario holds none out.
    public func validationSamples() throws(DatasetError) -> TrainingSamples? {
        guard evaluation.validationSamples > 0, case .fashionMNIST(let directory, _) = dataset
        else { return nil }
        let labels = try FashionMNIST.labels(split: .train, directory: directory)
        let rows = try split(labels: labels, directory: directory).validation
        return try FashionMNIST.load(split: .train, directory: directory, selecting: rows).samples
    }

    /// The most training samples one client of this scenario can hold: the cap on the weight
    /// a registration may claim (`dataset.samplesPerClient`, else the whole training set of
    /// Fashion-MNIST, else the generator's cap).
    public var samplesPerClientBound: Int {
        let whole: Int
        switch dataset {
        case .fashionMNIST: whole = 60_000
        case .cifar10, .cifar100: whole = Dataset.cifarTrainingCount
        case .leaf: whole = Int(UInt32.max)
        case .synthetic, .syntheticIID:
            whole = syntheticGenerator?.maximumSamplesPerDevice ?? Int(UInt32.max)
        }
        return min(samplesPerClient ?? whole, whole)
    }

    /// How many training samples fleet client `index` holds, given its rows of
    /// ``partitionRows()`` (ignored for generated data, which is counted without generating).
    public func clientSampleCount(index: Int, rows: [UInt32]) -> Int {
        switch dataset {
        case .fashionMNIST, .cifar10, .cifar100, .leaf: return rows.count
        case .synthetic, .syntheticIID:
            let count = syntheticGenerator!.trainCount(ofDevice: index, seed: seed)
            return min(count, samplesPerClient ?? count)
        }
    }

    /// The training samples of fleet client `index` from its rows of ``partitionRows()``
    /// (`rows` is ignored for generated data).
    ///
    /// - Throws: `DatasetError.itemOutOfRange` naming the images file for a row past its end.
    public func clientSamples(index: Int, rows: [UInt32]) throws(DatasetError) -> TrainingSamples {
        precondition(index >= 0 && index < clients, "client index \(index) outside 0..<\(clients)")
        switch dataset {
        case .fashionMNIST(let directory, _):
            return try FashionMNIST.load(
                split: .train, directory: directory, selecting: rows.map(Int.init)
            ).samples
        case .cifar10, .cifar100, .leaf:
            return try dataFileTrainingSamples(dataFiles!, rows: rows.map(Int.init)).samples
        case .synthetic, .syntheticIID:
            let train = syntheticGenerator!.device(index, seed: seed).train
            return train.subset(Array(0..<min(train.count, samplesPerClient ?? train.count)))
                .samples
        }
    }

    /// Devices whose test splits make a synthetic scenario's held-out set.
    public static let evaluationDevices = 1_000

    /// The held-out set the coordinator evaluates every tier's budget on: the Fashion-MNIST
    /// test split, or the union of the test splits of the synthetic devices (the first
    /// ``evaluationDevices`` of them).
    public func evaluationSamples() throws(DatasetError) -> TrainingSamples {
        switch dataset {
        case .fashionMNIST(let directory, _):
            return try FashionMNIST.load(split: .test, directory: directory).samples
        case .cifar10, .cifar100, .leaf:
            return try dataFileTestSamples(dataFiles!).samples
        case .synthetic, .syntheticIID:
            // At most the first `evaluationDevices` devices: the held-out set of a fleet of a
            // million devices must not cost a million devices' generation.
            let generator = syntheticGenerator!
            let tests = (0..<min(clients, Self.evaluationDevices)).map {
                generator.device($0, seed: seed).test
            }
            return TrainingSamples(
                features: tests.flatMap(\.features), labels: tests.flatMap(\.labels),
                featureCount: 60)
        }
    }
}

/// Labels of the independent random streams derived from a scenario seed.
public enum RandomStream {
    public static let initialModel: UInt64 = 0x4D4F_4445_4C
    public static let selection: UInt64 = 0x5345_4C45_4354
    public static let clientTraining: UInt64 = 0x434C_4945_4E54
}
