import Federation
import Foundation
import Launch
import LowRank
import RunRecords
import Runtime
import Tensors

/// The measurements of `maestro bench`: single-thread sgemm, training steps, the codec and
/// ordered aggregation, and the CPU share of a fleet run. Times are medians over repeated
/// runs after a warm-up.
struct BenchSuite {
    /// Minimum seconds spent timing each case.
    var seconds: Double
    /// Mini-batch of the training-step cases.
    var batchSize: Int
    /// Time in this process's CPU seconds instead of wall seconds (on a shared machine, the
    /// wall clock also counts the time other jobs hold the cores).
    var cpuTime = false

    /// The training-step cases: model, variant and rank fraction.
    static let cases: [(ModelKind, String, Double)] = [
        (.mlp, "dense", 1.0), (.mlp, "lod", 1.0), (.mlp, "lod", 0.125),
        (.lenet, "dense", 1.0), (.lenet, "lod", 1.0), (.lenet, "lod", 0.125),
        (.lenet, "tier", 1.0), (.lenet, "tier", 0.125), (.lenet, "tier-frozen", 0.125),
    ]

    /// sgemm 1024³ and the shapes of the models' layers.
    func measureKernels(into results: inout BenchResults) {
        results.sgemmGflopsSingleThread = sgemmRate(m: 1024, n: 1024, k: 1024)
        let shapes: [(String, Int, Int, Int, Transposition, Transposition)] = [
            ("mlp fc1 forward x·Wᵀ", batchSize, 300, 784, .none, .transposed),
            ("mlp fc1 ∂W = ∂yᵀ·x", 300, 784, batchSize, .transposed, .none),
            ("LoD fc1 x·V (b=300)", batchSize, 300, 784, .none, .transposed),
            ("LoD fc1 x·V (b=38)", batchSize, 38, 784, .none, .transposed),
            ("LoD fc1 h·Uᵀ (b=38)", batchSize, 300, 38, .none, .none),
            ("lenet conv2 patches·Wᵀ", batchSize * 100, 16, 150, .none, .transposed),
        ]
        results.sgemmShapes = shapes.map { name, m, n, k, ta, tb in
            .init(
                name: name, m: m, n: n, k: k,
                gflops: sgemmRate(m: m, n: n, k: k, transA: ta, transB: tb))
        }
    }

    /// One SGD step of each case, with its GFLOP/s and parameters.
    func measureSteps(
        _ cases: [(ModelKind, String, Double)], into results: inout BenchResults,
        generator: inout SeededGenerator
    ) {
        for (model, variant, fraction) in cases {
            let network = Self.network(model, variant, fraction, generator: &generator)
            let frozen =
                variant == "tier-frozen" ? network.architecture.layersThroughLastConvolution : 0
            let timing = stepTime(network, frozenLayers: frozen, generator: &generator)
            let flops = network.trainingStepFLOPs(batch: batchSize, frozenLayers: frozen)
            results.trainingSteps.append(
                .init(
                    model: model.rawValue, variant: variant,
                    rankFraction: variant == "dense" ? nil : fraction,
                    batch: batchSize, seconds: timing, gflops: flops / timing / 1e9,
                    ranks: network.keptRanks,
                    parameters: network.parameterCount(ranks: network.keptRanks)))
        }
    }

    /// The network a training-step case times: a tier-p client trains the physically
    /// truncated model at its whole budget. `lod` factors every layer; `tier` is the
    /// federated scenarios' model (LeNet's three small layers dense, `factoredMinimumWeights:
    /// 10000`), and `tier-frozen` its client with the convolutions frozen.
    static func network(
        _ model: ModelKind, _ variant: String, _ fraction: Double,
        generator: inout SeededGenerator
    ) -> Network {
        let architecture: Architecture =
            variant.hasPrefix("tier")
            ? .make(model, lowRank: true, factoredMinimumWeights: 10_000)
            : .make(model, lowRank: variant == "lod")
        let full = Network(architecture: architecture, using: &generator)
        return fraction < 1 ? full.exported(ranks: full.ranks(atFraction: fraction)) : full
    }

    /// Codec and ordered-aggregation throughput on MLP-sized LoD payloads.
    func measureFederation(into results: inout BenchResults, generator: inout SeededGenerator) {
        let global = Network(architecture: .make(.mlp, lowRank: true), using: &generator)
        let slice = global.slice(budgets: global.keptRanks)
        let task = TrainingTask(
            budgets: slice.budgets.map(UInt32.init), factors: slice.factors, shared: slice.shared,
            localEpochs: 1,
            batchSize: 32, learningRate: 0.05, sampler: .perLayer, groupLasso: 0, seed: 1)
        let message = Message.train(task)
        var frame: [UInt8] = []
        let encode = medianTime { frame = WireCodec.encode(message, round: 1, sender: 0) }
        let decode = medianTime { _ = try? WireCodec.decode(frame, maximumSize: 64 << 20) }
        results.codecFrameBytes = frame.count
        results.codecEncodeGBPerSecond = Double(frame.count) / encode / 1e9
        results.codecDecodeGBPerSecond = Double(frame.count) / decode / 1e9
        // Ten clients at the default scenario's tier fractions, each a perturbed copy.
        var contributions: [ClientContribution] = []
        for client in 0..<10 {
            let fraction = [0.125, 0.125, 0.125, 0.125, 0.25, 0.25, 0.25, 0.5, 0.5, 1][client]
            let budgets = global.ranks(atFraction: fraction)
            var local = global.slice(budgets: budgets)
            for i in local.shared.indices { local.shared[i].scalars[0] += Float(client) }
            contributions.append(
                ClientContribution(clientID: client, sampleCount: 100 + client, slice: local))
        }
        let payload = contributions.reduce(0) { $0 + 4 * $1.slice.scalarCount }
        var parameters = global.parameters
        var state = ServerOptimizerState(for: parameters)
        let aggregate = medianTime {
            let delta = OrderedAggregation.pseudoGradient(
                global: global, contributions: contributions, coverageDamping: true)
            OrderedAggregation.apply(
                delta, to: &parameters, optimizer: .fedAvgM(learningRate: 1, momentum: 0.9),
                state: &state)
        }
        results.aggregationPayloadBytes = payload
        results.aggregationGBPerSecond = Double(payload) / aggregate / 1e9
    }

    /// Runs `maestro fleet SCENARIO` and splits its CPU time into client training and
    /// everything else.
    func measureFleet(scenario: String, rounds: Int?) throws -> BenchResults.FleetShare {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-bench-\(getpid())"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var arguments = ["fleet", scenario, "--out", directory, "--quiet"]
        if let rounds { arguments += ["--rounds", "\(rounds)"] }
        let before = ProcessClock.childrenCPU.seconds
        let start = ProcessClock.monotonic.seconds
        let process = Process()
        process.executableURL = URL(fileURLWithPath: SourceTree.executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandError(
                "the benchmark fleet run of \(scenario) failed (exit \(process.terminationStatus))"
            )
        }
        let wall = ProcessClock.monotonic.seconds - start
        let cpu = ProcessClock.childrenCPU.seconds - before
        let summary: RunSummary
        do {
            let data = try Data(
                contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(
                    RunRecorder.summaryFile))
            let decoder = RunJSON.decoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            summary = try decoder.decode(RunSummary.self, from: data)
        } catch {
            throw CommandError("the benchmark fleet run of \(scenario) left no summary: \(error)")
        }
        return .init(
            scenario: scenario, rounds: summary.rounds, wallSeconds: wall, cpuSeconds: cpu,
            trainingCPUSeconds: summary.clientComputeSeconds,
            trainingShare: summary.clientComputeSeconds / max(cpu, 1e-9))
    }

    /// Median-of-runs GFLOP/s of one sgemm shape on one thread.
    func sgemmRate(
        m: Int, n: Int, k: Int, transA: Transposition = .none, transB: Transposition = .none
    ) -> Double {
        var generator = SeededGenerator(seed: 2)
        let a = Tensor.randomNormal(shape: [m * k], using: &generator).scalars
        let b = Tensor.randomNormal(shape: [k * n], using: &generator).scalars
        var c = [Float](repeating: 0, count: m * n)
        let lda = transA == .none ? k : m
        let ldb = transB == .none ? n : k
        let seconds = medianTime {
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        sgemm(
                            transA, transB, m: m, n: n, k: k, ap.baseAddress!, lda: lda,
                            bp.baseAddress!, ldb: ldb,
                            cp.baseAddress!, ldc: n)
                    }
                }
            }
        }
        return 2 * Double(m * n * k) / seconds / 1e9
    }

    /// Median seconds of one SGD step (forward, backward, update) at the network's full rank.
    func stepTime(
        _ network: Network, frozenLayers: Int = 0, generator: inout SeededGenerator
    ) -> Double {
        let inputCount = network.architecture.inputShape.reduce(1, *)
        let x = Tensor.randomNormal(shape: [batchSize * inputCount], using: &generator).scalars
        let y = (0..<batchSize).map { Int32($0 % network.architecture.classCount) }
        var configuration = TrainingConfiguration()
        configuration.sampler = .unsampled
        configuration.frozenLayers = frozenLayers
        var trainer = Trainer(network: network, configuration: configuration, generator: generator)
        return medianTime { trainer.step(features: x, labels: y, learningRate: 1e-4) }
    }

    /// Median of repeated timings after a warm-up, each repeat ≥ 5 ms, for ≥ `seconds` in all
    /// (of wall time, or of CPU time with `cpuTime`).
    func medianTime(_ body: () -> Void) -> Double {
        let clock = cpuTime ? ProcessClock.processCPU : ProcessClock.monotonic
        body()
        var inner = 1
        while true {
            let start = clock.seconds
            for _ in 0..<inner { body() }
            if clock.seconds - start >= 0.005 { break }
            inner *= 2
        }
        var samples: [Double] = []
        let deadline = clock.seconds + seconds
        while samples.count < 5 || clock.seconds < deadline {
            let start = clock.seconds
            for _ in 0..<inner { body() }
            samples.append((clock.seconds - start) / Double(inner))
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}
