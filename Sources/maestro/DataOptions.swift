import ArgumentParser
import Datasets
import LowRank
import Runtime

enum DatasetName: String, ExpressibleByArgument, CaseIterable, Codable {
    case fashionMNIST = "fashion-mnist"
    case synthetic
}

/// Options that choose the data a command trains or evaluates on.
struct DataOptions: ParsableArguments {
    @Option(
        help:
            "Dataset: fashion-mnist (real files) or synthetic (FedProx Synthetic(1,1), generated).")
    var dataset: DatasetName = .fashionMNIST

    @Option(
        name: .customLong("data-dir"), help: "Folder with the MNIST-format .gz or plain IDX files.")
    var dataDirectory: String = FashionMNIST.defaultDirectory

    /// Training and test samples, with the per-sample input shape and class count.
    func load(
        seed: UInt64
    ) throws(CommandError) -> (
        train: TrainingSamples, test: TrainingSamples, inputShape: [Int], classCount: Int
    ) {
        switch dataset {
        case .fashionMNIST:
            do {
                let train = try FashionMNIST.load(split: .train, directory: dataDirectory)
                let test = try FashionMNIST.load(split: .test, directory: dataDirectory)
                return (train.samples, test.samples, train.featureShape, train.classCount)
            } catch {
                throw CommandError("\(error)")
            }
        case .synthetic:
            let devices = FedProxSynthetic(alpha: 1, beta: 1).generate(seed: seed)
            func pooled(_ parts: [LabeledDataset]) -> TrainingSamples {
                TrainingSamples(
                    features: parts.flatMap(\.features), labels: parts.flatMap(\.labels),
                    featureCount: parts.first?.featureCount ?? 60)
            }
            return (pooled(devices.map(\.train)), pooled(devices.map(\.test)), [60], 10)
        }
    }
}
