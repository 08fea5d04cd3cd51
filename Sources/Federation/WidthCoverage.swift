import LowRank

/// How much of a dense model's width a width strategy has trained so far: per channel (unit)
/// of every sliced channel space, the rounds in which the slice of at least one aggregated
/// client held it.
///
/// The coordinator records each aggregated round's slices (the keep-sets it dispatched to the
/// clients whose updates it aggregated); the run's summary reports it per layer. Under
/// HeteroFL and FjORD the channels beyond the largest tier's prefix are never trained
/// (coverage below 1); FedRolex's window reaches every channel once it has gone round.
public struct WidthCoverage: Sendable, Equatable {
    /// Per channel space, per channel: the rounds that trained it. Empty for a fixed space
    /// (the input's channels, the classes), which every slice holds whole.
    public private(set) var roundsTrained: [[Int]]

    /// No round recorded yet over `spaces`.
    public init(spaces: ChannelSpaces) {
        roundsTrained = spaces.sizes.indices.map { s in
            spaces.isFixed[s] ? [] : [Int](repeating: 0, count: spaces.sizes[s])
        }
    }

    /// Counts as a checkpoint kept them, or `nil` when they do not fit `spaces` or a count is
    /// outside `0...rounds`.
    public init?(roundsTrained: [[Int]], spaces: ChannelSpaces, rounds: Int) {
        let empty = WidthCoverage(spaces: spaces)
        guard roundsTrained.map(\.count) == empty.roundsTrained.map(\.count),
            roundsTrained.allSatisfy({ $0.allSatisfy { (0...max(rounds, 0)).contains($0) } })
        else { return nil }
        self.roundsTrained = roundsTrained
    }

    /// Records one aggregated round whose clients trained slices keeping `keptSets` (one
    /// keep-set per space for each slice, as `WidthPlan.kept`): every channel some slice held
    /// counts once, however many clients held it.
    public mutating func record(round keptSets: [[[Int]]]) {
        guard !keptSets.isEmpty else { return }
        for s in roundsTrained.indices where !roundsTrained[s].isEmpty {
            var held = [Bool](repeating: false, count: roundsTrained[s].count)
            for kept in keptSets where kept.indices.contains(s) {
                for channel in kept[s] where held.indices.contains(channel) { held[channel] = true }
            }
            for channel in held.indices where held[channel] { roundsTrained[s][channel] += 1 }
        }
    }

    /// One weight layer's coverage.
    public struct Layer: Sendable, Equatable {
        /// The layer's index in the architecture's layer list.
        public var layer: Int
        /// `convolution` or `dense`.
        public var kind: String
        /// The layer's output channels (units).
        public var channels: Int
        /// Of them, those some round trained.
        public var trained: Int
        /// Rounds each channel was trained: the fewest, the mean and the most.
        public var minimumRounds: Int
        public var meanRounds: Double
        public var maximumRounds: Int

        /// `trained / channels`.
        public var fraction: Double { channels > 0 ? Double(trained) / Double(channels) : 0 }
    }

    /// Per hidden weight layer of `spaces`' architecture (a convolution or dense layer whose
    /// output is sliced), in layer order: the coverage of its output channels. Layers that
    /// share a channel space (a residual block's) report the same counts.
    public func layers(of spaces: ChannelSpaces) -> [Layer] {
        spaces.architecture.layers.indices.compactMap { index in
            let kind: String
            switch spaces.architecture.layers[index] {
            case .convolution: kind = "convolution"
            case .dense: kind = "dense"
            default: return nil
            }
            let space = spaces.outputSpace[index]
            guard roundsTrained.indices.contains(space), !roundsTrained[space].isEmpty else {
                return nil
            }
            let counts = roundsTrained[space]
            return Layer(
                layer: index, kind: kind, channels: counts.count,
                trained: counts.filter { $0 > 0 }.count, minimumRounds: counts.min() ?? 0,
                meanRounds: Double(counts.reduce(0, +)) / Double(counts.count),
                maximumRounds: counts.max() ?? 0)
        }
    }
}
