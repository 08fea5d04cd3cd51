import Federation
import LowRank
import Tensors
import TestSupport
import Testing
import Vocabulary

/// A `[3, 3, channels]`-or-other convolution geometry with stride 1.
private func geometry(
    _ h: Int, _ w: Int, _ c: Int, kernel: Int, padding: Int, stride: Int = 1
)
    -> ConvolutionGeometry
{
    ConvolutionGeometry(
        height: h, width: w, channels: c, kernelSize: kernel, padding: padding, stride: stride)
}

/// Weights numbered 0, 1, 2, … tensor by tensor: each entry's value names its position.
private func numbered(_ architecture: Architecture) -> [Tensor] {
    architecture.parameterShapes.map { shape in
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map(Float.init))
    }
}

@Suite("Width slicing: channel spaces, slices and averaging over holders")
struct WidthSlicingTests {
    /// 4 inputs → dense 6 → relu → dense 3 classes.
    let mlp = Architecture(
        name: "mlp", inputShape: [4], classCount: 3,
        layers: [.dense(inputs: 4, outputs: 6), .relu, .dense(inputs: 6, outputs: 3)])

    @Test("A dense model: the hidden layer's units are the one sliced space")
    func denseSlice() throws {
        let spaces = try ChannelSpaces(mlp)
        #expect(spaces.sizes == [4, 6, 3])
        #expect(spaces.isFixed == [true, false, true])
        let plan = WidthPlan.prefix(spaces, fraction: 0.5)
        #expect(plan.kept == [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2]])
        #expect(plan.subArchitecture.parameterShapes == [[3, 4], [3], [3, 3], [3]])
        // fc1 keeps its first 3 rows whole; fc2 keeps every row and its first 3 columns.
        #expect(plan.parameterIndices[0] == Array(0..<12))
        #expect(plan.parameterIndices[1] == [0, 1, 2])
        #expect(plan.parameterIndices[2] == [0, 1, 2, 6, 7, 8, 12, 13, 14])
        #expect(plan.parameterIndices[3] == [0, 1, 2])
        let sent = plan.gather(numbered(mlp))
        #expect(sent[2].scalars == [0, 1, 2, 6, 7, 8, 12, 13, 14])
        #expect(plan.scalarCount == 12 + 3 + 9 + 3)
    }

    @Test("A rolling window wraps past the last channel and keeps fixed spaces whole")
    func rollingWindow() throws {
        let spaces = try ChannelSpaces(mlp)
        #expect(spaces.rollingWindow(fraction: 0.5, offset: 0)[1] == [0, 1, 2])
        #expect(spaces.rollingWindow(fraction: 0.5, offset: 4)[1] == [0, 4, 5])
        #expect(spaces.rollingWindow(fraction: 0.5, offset: 5)[1] == [0, 1, 5])
        #expect(spaces.rollingWindow(fraction: 0.5, offset: 7)[1] == [1, 2, 3])
        #expect(spaces.rollingWindow(fraction: 0.5, offset: 5)[0] == [0, 1, 2, 3])
        #expect(spaces.rollingWindow(fraction: 0.5, offset: 5)[2] == [0, 1, 2])
        // Over c rounds every channel is in some window.
        let covered = Set((0..<6).flatMap { spaces.rollingWindow(fraction: 1 / 6, offset: $0)[1] })
        #expect(covered == Set(0..<6))
        let plan = WidthPlan(spaces: spaces, kept: spaces.rollingWindow(fraction: 0.5, offset: 5))
        // Rows 0, 1, 5 of fc1; columns 0, 1, 5 of each row of fc2.
        #expect(plan.parameterIndices[0] == Array(0..<8) + Array(20..<24))
        #expect(plan.parameterIndices[2] == [0, 1, 5, 6, 7, 11, 12, 13, 17])
    }

    /// [4, 4, 1] → conv 3×3 → 4 channels → relu → maxpool → flatten (2·2·4) → dense 2.
    let convolutional = Architecture(
        name: "conv", inputShape: [4, 4, 1], classCount: 2,
        layers: [
            .convolution(geometry: geometry(4, 4, 1, kernel: 3, padding: 1), outputs: 4), .relu,
            .maxPool(height: 4, width: 4, channels: 4), .flatten, .dense(inputs: 16, outputs: 2),
        ])

    @Test("Convolution and flatten: a dense layer keeps, position by position, the kept channels")
    func convolutionAndFlatten() throws {
        let spaces = try ChannelSpaces(convolutional)
        #expect(spaces.sizes == [1, 4, 2])
        let plan = WidthPlan(spaces: spaces, kept: [[0], [1, 3], [0, 1]])
        #expect(
            plan.subArchitecture.layers == [
                .convolution(geometry: geometry(4, 4, 1, kernel: 3, padding: 1), outputs: 2),
                .relu, .maxPool(height: 4, width: 4, channels: 2), .flatten,
                .dense(inputs: 8, outputs: 2),
            ])
        #expect(plan.parameterIndices[0] == Array(9..<18) + Array(27..<36))
        #expect(plan.parameterIndices[1] == [1, 3])
        #expect(
            plan.parameterIndices[2] == [1, 3, 5, 7, 9, 11, 13, 15].flatMap { [$0] }
                + [1, 3, 5, 7, 9, 11, 13, 15].map { 16 + $0 })
    }

    @Test("The sub-model computes what the full model computes with the dropped channels off")
    func subModelMatchesMaskedModel() throws {
        var generator = SeededGenerator(seed: 7)
        let full = Network(architecture: convolutional, using: &generator)
        let spaces = try ChannelSpaces(convolutional)
        let plan = WidthPlan(spaces: spaces, kept: spaces.rollingWindow(fraction: 0.5, offset: 3))
        #expect(plan.kept[1] == [0, 3])
        // Zero the kernels and biases of channels 1 and 2: after the ReLU they are 0, so the
        // dense layer's weights on them do not matter.
        var masked = full
        for channel in [1, 2] {
            for j in 0..<9 { masked.parameters[0].scalars[channel * 9 + j] = 0 }
            masked.parameters[1].scalars[channel] = 0
        }
        let sub = plan.gather(full)
        let input = (0..<32).map { Float(($0 * 37) % 11) / 11 - 0.4 }
        let expected = masked.forward(input, batch: 2).logits
        let got = sub.forward(input, batch: 2).logits
        #expect(
            isClose(
                Tensor(shape: [4], scalars: got), Tensor(shape: [4], scalars: expected),
                tolerance: 1e-5))
    }

    /// A stem, a block with an identity shortcut, a block with a projection, pooled, fc.
    let residual: Architecture = {
        let norm = { (c: Int) in LayerSpec.groupNormalization(channels: c, groups: c / 2) }
        return Architecture(
            name: "res", inputShape: [4, 4, 1], classCount: 3,
            layers: [
                .convolution(geometry: geometry(4, 4, 1, kernel: 3, padding: 1), outputs: 4),
                norm(4), .relu,
                .residualStart,
                .convolution(geometry: geometry(4, 4, 4, kernel: 3, padding: 1), outputs: 6),
                norm(6), .relu,
                .convolution(geometry: geometry(4, 4, 6, kernel: 3, padding: 1), outputs: 4),
                norm(4),
                .residualShortcut, .residualEnd, .relu,
                .residualStart,
                .convolution(
                    geometry: geometry(4, 4, 4, kernel: 3, padding: 1, stride: 2), outputs: 8),
                norm(8),
                .residualShortcut,
                .convolution(
                    geometry: geometry(4, 4, 4, kernel: 1, padding: 0, stride: 2), outputs: 8),
                norm(8),
                .residualEnd, .relu,
                .globalAveragePool(height: 2, width: 2, channels: 8),
                .dense(inputs: 8, outputs: 3),
            ])
    }()

    @Test("Residual blocks: an identity shortcut ties its block's input and output spaces")
    func residualSpaces() throws {
        let spaces = try ChannelSpaces(residual)
        // input, stem = first block's output (identity), first block's inner, second block's
        // body = projection, classes.
        #expect(spaces.sizes == [1, 4, 6, 8, 3])
        #expect(spaces.isFixed == [true, false, false, false, true])
        let plan = WidthPlan.prefix(spaces, fraction: 0.5)
        #expect(plan.subArchitecture.inconsistency == nil)
        let convolutions = plan.subArchitecture.layers.compactMap { layer -> Int? in
            if case .convolution(_, let outputs) = layer { outputs } else { nil }
        }
        #expect(convolutions == [2, 3, 2, 4, 4])
        // Group size 2 kept: 2 channels → 1 group, 3 → 1, 4 → 2.
        let groups = plan.subArchitecture.layers.compactMap { layer -> Int? in
            if case .groupNormalization(_, let groups) = layer { groups } else { nil }
        }
        #expect(groups == [1, 1, 1, 2, 2])
        // The projection's kernel [8, 1·1·4] keeps rows 0…3 and columns 0, 1.
        let projection = residual.parameterOffsets[residual.layers.count - 6]
        #expect(plan.parameterIndices[projection] == [0, 1, 4, 5, 8, 9, 12, 13])
        // The fc layer's 8 inputs are the pooled channels: the first 4 of them.
        let weights = plan.gather(numbered(residual))
        #expect(weights.last!.shape == [3])
        #expect(weights[weights.count - 2].scalars == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19])
    }

    @Test("Group normalisation keeps its group size: ⌊kept / g⌋ groups, lowered to divide")
    func groupRule() {
        #expect(ChannelSpaces.groups(channels: 16, groups: 4, kept: 16) == 4)
        #expect(ChannelSpaces.groups(channels: 16, groups: 4, kept: 8) == 2)
        #expect(ChannelSpaces.groups(channels: 16, groups: 4, kept: 2) == 1)
        #expect(ChannelSpaces.groups(channels: 16, groups: 4, kept: 6) == 1)
        #expect(ChannelSpaces.groups(channels: 64, groups: 16, kept: 12) == 3)
        #expect(ChannelSpaces.groups(channels: 64, groups: 16, kept: 10) == 2)
    }

    @Test("A slice of a slice normalises in the full layer's groups, as the server's slice does")
    func groupsFromTheFullModel() throws {
        let full = Architecture(
            name: "gn", inputShape: [4, 4, 1], classCount: 2,
            layers: [
                .convolution(geometry: geometry(4, 4, 1, kernel: 3, padding: 1), outputs: 8),
                .groupNormalization(channels: 8, groups: 4), .relu,
                .globalAveragePool(height: 4, width: 4, channels: 8), .dense(inputs: 8, outputs: 2),
            ])
        let fullSpaces = try ChannelSpaces(full)
        // A client of 5 channels normalises them as one group (5 is odd)…
        let client = fullSpaces.subArchitecture(widths: [1, 5, 2])
        #expect(client.layers[1] == .groupNormalization(channels: 5, groups: 1))
        // …but its 4-channel prefix takes the full layer's group size 2, as the server's does.
        let clientSpaces = try ChannelSpaces(client)
        let kept = [[0], [0, 1, 2, 3], [0, 1]]
        let prefix = WidthPlan(spaces: clientSpaces, kept: kept, groupsFrom: fullSpaces)
        #expect(prefix.subArchitecture == WidthPlan(spaces: fullSpaces, kept: kept).subArchitecture)
        #expect(prefix.subArchitecture.layers[1] == .groupNormalization(channels: 4, groups: 2))
        #expect(
            WidthPlan(spaces: clientSpaces, kept: kept).subArchitecture.layers[1]
                == .groupNormalization(channels: 4, groups: 1))
    }

    @Test("A client finds its slice's widths from the shapes it receives, or says why not")
    func widthsFromShapes() throws {
        let spaces = try ChannelSpaces(residual)
        let plan = WidthPlan.prefix(spaces, fraction: 0.25)
        let widths = try spaces.widths(parameterShapes: plan.subArchitecture.parameterShapes).get()
        #expect(widths == plan.kept.map(\.count))
        var shapes = plan.subArchitecture.parameterShapes
        shapes[0] = [5, 9]
        #expect(throws: WidthShapeError.self) { try spaces.widths(parameterShapes: shapes).get() }
        var classes = try ChannelSpaces(mlp).subArchitecture(widths: [4, 3, 3]).parameterShapes
        classes[2] = [2, 3]
        #expect(throws: WidthShapeError.self) {
            try ChannelSpaces(mlp).widths(parameterShapes: classes).get()
        }
        #expect(throws: ChannelSpaces.Problem.self) {
            try ChannelSpaces(Architecture.make(.mlp, lowRank: true))
        }
    }

    @Test("The server averages each weight over the clients that hold it; unheld ones stay")
    func averageOverHolders() throws {
        let spaces = try ChannelSpaces(mlp)
        let global = numbered(mlp)
        let half = WidthPlan.prefix(spaces, fraction: 0.5)
        let whole = WidthPlan.prefix(spaces, fraction: 1)
        var aggregation = WidthAggregation(parameterShapes: mlp.parameterShapes)
        // A half-width client (weight 1) sends all 1s, a full one (weight 3) all 5s.
        aggregation.add(
            half.subArchitecture.parameterShapes.map { Tensor(repeating: 1, shape: $0) },
            plan: half, weight: 1)
        aggregation.add(
            whole.subArchitecture.parameterShapes.map { Tensor(repeating: 5, shape: $0) },
            plan: whole, weight: 3)
        let delta = aggregation.pseudoGradient(global: global)
        let aggregate = zip(global, delta).map { g, d in
            zip(g.scalars, d.scalars).map { $0 - $1 }
        }
        // fc1: rows 0…2 held by both, (1 + 15) / 4 = 4; rows 3…5 by the full client only.
        #expect(aggregate[0] == [Float](repeating: 4, count: 12) + [Float](repeating: 5, count: 12))
        #expect(aggregate[1] == [4, 4, 4, 5, 5, 5])
        // fc2: columns 0…2 held by both.
        #expect(aggregate[2] == (0..<18).map { $0 % 6 < 3 ? 4 : 5 })
        #expect(aggregate[3] == [4, 4, 4])
        // Two half-width clients only: the other half keeps its value (zero pseudo-gradient).
        var halves = WidthAggregation(parameterShapes: mlp.parameterShapes)
        for _ in 0..<2 {
            halves.add(
                half.subArchitecture.parameterShapes.map { Tensor(repeating: 1, shape: $0) },
                plan: half, weight: 1)
        }
        let untouched = halves.pseudoGradient(global: global)
        #expect(untouched[0].scalars[12...].allSatisfy { $0 == 0 })
        #expect(untouched[0].scalars[..<12].elementsEqual((0..<12).map { Float($0) - 1 }))
        #expect(halves.coveredCounts == [12, 3, 9, 3])
    }

    @Test("Gather then scatter is the identity; scatter leaves unheld weights alone")
    func gatherScatter() throws {
        let spaces = try ChannelSpaces(residual)
        let plan = WidthPlan(spaces: spaces, kept: spaces.rollingWindow(fraction: 0.5, offset: 3))
        var parameters = numbered(residual)
        let original = parameters
        let sub = plan.gather(parameters)
        plan.scatter(sub.map { Tensor(repeating: -1, shape: $0.shape) }, into: &parameters)
        for (t, indices) in plan.parameterIndices.enumerated() {
            let held = Set(indices)
            for j in 0..<parameters[t].count {
                #expect(
                    parameters[t].scalars[j] == (held.contains(j) ? -1 : original[t].scalars[j]))
            }
        }
        plan.scatter(sub, into: &parameters)
        #expect(parameters == original)
    }

    @Test(
        "Every preset slices at every shipped fraction into a consistent sub-model",
        arguments: ModelPreset.allCases)
    func presets(preset: ModelPreset) throws {
        let shape =
            switch preset {
            case .logistic: [60]
            case .mlp, .lenet, .cnn: [28, 28, 1]
            case .resnet8, .resnet20, .resnet18, .vgg11, .vgg19: [32, 32, 3]
            }
        let architecture = Architecture.make(preset, lowRank: false, inputShape: shape)
        let spaces = try ChannelSpaces(architecture)
        for fraction in [0.125, 0.25, 0.5, 1] {
            let widths = spaces.prefix(fraction: fraction).map(\.count)
            let sub = spaces.subArchitecture(widths: widths)
            #expect(sub.inconsistency == nil, "\(preset) at \(fraction)")
            #expect(try spaces.widths(parameterShapes: sub.parameterShapes).get() == widths)
            if fraction == 1 { #expect(sub == architecture) }
        }
    }
}
