/// A model as its user writes it: a preset's name, or a list of layers.
///
/// Shapes are not written: each layer takes the shape the one before it gives, starting
/// from the data set's sample shape, and `dense` layers without outputs end in the data
/// set's classes. Which linear maps are LoD-factored follows the size rule of the run (a
/// linear map with at least `factoredMinimumWeights` weights is factored) unless the layer
/// says `factored` itself.
public enum ModelDescription: Sendable, Equatable, Codable {
    case preset(ModelPreset)
    case layers([LayerDescription])

    /// The layer list: a preset's (with its default normalisation) or the one written.
    public var layers: [LayerDescription] {
        switch self {
        case .preset(let preset): preset.layers()
        case .layers(let layers): layers
        }
    }

    /// The preset's name, or `custom`.
    public var name: String {
        switch self {
        case .preset(let preset): preset.rawValue
        case .layers: "custom"
        }
    }
}

/// One layer of a model description.
public indirect enum LayerDescription: Sendable, Equatable, Codable {
    /// A square `kernel × kernel` convolution to `channels` channels.
    case convolution(channels: Int, kernel: Int, stride: Int, padding: Int, factored: Bool?)
    /// A fully connected layer; `outputs == nil`: the data set's classes.
    case dense(outputs: Int?, factored: Bool?)
    case batchNormalization
    case groupNormalization(groups: Int)
    case relu
    /// 2×2 max pooling, stride 2.
    case maxPool
    /// `size × size` average pooling, stride `size`.
    case averagePool(size: Int)
    case globalAveragePool
    case flatten
    /// `body(x) + shortcut(x)`; an empty shortcut is the identity.
    case residual(body: [LayerDescription], shortcut: [LayerDescription])

    /// The name a description file spells the layer with.
    public var keyword: String {
        switch self {
        case .convolution: "conv"
        case .dense: "dense"
        case .batchNormalization: "batchnorm"
        case .groupNormalization: "groupnorm"
        case .relu: "relu"
        case .maxPool: "maxpool"
        case .averagePool: "avgpool"
        case .globalAveragePool: "global_avgpool"
        case .flatten: "flatten"
        case .residual: "residual"
        }
    }
}

/// The normalisation layers a preset puts after its convolutions.
public enum Normalization: String, Sendable, Equatable, Codable, CaseIterable {
    /// Batch normalisation: batch statistics in training, running statistics in evaluation.
    case batch
    /// Group normalisation, `groupNormalizationGroups(channels:)` groups: per sample, no state.
    case group
    /// None.
    case none

    /// The presets' default: group normalisation. It normalises each sample on its own, so
    /// it keeps no running statistics: a model behaves the same at every rank budget and in
    /// every tier, and a federation has nothing beyond the trained parameters to carry.
    public static let presetDefault = Normalization.group

    /// Groups of group normalisation over `channels` channels: 4 channels a group, at most
    /// 32 groups (Wu and He's default count), at least 1.
    public static func groupNormalizationGroups(channels: Int) -> Int {
        var groups = max(1, min(32, channels / 4))
        while channels % groups != 0 { groups -= 1 }
        return groups
    }
}

/// The models Maestro ships, each a layer description.
public enum ModelPreset: String, Sendable, Equatable, Codable, CaseIterable {
    /// Multi-layer perceptron: 300, 100, classes.
    case mlp
    /// LeNet-5: conv 5×5→6 (pad 2), pool, conv 5×5→16, pool, fc 120, fc 84, fc classes.
    case lenet
    /// Multinomial logistic regression (a single linear layer), for FedProx Synthetic.
    case logistic
    /// The FedAvg / LEAF CNN: conv 5×5→32 (pad 2), pool, conv 5×5→64 (pad 2), pool, fc 512,
    /// fc classes (McMahan et al. 2017; Caldas et al. 2018).
    case cnn
    /// CIFAR-style ResNets (He et al. 2016, §4.2): a 3×3 stem to 16 channels, three stages of
    /// basic blocks at 16, 32, 64 channels (1 resp. 3 blocks each), global pooling, fc.
    case resnet8
    case resnet20
    /// ResNet-18 as trained on CIFAR-10 in the paper's reference code: 3×3 stem to 64,
    /// stages of 2 basic blocks at 64, 128, 256, 512 channels, global pooling, fc.
    case resnet18
    /// CIFAR-style VGG (conv 3×3 pad 1 + normalisation + ReLU, five max poolings, fc).
    case vgg11
    case vgg19

    /// The preset's layers, with `normalization` after each convolution of the ResNets and
    /// VGGs (LeNet, the MLP, logistic regression and the CNN have none).
    public func layers(normalization: Normalization = .presetDefault) -> [LayerDescription] {
        func conv(_ c: Int, _ k: Int, stride: Int = 1, padding: Int) -> LayerDescription {
            .convolution(channels: c, kernel: k, stride: stride, padding: padding, factored: nil)
        }
        func dense(_ outputs: Int?) -> LayerDescription { .dense(outputs: outputs, factored: nil) }
        func norm(_ channels: Int) -> [LayerDescription] {
            switch normalization {
            case .batch: [.batchNormalization]
            case .group:
                [
                    .groupNormalization(
                        groups: Normalization.groupNormalizationGroups(channels: channels))
                ]
            case .none: []
            }
        }
        /// A basic block: two 3×3 convolutions; a projection (1×1, stride) where the shape changes.
        func block(_ inputs: Int, _ outputs: Int, stride: Int) -> LayerDescription {
            let body =
                [conv(outputs, 3, stride: stride, padding: 1)] + norm(outputs) + [.relu]
                + [conv(outputs, 3, padding: 1)] + norm(outputs)
            let shortcut =
                stride == 1 && inputs == outputs
                ? [] : [conv(outputs, 1, stride: stride, padding: 0)] + norm(outputs)
            return .residual(body: body, shortcut: shortcut)
        }
        func resnet(stem: Int, widths: [Int], blocks: Int) -> [LayerDescription] {
            var layers = [conv(stem, 3, padding: 1)] + norm(stem) + [.relu]
            var channels = stem
            for (stage, width) in widths.enumerated() {
                for b in 0..<blocks {
                    layers += [block(channels, width, stride: stage > 0 && b == 0 ? 2 : 1), .relu]
                    channels = width
                }
            }
            return layers + [.globalAveragePool, dense(nil)]
        }
        func vgg(_ configuration: [Int?]) -> [LayerDescription] {
            var layers: [LayerDescription] = []
            for entry in configuration {
                if let channels = entry {
                    layers += [conv(channels, 3, padding: 1)] + norm(channels) + [.relu]
                } else {
                    layers.append(.maxPool)
                }
            }
            return layers + [.flatten, dense(nil)]
        }
        switch self {
        case .mlp:
            return [.flatten, dense(300), .relu, dense(100), .relu, dense(nil)]
        case .logistic:
            return [.flatten, dense(nil)]
        case .lenet:
            return [
                conv(6, 5, padding: 2), .relu, .maxPool, conv(16, 5, padding: 0), .relu, .maxPool,
                .flatten, dense(120), .relu, dense(84), .relu, dense(nil),
            ]
        case .cnn:
            return [
                conv(32, 5, padding: 2), .relu, .maxPool, conv(64, 5, padding: 2), .relu,
                .maxPool, .flatten, dense(512), .relu, dense(nil),
            ]
        case .resnet8: return resnet(stem: 16, widths: [16, 32, 64], blocks: 1)
        case .resnet20: return resnet(stem: 16, widths: [16, 32, 64], blocks: 3)
        case .resnet18: return resnet(stem: 64, widths: [64, 128, 256, 512], blocks: 2)
        case .vgg11:
            return vgg([64, nil, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil])
        case .vgg19:
            return vgg([
                64, 64, nil, 128, 128, nil, 256, 256, 256, 256, nil, 512, 512, 512, 512, nil,
                512, 512, 512, 512, nil,
            ])
        }
    }
}

extension ModelDescription {
    /// Why the layers cannot take images of `height × width` (their spatial extent runs out
    /// before a convolution or a pooling), or `nil` when every layer fits. Only the spatial
    /// extent is followed: what a scenario validator can check without building the model.
    public func spatialProblem(height: Int, width: Int) -> String? {
        Self.spatialProblem(layers, height: height, width: width, path: "layers").problem
    }

    private static func spatialProblem(
        _ layers: [LayerDescription], height: Int, width: Int, path: String
    ) -> (problem: String?, height: Int, width: Int) {
        var (h, w) = (height, width)
        var flat = false
        for (index, layer) in layers.enumerated() {
            let here = "\(path)[\(index)] (\(layer.keyword))"
            switch layer {
            case .convolution(_, let k, let s, let p, _):
                let (oh, ow) = ((h + 2 * p - k) / max(s, 1) + 1, (w + 2 * p - k) / max(s, 1) + 1)
                if flat || h + 2 * p < k || w + 2 * p < k {
                    return ("\(here): a \(k)×\(k) kernel does not fit \(h)×\(w)", h, w)
                }
                (h, w) = (oh, ow)
            case .maxPool:
                if flat || h < 2 || w < 2 { return ("\(here): cannot pool \(h)×\(w) 2×2", h, w) }
                (h, w) = (h / 2, w / 2)
            case .averagePool(let size):
                if flat || h < size || w < size {
                    return ("\(here): cannot pool \(h)×\(w) \(size)×\(size)", h, w)
                }
                (h, w) = (h / max(size, 1), w / max(size, 1))
            case .globalAveragePool, .flatten, .dense:
                flat = true
            case .residual(let body, _):
                let inner = spatialProblem(body, height: h, width: w, path: "\(here).body")
                if let problem = inner.problem { return (problem, h, w) }
                (h, w) = (inner.height, inner.width)
            case .batchNormalization, .groupNormalization, .relu:
                break
            }
        }
        return (nil, h, w)
    }
}
