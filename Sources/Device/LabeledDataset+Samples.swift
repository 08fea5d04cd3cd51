import Datasets
import LowRank

extension LabeledDataset {
    /// The samples in the form the trainer takes.
    public var samples: TrainingSamples {
        TrainingSamples(features: features, labels: labels, featureCount: featureCount)
    }
}
