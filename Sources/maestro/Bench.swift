import ArgumentParser
import Foundation
import LowRank
import Tensors

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure single-thread sgemm and training-step speed (a benchmark, not a test).",
        discussion: "Times are medians over repeated runs on one BLAS thread, after a warm-up.")

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(help: "Minimum seconds spent timing each case.")
    var seconds: Double = 1.0

    @Option(name: .customLong("batch-size"), help: "Mini-batch of the training-step cases.")
    var batchSize = 64

    func run() async throws {
        var results = BenchResults(kernel: BLASKernel.coreName)
        results.sgemmGflopsSingleThread = sgemmRate(m: 1024, n: 1024, k: 1024)
        let shapes: [(String, Int, Int, Int, Transposition, Transposition)] = [
            ("mlp fc1 forward x·Wᵀ", batchSize, 300, 784, .none, .transposed),
            ("mlp fc1 ∂W = ∂yᵀ·x", 300, 784, batchSize, .transposed, .none),
            ("LoD fc1 x·V (b=300)", batchSize, 300, 784, .none, .transposed),
            ("LoD fc1 x·V (b=38)", batchSize, 38, 784, .none, .transposed),
            ("LoD fc1 h·Uᵀ (b=38)", batchSize, 300, 38, .none, .none),
            ("lenet conv2 patches·Wᵀ", batchSize * 100, 16, 150, .none, .transposed),
        ]
        for (name, m, n, k, ta, tb) in shapes {
            results.sgemmShapes.append(
                .init(
                    name: name, m: m, n: n, k: k,
                    gflops: sgemmRate(m: m, n: n, k: k, transA: ta, transB: tb)))
        }
        var generator = SeededGenerator(seed: 1)
        for (model, variant, fraction) in [
            (ModelKind.mlp, "dense", 1.0), (.mlp, "lod", 1.0), (.mlp, "lod", 0.125),
            (.lenet, "dense", 1.0), (.lenet, "lod", 1.0), (.lenet, "lod", 0.125),
        ] {
            let full = Network(
                architecture: .make(model, lowRank: variant == "lod"), using: &generator)
            // A tier-p client trains the physically truncated model at its whole budget.
            let network =
                fraction < 1 ? full.exported(ranks: full.ranks(atFraction: fraction)) : full
            let timing = stepTime(network, generator: &generator)
            let flops = network.trainingStepFLOPs(batch: batchSize)
            results.trainingSteps.append(
                .init(
                    model: model.rawValue, variant: variant,
                    rankFraction: variant == "lod" ? fraction : nil,
                    batch: batchSize, seconds: timing, gflops: flops / timing / 1e9,
                    ranks: network.keptRanks,
                    parameters: network.parameterCount(ranks: network.keptRanks)))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(results.table)
        }
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
    func stepTime(_ network: Network, generator: inout SeededGenerator) -> Double {
        let inputCount = network.architecture.inputShape.reduce(1, *)
        let x = Tensor.randomNormal(shape: [batchSize * inputCount], using: &generator).scalars
        let y = (0..<batchSize).map { Int32($0 % network.architecture.classCount) }
        var configuration = TrainingConfiguration()
        configuration.sampler = .none
        var trainer = Trainer(network: network, configuration: configuration, generator: generator)
        return medianTime { trainer.step(features: x, labels: y, learningRate: 1e-4) }
    }

    /// Median of repeated timings after a warm-up, each repeat ≥ 5 ms, for ≥ `seconds` in all.
    func medianTime(_ body: () -> Void) -> Double {
        body()
        var inner = 1
        while true {
            let start = monotonicSeconds()
            for _ in 0..<inner { body() }
            if monotonicSeconds() - start >= 0.005 { break }
            inner *= 2
        }
        var samples: [Double] = []
        let deadline = monotonicSeconds() + seconds
        while samples.count < 5 || monotonicSeconds() < deadline {
            let start = monotonicSeconds()
            for _ in 0..<inner { body() }
            samples.append((monotonicSeconds() - start) / Double(inner))
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}

/// What `maestro bench --json` prints (keys in snake case).
struct BenchResults: Encodable {
    struct Shape: Encodable {
        var name: String
        var m: Int
        var n: Int
        var k: Int
        var gflops: Double
    }

    struct Step: Encodable {
        var model: String
        var variant: String
        var rankFraction: Double?
        var batch: Int
        var seconds: Double
        var gflops: Double
        var ranks: [Int]
        var parameters: Int
    }

    var kernel: String
    var sgemmGflopsSingleThread = 0.0
    var sgemmShapes: [Shape] = []
    var trainingSteps: [Step] = []

    var table: String {
        var lines = [
            "BLAS kernel: \(kernel) (one thread)",
            String(format: "sgemm 1024³: %.1f GFLOP/s", sgemmGflopsSingleThread), "",
        ]
        lines.append("sgemm shape                        m      n      k   GFLOP/s")
        for s in sgemmShapes {
            lines.append(
                s.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                    + String(format: " %6d %6d %6d   %7.1f", s.m, s.n, s.k, s.gflops))
        }
        lines.append("")
        lines.append(
            "training step (batch \(trainingSteps.first?.batch ?? 0))   fraction   ms/step   GFLOP/s   %sgemm   parameters"
        )
        for s in trainingSteps {
            let label = "\(s.model) \(s.variant)".padding(toLength: 25, withPad: " ", startingAt: 0)
            let fraction = (s.rankFraction.map { String($0) } ?? "-").padding(
                toLength: 8, withPad: " ", startingAt: 0)
            lines.append(
                label + fraction
                    + String(
                        format: "  %8.3f  %8.1f   %5.0f%%   %10d", s.seconds * 1e3, s.gflops,
                        100 * s.gflops / sgemmGflopsSingleThread, s.parameters))
        }
        return lines.joined(separator: "\n")
    }
}
