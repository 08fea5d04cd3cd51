import Vocabulary

/// The rank sampler as TRAIN carries it: a one-byte kind (`train.sampler`, WIRE.md) and
/// 32-bit fractions of the client's budget (`train.samplerFractions`).
extension RankSampler.Kind {
    /// The kind's code in TRAIN's sampler byte.
    public var wireCode: UInt8 {
        switch self {
        case .perLayer: 0
        case .acrossLayers: 1
        case .sharedFraction: 2
        case .fixed: 3
        case .unsampled: 4
        }
    }

    /// The kind a sampler byte names, or `nil` for a code no kind has.
    public init?(wireCode: UInt8) {
        guard let kind = Self.allCases.first(where: { $0.wireCode == wireCode }) else {
            return nil
        }
        self = kind
    }
}

extension RankSampler {
    /// The sampler field and fractions of a TRAIN message to a client whose tier has rank
    /// fraction `tierFraction`: the fractions of ``ofBudget(tierFraction:)``, in 32 bits;
    /// none for a sampler that has none.
    public func onWire(tierFraction: Double) -> (kind: Kind, fractions: [Float]) {
        switch ofBudget(tierFraction: tierFraction) {
        case .perLayer, .acrossLayers, .unsampled: (kind, [])
        case .sharedFraction(let fractions, _): (.sharedFraction, fractions.map(Float.init))
        case .fixed(let fraction): (.fixed, [Float(fraction)])
        }
    }
}

extension TrainingTask {
    /// TRAIN's sampler byte for FjORD's ordered dropout over width (`widthDropout`): no rank
    /// sampler kind has it, so a dense model trained with a `sharedFraction` rank sampler
    /// (an `orderedLoD` scenario whose layers all stay dense) is never mistaken for it.
    public static let widthDropoutCode: UInt8 = 5

    /// The sampler the client trains with: TRAIN's kind with its fractions.
    ///
    /// The fractions are of the client's budget. `sharedFraction` with none draws from
    /// ``RankSampler/defaultFractions``; `fixed` with none trains the whole budget.
    public var rankSampler: RankSampler {
        switch sampler {
        case .perLayer: .perLayer
        case .acrossLayers: .acrossLayers
        case .sharedFraction:
            .sharedFraction(
                fractions: samplerFractions.isEmpty
                    ? RankSampler.defaultFractions : samplerFractions.map(Double.init))
        case .fixed: .fixed(fraction: Double(samplerFractions.first ?? 1))
        case .unsampled: .unsampled
        }
    }
}
