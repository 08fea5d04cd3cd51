import Datasets
import Fleet

/// The data of scenarios whose data set a user brings as files: CIFAR-10, CIFAR-100, LEAF.
extension Scenario {
    /// Where a file-based data set's samples come from.
    enum DataFiles {
        /// CIFAR-10 or CIFAR-100 binary files in `directory`.
        case cifar(CIFARFormat, directory: String)
        /// LEAF JSON at `train` and `test` (files or folders).
        case leaf(train: String, test: String, layout: LEAFFormat.Layout)

        /// The path errors about the training split name.
        var trainingPath: String {
            switch self {
            case .cifar(_, let directory): directory
            case .leaf(let train, _, _): train
            }
        }
    }

    /// The files of a CIFAR or LEAF scenario, `nil` for the other data sets.
    var dataFiles: DataFiles? {
        switch dataset {
        case .cifar10(let directory, _): .cifar(.cifar10, directory: directory)
        case .cifar100(let directory, let labels, _):
            .cifar(.cifar100(labels: labels == .coarse ? .coarse : .fine), directory: directory)
        case .leaf(let train, let test, let featureShape, let classCount, _):
            .leaf(
                train: train, test: test,
                layout: LEAFFormat.Layout(featureShape: featureShape, classCount: classCount))
        case .fashionMNIST, .synthetic, .syntheticIID: nil
        }
    }

    /// Every client's rows of the training split of a file-based data set, each cut to
    /// `samplesPerClient`.
    ///
    /// - Throws: the readers' errors, and `tooFewSamples` naming the training data when it
    ///   cannot give every client a sample (or a writer, for `natural`; or a shard).
    func dataFilePartitionRows(_ files: DataFiles) throws(DatasetError) -> [[Int]] {
        let labels: [Int32]
        let classCount: Int
        var samplesPerWriter: [Int] = []
        switch files {
        case .cifar(let format, let directory):
            labels = try format.labels(split: .train, directory: directory)
            classCount = format.classCount
        case .leaf(let train, _, let layout):
            let index = try LEAFFormat.index(path: train, layout: layout)
            (labels, samplesPerWriter, classCount) =
                (index.labels, index.samplesPerWriter, layout.classCount)
        }
        let path = files.trainingPath
        let parts: [[Int]]
        switch dataset.partition {
        case .natural:
            guard samplesPerWriter.count >= clients else {
                throw .tooFewSamples(
                    path: path,
                    reason:
                        "\(samplesPerWriter.count) writers cannot give each of \(clients) "
                        + "clients one (partition natural deals whole writers)")
            }
            parts = naturalPartition(samplesPerWriter: samplesPerWriter, clientCount: clients)
        case .shards(let perClient) where clients * perClient > labels.count:
            throw .tooFewSamples(
                path: path,
                reason:
                    "\(labels.count) training samples cannot make \(clients) × \(perClient) shards")
        default:
            guard labels.count >= clients else {
                throw .tooFewSamples(
                    path: path,
                    reason:
                        "\(labels.count) training samples cannot give each of \(clients) clients one"
                )
            }
            parts = partition(
                labels: labels, classCount: classCount, clientCount: clients,
                scheme: partitionScheme ?? .iid, seed: seed)
        }
        return parts.map { Array($0.prefix(samplesPerClient ?? $0.count)) }
    }

    /// The training samples `rows` (in that order) of a file-based data set.
    func dataFileTrainingSamples(
        _ files: DataFiles, rows: [Int]
    ) throws(DatasetError) -> LabeledDataset {
        switch files {
        case .cifar(let format, let directory):
            try format.load(split: .train, directory: directory, selecting: rows)
        case .leaf(let train, _, let layout):
            try LEAFFormat.load(path: train, layout: layout, selecting: rows)
        }
    }

    /// The whole test split of a file-based data set.
    func dataFileTestSamples(_ files: DataFiles) throws(DatasetError) -> LabeledDataset {
        switch files {
        case .cifar(let format, let directory): try format.load(split: .test, directory: directory)
        case .leaf(_, let test, let layout): try LEAFFormat.load(path: test, layout: layout)
        }
    }
}
