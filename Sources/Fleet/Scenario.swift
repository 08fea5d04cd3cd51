import Vocabulary

/// A federated-learning experiment as a researcher wrote it: data, model, training, fleet.
///
/// A `Scenario` is a trusted value: the only ways to get one are ``parse(yaml:path:)``,
/// ``load(path:)``, ``overriding(_:)`` and `Decodable`, and all of them run the same
/// validator, so every field is in range and every cross-field rule holds (see
/// `Scenarios/README.md` for the schema, defaults and ranges). Optional keys the file left
/// out hold their defaults here, so ``yaml()`` writes the scenario exactly as it runs.
public struct Scenario: Sendable, Equatable {
    /// Identifies the scenario in run folders and reports: letters, digits, `.`, `_`, `-`.
    public let name: String
    /// Seeds every random choice of a run (partition, initialisation, selection, sampling).
    public let seed: UInt64
    /// Fleet size: client indices are `0..<clients`.
    public let clients: Int
    /// Number of federated rounds.
    public let rounds: Int
    /// Updates the server aggregates per round, `1...clients`.
    public let clientsPerRound: Int
    /// Factor ≥ 1 on `clientsPerRound` for how many clients a round selects
    /// (`ceil(clientsPerRound · overSelection) ≤ clients`); 1 selects exactly `clientsPerRound`.
    public let overSelection: Double
    /// Fewest updates a round needs to count, `1...clientsPerRound`.
    public let minimumUpdates: Int
    /// What a round that gets fewer than `minimumUpdates` updates does.
    public let roundFailurePolicy: RoundFailurePolicy
    /// Virtual seconds a selected client has to download, train and upload.
    ///
    /// A client that would take longer is dropped from that round. `nil`: no deadline.
    public let deadlineSeconds: Double?
    /// Where the clients' data comes from.
    public let dataset: Dataset
    /// Architecture and federated strategy.
    public let model: Model
    /// Client-side training and server-side optimiser.
    public let training: Training
    /// Server-side progressive shrinking of the global ranks.
    public let shrinking: Shrinking
    /// How often the global model is evaluated (at every tier's budget).
    public let evaluation: Evaluation
    /// Transport security requirements.
    public let security: Security
    /// Device tiers in file order; they partition the fleet (see ``fleet()``).
    public let tiers: [Tier]
    /// At most this many training samples per client (`dataset.samplesPerClient`; nil: all of
    /// its partition). Keeps test scenarios small; the first samples of the partition are kept.
    public internal(set) var samplesPerClient: Int? = nil
    /// How `maestro fleet` hosts the simulated clients.
    public internal(set) var simulation = Simulation(processPerClient: false)
    /// How the coordinator bounds and combines updates (`robustness`; defaults: plain
    /// averaging, a norm bound no honest update of the shipped scenarios comes near).
    public internal(set) var robustness = Robustness()
    /// Simulated attackers among the fleet's clients (`adversaries`; testing only, nil: none).
    public internal(set) var adversaries: Adversaries? = nil
    /// How reports judge a run of the scenario (`report`; nil: the reports' defaults).
    public internal(set) var report: ReportSettings? = nil
}

extension Scenario {
    /// What a round does when fewer than `minimumUpdates` updates arrived in time.
    public enum RoundFailurePolicy: String, Sendable, Equatable, CaseIterable {
        /// Run the round again with a fresh selection (the round number does not advance).
        case retry
        /// Keep the global model unchanged and go on with the next round.
        case skip
        /// Stop the run with an error.
        case abort
    }

    /// The clients' data.
    public enum Dataset: Sendable, Equatable {
        /// Fashion-MNIST (60k train / 10k test, gzip'd IDX files in `directory`), split over
        /// the clients by `partition`.
        case fashionMNIST(directory: String, partition: Partition)
        /// FedProx Synthetic(α, β): one generated device per client (α, β are the standard
        /// deviations of the per-device model and input means; Li et al., MLSys 2020).
        case synthetic(alpha: Double, beta: Double)
        /// FedProx Synthetic IID: one shared model, zero input means.
        case syntheticIID
        /// CIFAR-10, binary version (50k train / 10k test, 32×32×3, 10 classes) in `directory`,
        /// split over the clients by `partition`.
        case cifar10(directory: String, partition: Partition)
        /// CIFAR-100, binary version (50k train / 10k test, 32×32×3), with its fine (100) or
        /// coarse (20) labels, in `directory`, split over the clients by `partition`.
        case cifar100(directory: String, labels: CIFAR100Labels, partition: Partition)
        /// LEAF JSON files (FEMNIST and the other LEAF sets of number vectors): the training
        /// split at `train` and the test split at `test` (each a `.json` file or a folder of
        /// them), samples of `featureShape` in `classCount` classes, split over the clients by
        /// `partition` (`natural`: each writer's samples on one client).
        case leaf(
            train: String, test: String, featureShape: [Int], classCount: Int,
            partition: Partition)

        /// The `dataset.name` key: `fashion-mnist`, `synthetic`, `cifar10`, `cifar100` or
        /// `leaf`.
        public var name: String {
            switch self {
            case .fashionMNIST: "fashion-mnist"
            case .synthetic, .syntheticIID: "synthetic"
            case .cifar10: "cifar10"
            case .cifar100: "cifar100"
            case .leaf: "leaf"
            }
        }

        /// The partition of a centralised data set (`nil` for generated data).
        public var partition: Partition? {
            switch self {
            case .fashionMNIST(_, let partition), .cifar10(_, let partition),
                .cifar100(_, _, let partition), .leaf(_, _, _, _, let partition):
                partition
            case .synthetic, .syntheticIID: nil
            }
        }

        /// The shape of one sample: Fashion-MNIST's 28×28×1 images, CIFAR's 32×32×3, the 60
        /// features of synthetic data, or a LEAF set's stated feature shape.
        public var sampleShape: [Int] {
            switch self {
            case .fashionMNIST: [28, 28, 1]
            case .synthetic, .syntheticIID: [60]
            case .cifar10, .cifar100: [32, 32, 3]
            case .leaf(_, _, let featureShape, _, _): featureShape
            }
        }

        /// How many classes the labels take.
        public var classCount: Int {
            switch self {
            case .fashionMNIST, .synthetic, .syntheticIID, .cifar10: 10
            case .cifar100(_, let labels, _): labels == .coarse ? 20 : 100
            case .leaf(_, _, _, let classCount, _): classCount
            }
        }

        /// Which of CIFAR-100's labels the samples carry.
        public enum CIFAR100Labels: String, Sendable, Equatable, CaseIterable {
            /// The 100 classes.
            case fine
            /// The 20 superclasses.
            case coarse
        }

        /// Training images of CIFAR-10 and CIFAR-100, the bound for their partitions.
        public static let cifarTrainingCount = 50_000

        /// Default location of the Debian package `dataset-fashion-mnist`.
        public static let defaultFashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
        /// Training images in Fashion-MNIST, the bound for partitions.
        public static let fashionMNISTTrainingCount = 60_000
    }

    /// How a centralised training set is split over the clients.
    public enum Partition: Sendable, Equatable {
        /// Uniformly at random, equal sizes.
        case iid
        /// Label skew: each client's class proportions ~ Dirichlet(α); smaller α, more skew.
        case dirichlet(alpha: Double)
        /// McMahan et al. (2017): sort by label, cut into `clients · perClient` shards, give
        /// each client `perClient` of them.
        case shards(perClient: Int)
        /// Label skew that follows the tiers: each tier's clients share a label mix drawn
        /// from Dirichlet(`tierAlpha`), and split it among themselves by Dirichlet(`alpha`).
        /// Models a fleet whose device classes serve different users (regions, uses), so that
        /// dropping a tier loses data no other tier holds.
        case tiered(alpha: Double, tierAlpha: Double)
        /// Each writer's samples on one client, writers dealt round-robin (writer w to client
        /// w mod clients, in the files' order); LEAF data only, which knows its writers.
        case natural
    }

    /// The network every client and the server build.
    public struct Model: Sendable, Equatable {
        /// The layer stack: a preset, a preset with another normalisation, or layers written
        /// out (`model.architecture`, in the syntax of model description files).
        public let architecture: ModelDescription
        /// The federated strategy: ordered low-rank sub-models, the dense baseline, or fixed
        /// ranks per tier.
        public let strategy: Strategy
        /// Weight layers with fewer weights than this stay dense under `orderedLoD`: every
        /// tier holds them whole and they are averaged like biases. 0 factors every layer.
        public let factoredMinimumWeights: Int

        public init(
            architecture: ModelDescription, strategy: Strategy, factoredMinimumWeights: Int = 0
        ) {
            self.architecture = architecture
            self.strategy = strategy
            self.factoredMinimumWeights = factoredMinimumWeights
        }

        /// A model of preset `architecture` with its default normalisation.
        public init(architecture: ModelPreset, strategy: Strategy, factoredMinimumWeights: Int = 0)
        {
            self.init(
                architecture: .preset(architecture), strategy: strategy,
                factoredMinimumWeights: factoredMinimumWeights)
        }
    }

    /// The model presets of the shared vocabulary (`lenet`, `mlp`, `logistic`, `cnn`,
    /// `resnet8`, `resnet20`, `resnet18`, `vgg11`, `vgg19`), which `model.architecture` may
    /// name; shapes come from the data set.
    public typealias Architecture = ModelPreset

    /// Who trains what and how the server combines it.
    public enum Strategy: String, Sendable, Equatable, CaseIterable {
        /// Each tier trains its rank prefix; the server aggregates column by column.
        case orderedLoD
        /// Every client trains the whole dense model; plain (or server-optimised) FedAvg.
        case denseFedAvg
        /// Static nested width slices (HeteroFL, Diao et al., ICLR 2021): a tier of fraction
        /// p trains the first ⌈p·c⌉ channels or units of every hidden layer; the server
        /// averages each weight over the clients that hold it.
        case heteroFL
        /// Ordered dropout over width (FjORD, Horváth et al., NeurIPS 2021): each local step
        /// trains the prefix of a width drawn from the tiers' fractions up to the client's.
        case fjord
        /// A rolling width window (FedRolex, Alam et al., NeurIPS 2022): a tier's ⌈p·c⌉
        /// channels start one channel further every round, wrapping around.
        case fedRolex
        /// Every client trains the full model at the smallest tier's width with plain FedAvg.
        case smallModel
        /// LoD factors at a fixed rank per tier (Pufferfish-style; Wang, Chen et al., MLSys
        /// 2021): every local step trains the client's whole budget `⌈p · r_l⌉` of every LoD
        /// layer, with no rank sampling, group lasso, shrinking or budget growth; the server
        /// averages each component over the clients that trained it.
        case fixedRank

        /// Whether the strategy ships LoD factors cut to each tier's rank budget (the others
        /// ship dense weights).
        public var usesLoDFactors: Bool { self == .orderedLoD || self == .fixedRank }

        /// Whether the strategy trains width slices of the dense model.
        public var isWidthSliced: Bool {
            switch self {
            case .heteroFL, .fjord, .fedRolex, .smallModel: true
            default: false
            }
        }
    }

    /// Client-side training of one round, and the server optimiser.
    public struct Training: Sendable, Equatable {
        /// Passes over the client's local data per round.
        public let localEpochs: Int
        /// Mini-batch size of local SGD.
        public let batchSize: Int
        /// Client SGD learning rate.
        public let learningRate: Double
        /// How each local step picks the ranks it trains, within the client's budget.
        public var sampler: RankSampler
        /// λ of the hierarchical group lasso (0: off).
        public let groupLasso: Double
        /// How the server applies the aggregated update.
        public let server: ServerOptimizer
        /// Client SGD momentum (0: plain SGD) and L2 weight decay.
        public var momentum: Double = 0
        public var weightDecay: Double = 0
        /// Probability that a local step trains the client's whole budget instead of a
        /// sampled rank (biased to the client's own budget, docs/spec.md#convergence-notes).
        public var fullBudgetProbability: Double = 0
        /// Scale component j's pseudo-gradient by the share of the round's samples whose
        /// clients hold j (docs/spec.md#convergence-notes), so rarely trained tails move less.
        public var coverageDamping: Bool = false
        /// The server optimiser moves only the components some client of the round trained:
        /// an uncovered component keeps its value and its optimiser state (no step on stale
        /// momentum, no decay of its moments), like a lazy (sparse) Adam.
        public var rankAwareServer: Bool = false
        /// Sampled local steps also learn the softmax of the client's full-budget pass.
        public var selfDistillation: Bool = false
        /// Client learning rate over rounds: constant, or cosine-annealed to 0 at the last round.
        public var learningRateSchedule: LearningRateSchedule = .constant
        /// Caps on every tier's rank fraction in the early rounds (none: each tier trains its
        /// own fraction from round 1).
        public var budgetGrowth: BudgetGrowth?
        /// Under `fjord`, FjORD's self-distillation over widths (none: off): a local step drawn
        /// below the client's own width also learns the softened outputs of the client's
        /// whole slice (docs/width-slicing.md#fjords-self-distillation).
        public var widthDistillation: WidthDistillation?

        public enum LearningRateSchedule: String, Sendable, Equatable, CaseIterable {
            case constant
            case cosine
        }
    }

    /// Growing budgets: until round `until[i]` (inclusive, and after `until[i-1]`) no tier
    /// trains more than `caps[i]` of the model's kept ranks; after the last `until` every
    /// tier trains its own fraction. A client of tier p gets `ceil(min(p, cap) · r_l)`
    /// components, so the first rounds train (and send) only the small prefixes every tier
    /// shares; when a cap rises, the newly opened components start with a zero output factor
    /// (Uᵀ rows), so the model's function does not jump. Shrinking waits for the last cap.
    public struct BudgetGrowth: Sendable, Equatable {
        /// Increasing fractions in (0, 1).
        public let caps: [Double]
        /// Increasing last rounds of each cap (1-based).
        public let until: [Int]

        public init(caps: [Double], until: [Int]) {
            self.caps = caps
            self.until = until
        }

        /// The cap on every tier's rank fraction in round `round` (1 once all have passed).
        public func cap(atRound round: Int) -> Double {
            for (cap, last) in zip(caps, until) where round <= last { return cap }
            return 1
        }

        /// The last round that trains under a cap.
        public var lastCappedRound: Int { until.last ?? 0 }
    }

    /// `training.widthDistillation`: the term `weight · temperature² · KL(teacher ‖ student)`
    /// on softmaxes at `temperature`, added to a `fjord` step's loss below the client's width.
    public struct WidthDistillation: Sendable, Equatable {
        /// α ≥ 0 (0 trains exactly as without distillation).
        public let weight: Double
        /// T > 0.
        public let temperature: Double

        public init(weight: Double, temperature: Double) {
            self.weight = weight
            self.temperature = temperature
        }

        /// `weight 0.5, temperature 2`, as `scenario show` and the report print it.
        public var summary: String {
            "weight \(format(weight)), temperature \(format(temperature))"
        }
    }

    /// Server-side progressive shrinking with a relative threshold.
    public struct Shrinking: Sendable, Equatable {
        /// ε relative to each layer's largest suffix product; 0 turns shrinking off.
        public let threshold: Double
        /// Shrink every `period` rounds.
        public let period: Int
        /// Last round at which the server shrinks (nil: until the end). A relative threshold
        /// keeps cutting a fraction of every tail, so shrinking needs an end.
        public var until: Int? = nil
        /// First round at which the server may shrink (1: from the start). With
        /// `training.budgetGrowth` it must come after the last capped round, so that newly
        /// opened components (which start at zero) are trained before they are judged.
        public var from: Int = 1

        /// Whether the server shrinks after round `round` (1-based).
        public func shrinks(atRound round: Int, lastRound: Int) -> Bool {
            isEnabled && round % period == 0 && round >= from && round <= (until ?? lastRound)
        }

        /// Whether the server shrinks at all.
        public var isEnabled: Bool { threshold > 0 }
    }

    /// Evaluation schedule, the coordinator's validation set and what each tier deploys.
    public struct Evaluation: Sendable, Equatable {
        /// What a tier's devices run after training.
        public enum Deployment: String, Sendable, Equatable, CaseIterable {
            /// The global model cut to the tier's own budget.
            case budget
            /// The best of the tier budgets that fit the tier's own (its own or a smaller
            /// tier's), judged on the coordinator's validation set at every evaluation: a
            /// device never runs a prefix that validates worse than a smaller one it can
            /// afford. Ties keep the larger budget.
            case bestValidated
        }

        /// Evaluate every `period` rounds.
        public let period: Int
        /// Training samples the coordinator holds out as its validation set (seeded, before
        /// the partition: no client holds them); 0 for none. Fashion-MNIST only.
        public var validationSamples: Int
        public var deploy: Deployment
        /// The decay of the moving average of the server's model that tiers deploy (0: none).
        ///
        /// 0: every tier evaluates and deploys the server's model as it is after the round.
        /// In (0, 1): an exponential moving average of the server's model after every round,
        /// `ā ← d·ā + (1 − d)·w` from the first round's model, damps the round-to-round
        /// swings of federated training on non-IID clients (Polyak averaging of the server
        /// iterate). Clients still train from the server's model.
        public var averageDecay: Double
        /// How much evidence a larger budget needs to replace a smaller one (`bestValidated`).
        ///
        /// 0: the higher validation accuracy wins (ties: the larger). Above 0: a tier starts
        /// from the smallest tier budget within its own and moves to each larger one only if,
        /// over the validation images exactly one of the two gets right, the larger gets
        /// `w` right and the smaller `l`, with `w − l ≥ z·√(w + l)` (a paired sign test,
        /// McNemar's): a difference of a few images out of thousands is noise, and the tier
        /// keeps the smaller, cheaper model.
        public var deploySignificance: Double

        public init(
            period: Int, validationSamples: Int = 0, deploy: Deployment = .budget,
            averageDecay: Double = 0, deploySignificance: Double = 0
        ) {
            self.period = period
            self.validationSamples = validationSamples
            self.deploy = deploy
            self.averageDecay = averageDecay
            self.deploySignificance = deploySignificance
        }
    }

    /// Transport security requirements.
    public struct Security: Sendable, Equatable {
        /// Refuse to run unless the transport uses ZeroMQ CURVE with client authentication.
        public let requireCurve: Bool
    }

    /// How a simulated fleet runs on the machine (no effect on what it computes: the final
    /// model, ledger and metrics are the same either way).
    public struct Simulation: Sendable, Equatable {
        /// One `maestro client` OS process per client, the closest simulation of a real
        /// deployment (fault-injection runs kill single clients), instead of worker processes
        /// that host many clients each.
        public let processPerClient: Bool
    }

    /// How the coordinator guards the global model against bad or hostile updates.
    public struct Robustness: Sendable, Equatable {
        /// How the updates of a round are combined, entry by entry.
        public enum Aggregation: String, Sendable, Equatable, CaseIterable {
            /// The mean weighted by sample count (FedAvg; under `orderedLoD`, per component
            /// over the clients whose budget holds it).
            case mean
            /// The unweighted coordinate-wise median (FedMedian; Yin et al., ICML 2018) over
            /// the same clients.
            case median
            /// The coordinate-wise trimmed mean (Yin et al., ICML 2018): per entry, the
            /// `⌊β·m⌋` smallest and largest of the `m` clients' values are dropped and the rest
            /// averaged, weighted by sample count.
            case trimmedMean
        }

        /// The default bound on ``maximumUpdateNormRatio``.
        public static let defaultMaximumUpdateNormRatio = 100.0

        public var aggregation: Aggregation = .mean
        /// β of `trimmedMean`, in [0, 0.5): the share trimmed from each end.
        public var trimFraction: Double = 0.1
        /// An update is rejected (`update_norm_too_large`) when, for some tensor, the norm of
        /// its difference from the global model's same slice exceeds this many times the
        /// global slice's norm (floored at 0.01 per entry, RMS, for near-zero tensors).
        public var maximumUpdateNormRatio: Double = defaultMaximumUpdateNormRatio

        public init(
            aggregation: Aggregation = .mean, trimFraction: Double = 0.1,
            maximumUpdateNormRatio: Double = defaultMaximumUpdateNormRatio
        ) {
            self.aggregation = aggregation
            self.trimFraction = trimFraction
            self.maximumUpdateNormRatio = maximumUpdateNormRatio
        }
    }

    /// Simulated attackers, a testing feature.
    ///
    /// A share of the fleet's simulated clients tamper with every UPDATE they send, so the
    /// robust aggregation rules can be measured. Real clients never read it; it changes nothing at the coordinator.
    public struct Adversaries: Sendable, Equatable {
        /// What an adversarial client does to its trained slice `x`, given the sent slice `g`.
        public enum Attack: String, Sendable, Equatable, CaseIterable {
            /// `g + c·(x − g)`: its update, scaled (model replacement, Bagdasaryan et al. 2020).
            case scale
            /// `g − c·(x − g)`: its update reversed and scaled.
            case signFlip
        }

        /// The share of the fleet that attacks, in (0, 1]: `⌈fraction·clients⌉` clients drawn
        /// with the scenario's seed.
        public let fraction: Double
        public let attack: Attack
        /// `c`, positive.
        public let factor: Double

        public init(fraction: Double, attack: Attack, factor: Double) {
            self.fraction = fraction
            self.attack = attack
            self.factor = factor
        }
    }

    /// A class of devices: its sub-model size, speed, links and availability.
    public struct Tier: Sendable, Equatable, Hashable {
        /// Unique among the scenario's tiers: letters, digits, `.`, `_`, `-`.
        public let name: String
        /// How many clients the tier holds, as written.
        public let population: Population
        /// p in (0, 1]: per low-rank layer the tier holds the first ceil(p · r_l) components.
        public let rankFraction: Double
        /// Sustained compute speed in GFLOP/s.
        public let gflops: Double
        /// Uplink bandwidth in Mbit/s (10⁶ bit/s).
        public let uplinkMbps: Double
        /// Downlink bandwidth in Mbit/s (10⁶ bit/s).
        public let downlinkMbps: Double
        /// One-way latency in milliseconds.
        public let latencyMs: Double
        /// Probability in [0, 1] that a client of this tier is online in a given round.
        public let availability: Double
        /// Whether the tier's clients run the convolutions forward only (no gradient, no
        /// upload) and train the fully connected layers alone: their training cost then
        /// follows their budget (`orderedLoD` only).
        public var freezeConvolutions: Bool = false

        /// The tier's size: a share of the fleet or an exact count.
        public enum Population: Sendable, Equatable, Hashable {
            /// A fraction of `clients`; shares of all tiers sum to 1.
            case share(Double)
            /// An exact number of clients; counts of all tiers sum to `clients`.
            case count(Int)
        }

        /// The tier's budget in a layer whose current rank is `rank`, with every tier capped
        /// at `cap`: ``RankBudget/rank(fraction:cappedAt:of:)``, the budget the run trains.
        public func keptRank(outOf rank: Int, cap: Double = 1) -> Int {
            RankBudget.rank(fraction: rankFraction, cappedAt: cap, of: rank)
        }
    }
}
