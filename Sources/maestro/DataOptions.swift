import ArgumentParser
import Datasets
import LowRank
import Runtime

enum DatasetName: String, ExpressibleByArgument, CaseIterable, Codable {
    case fashionMNIST = "fashion-mnist"
    case synthetic
    case cifar10
    case cifar100
    case cifar100Coarse = "cifar100-coarse"
    case femnist

    /// Where the files are looked for without `--data-dir`.
    var defaultDirectory: String {
        switch self {
        case .fashionMNIST, .synthetic: FashionMNIST.defaultDirectory
        case .cifar10: "/usr/share/datasets/cifar-10"
        case .cifar100, .cifar100Coarse: "/usr/share/datasets/cifar-100"
        case .femnist: "/usr/share/datasets/femnist"
        }
    }
}

/// Options that choose the data a command trains or evaluates on.
struct DataOptions: ParsableArguments {
    @Option(
        help: """
            Dataset: fashion-mnist, cifar10, cifar100, cifar100-coarse (its 20 superclasses), \
            femnist (LEAF JSON: DIR/train and DIR/test) or synthetic (FedProx Synthetic(1,1), \
            generated). See docs/usage.md#data-sets.
            """)
    var dataset: DatasetName = .fashionMNIST

    @Option(
        name: .customLong("data-dir"),
        help: """
            Folder of the data set's files (default: /usr/share/datasets/fashion-mnist, \
            cifar-10, cifar-100 or femnist).
            """)
    var dataDirectoryOption: String?

    /// The folder the files are read from: `--data-dir`, else the data set's default.
    var dataDirectory: String {
        get { dataDirectoryOption ?? dataset.defaultDirectory }
        set { dataDirectoryOption = newValue }
    }

    /// Training and test samples, with the per-sample input shape and class count.
    func load(
        seed: UInt64
    ) throws(CommandError) -> (
        train: TrainingSamples, test: TrainingSamples, inputShape: [Int], classCount: Int
    ) {
        let directory = dataDirectory
        let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let sets: (train: LabeledDataset, test: LabeledDataset)
        do {
            switch dataset {
            case .fashionMNIST:
                sets = (
                    try FashionMNIST.load(split: .train, directory: directory),
                    try FashionMNIST.load(split: .test, directory: directory)
                )
            case .cifar10, .cifar100, .cifar100Coarse:
                let format: CIFARFormat =
                    dataset == .cifar10
                    ? .cifar10 : .cifar100(labels: dataset == .cifar100 ? .fine : .coarse)
                sets = (
                    try format.load(split: .train, directory: directory),
                    try format.load(split: .test, directory: directory)
                )
            case .femnist:
                sets = (
                    try LEAFFormat.load(path: "\(folder)/train", layout: .femnist),
                    try LEAFFormat.load(path: "\(folder)/test", layout: .femnist)
                )
            case .synthetic:
                let devices = FedProxSynthetic(alpha: 1, beta: 1).generate(seed: seed)
                func pooled(_ parts: [LabeledDataset]) -> TrainingSamples {
                    TrainingSamples(
                        features: parts.flatMap(\.features), labels: parts.flatMap(\.labels),
                        featureCount: parts.first?.featureCount ?? 60)
                }
                return (pooled(devices.map(\.train)), pooled(devices.map(\.test)), [60], 10)
            }
        } catch {
            throw CommandError("\(error)")
        }
        return (
            sets.train.samples, sets.test.samples, sets.train.featureShape, sets.train.classCount
        )
    }
}
