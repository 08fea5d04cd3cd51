import ArgumentParser
import Fleet
import Foundation
import LowRank
import Tensors
import Vocabulary

/// A `--model` (or `model show`) argument: a preset's name or a description file's path.
struct ModelArgument: ExpressibleByArgument, CustomStringConvertible {
    let text: String

    init(argument: String) { text = argument }
    init(_ preset: ModelPreset) { text = preset.rawValue }

    var description: String { text }

    static var allValueStrings: [String] { ModelPreset.allCases.map(\.rawValue) + ["FILE"] }

    /// The preset it names, if any.
    var preset: ModelPreset? { ModelPreset(rawValue: text) }

    /// The description: the preset's, or the file's (errors name the file and the key).
    func resolved() throws -> ModelDescription {
        if let preset { return .preset(preset) }
        guard FileManager.default.fileExists(atPath: text) else {
            throw CommandError(
                "--model \(text): neither a preset (\(ModelPreset.allCases.map(\.rawValue).joined(separator: ", "))) nor a description file"
            )
        }
        do {
            return try ModelDescription.load(path: text)
        } catch {
            throw CommandError("\(error)")
        }
    }

    /// The architecture it builds on samples of `inputShape`, in one line when it cannot.
    func architecture(
        inputShape: [Int], classCount: Int, lowRank: Bool, factoredMinimumWeights: Int = 0
    ) throws -> Architecture {
        let description = try resolved()
        if let preset, let problem = preset.problem(inputShape: inputShape, classCount: classCount)
        {
            throw CommandError("--model \(text): \(problem)")
        }
        do {
            return try Architecture(
                description: description, inputShape: inputShape, classCount: classCount,
                lowRank: lowRank, factoredMinimumWeights: factoredMinimumWeights)
        } catch {
            let shape = inputShape.map(String.init).joined(separator: "x")
            throw CommandError("--model \(text) cannot take \(shape) samples: \(error)")
        }
    }
}

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Describe models.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each layer's shape, parameters, MACs and LoD rank, and the totals per tier.",
            discussion: """
                MODEL is a preset (\(ModelPreset.allCases.map(\.rawValue).joined(separator: ", "))) \
                or a layer description file (docs/models.md). Totals are given at the rank \
                fractions of the tiers (1/8, 1/4, 1/2, 1) of the LoD model and for the dense \
                model; a LoD layer counts as dense where that is smaller.
                """)

        @Argument(help: "A preset's name or a description file.")
        var model: ModelArgument

        @Option(help: "Sample shape HxWxC (or N for flat samples).")
        var input = "28x28x1"

        @Option(help: "Number of classes.")
        var classes = 10

        @Option(
            name: .customLong("factored-minimum-weights"),
            help: "Linear maps with fewer weights stay dense in the LoD model (0: all factored).")
        var factoredMinimumWeights = 0

        func run() throws {
            let shape = input.split(separator: "x").map { Int($0) }
            guard !shape.isEmpty, shape.count <= 3, shape.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw CommandError("--input \(input): expected HxWxC (28x28x1) or N (60)")
            }
            guard classes >= 1 else { throw CommandError("--classes \(classes): must be ≥ 1") }
            let inputShape = shape.map { $0! }
            let lod = try model.architecture(
                inputShape: inputShape, classCount: classes, lowRank: true,
                factoredMinimumWeights: factoredMinimumWeights)
            let dense = try model.architecture(
                inputShape: inputShape, classCount: classes, lowRank: false)
            print(Self.table(lod: lod, dense: dense, input: input))
        }

        static func table(lod: Architecture, dense: Architecture, input: String) -> String {
            var lines = [
                "\(lod.name) on \(input) samples, \(lod.classCount) classes",
                "  #  layer                      output         parameters            MACs  LoD rank",
            ]
            let shapes = lod.activationShapes
            let maxRanks = lod.lowRankLayerIndices.map { lod.layers[$0].maxRank! }
            for (index, layer) in lod.layers.enumerated() {
                let parameters = dense.cost(ranks: [], perPosition: false, only: index)
                let macs = dense.cost(ranks: [], perPosition: true, only: index)
                let output = shapes[index + 1].map(String.init).joined(separator: "×")
                lines.append(
                    pad(String(index), 3) + "  " + pad(label(layer), -25) + pad(output, 8)
                        + pad(grouped(parameters), 17) + pad(grouped(macs), 16)
                        + pad(layer.maxRank.map(String.init) ?? "-", 10))
            }
            lines.append("totals                                   parameters            MACs")
            for (name, fraction) in [("1/8", 0.125), ("1/4", 0.25), ("1/2", 0.5), ("1", 1.0)] {
                let ranks = maxRanks.map { RankBudget.rank(fraction: fraction, of: $0) }
                lines.append(
                    "  LoD at \(pad(name, -4))" + pad(grouped(lod.parameterCount(ranks: ranks)), 39)
                        + pad(grouped(lod.macs(ranks: ranks)), 16))
            }
            lines.append(
                "  dense     " + pad(grouped(dense.parameterCount(ranks: [])), 39)
                    + pad(grouped(dense.macs(ranks: [])), 16))
            return lines.joined(separator: "\n")
        }

        /// `conv 5×5 s2 p1 1→32` and the like.
        static func label(_ layer: LayerSpec) -> String {
            switch layer {
            case .convolution(let g, let outputs), .lowRankConvolution(let g, let outputs, _):
                let stride = g.stride == 1 ? "" : " s\(g.stride)"
                return
                    "\(layer.kindName) \(g.kernelSize)×\(g.kernelSize)\(stride) p\(g.padding) \(g.channels)→\(outputs)"
            case .dense(let inputs, let outputs), .lowRankDense(let inputs, let outputs, _):
                return "\(layer.kindName) \(inputs)→\(outputs)"
            case .groupNormalization(_, let groups): return "groupnorm \(groups) groups"
            case .averagePool(_, _, _, let size): return "avgpool \(size)×\(size)"
            default: return layer.kindName
            }
        }

        /// Right-aligned in `width` columns (left-aligned for a negative width).
        static func pad(_ text: String, _ width: Int) -> String {
            let fill = String(repeating: " ", count: max(0, abs(width) - text.count))
            return width < 0 ? text + fill : fill + text
        }

        static func grouped(_ value: Int) -> String {
            let digits = String(value)
            var out = ""
            for (i, c) in digits.enumerated() {
                if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
                out.append(c)
            }
            return out
        }
    }
}
