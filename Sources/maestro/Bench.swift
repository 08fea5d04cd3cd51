import ArgumentParser
import Federation
import Foundation
import LowRank
import RunRecords
import Runtime
import Tensors
import Transport

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure single-thread sgemm and training-step speed (a benchmark, not a test).",
        discussion: "Times are medians over repeated runs on one BLAS thread, after a warm-up.")

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(help: "Minimum seconds spent timing each case.")
    var seconds: Double = 1.0

    @Option(name: .customLong("batch-size"), help: "Mini-batch of the training-step cases.")
    var batchSize = 64

    @Option(
        help:
            "Only these training-step cases, e.g. mlp/lod/0.125,lenet/dense,lenet/tier-frozen (variants: dense, lod, tier, tier-frozen; default: all)."
    )
    var cases: String?

    @Option(
        help: "Scenario whose fleet run measures the CPU share of client training ('none' to skip)."
    )
    var fleet = "Scenarios/smoke.yaml"

    @Option(
        name: .customLong("fleet-rounds"),
        help: "Rounds of that fleet run (default: the scenario's).")
    var fleetRounds: Int?

    @Flag(
        help:
            "Measure this device and print its tier line (GFLOP/s at the model's shapes, memory, and with --coordinator the link: latency, uplink, downlink), to paste into a scenario."
    )
    var profile = false

    @Option(help: "With --profile: the model whose training steps are timed (mlp, lenet).")
    var model: String = "lenet"

    @Option(help: "With --profile: the tier name to print.")
    var name = "device"

    @Option(
        help:
            "With --profile: a running coordinator's address (tcp://IP:PORT) to measure the link to (round trip, uplink and downlink)."
    )
    var coordinator: String?

    @Option(
        name: .customLong("coordinator-wait"),
        help: "With --coordinator: seconds to wait for the coordinator's first answer.")
    var coordinatorWait: Double = 30

    @Option(
        name: .customLong("server-key"),
        help: "With --coordinator: the coordinator's CURVE public key file (turns CURVE on).")
    var serverKey: String?

    @Option(
        name: .customLong("client-key"),
        help: "With --server-key: this device's CURVE secret key file (an enrolled key).")
    var clientKey: String?

    @Flag(
        help:
            "Time each layer's forward and backward pass of the selected training-step cases (a profile) and print only that."
    )
    var layers = false

    func run() throws {
        if (serverKey == nil) != (clientKey == nil) {
            throw ValidationError("--server-key and --client-key go together")
        }
        guard coordinatorWait > 0, coordinatorWait.isFinite else {
            throw ValidationError("--coordinator-wait must be a positive number of seconds")
        }
        if coordinator != nil && !profile {
            throw ValidationError("--coordinator measures a link for --profile; add --profile")
        }
        if profile {
            try printProfile()
            return
        }
        if layers {
            printLayerProfile()
            return
        }
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
        for (model, variant, fraction) in selectedCases {
            let network = benchNetwork(model, variant, fraction, generator: &generator)
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
        measureFederation(into: &results, generator: &generator)
        if fleet != "none" { results.fleet = try measureFleet() }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(results.table)
        }
    }

    /// The training-step cases: model, variant and rank fraction, as `--cases` selects them.
    var selectedCases: [(ModelKind, String, Double)] {
        [
            (ModelKind.mlp, "dense", 1.0), (.mlp, "lod", 1.0), (.mlp, "lod", 0.125),
            (.lenet, "dense", 1.0), (.lenet, "lod", 1.0), (.lenet, "lod", 0.125),
            (.lenet, "tier", 1.0), (.lenet, "tier", 0.125), (.lenet, "tier-frozen", 0.125),
        ].filter { isSelected(model: $0.0, variant: $0.1, fraction: $0.2) }
    }

    /// The network a training-step case times: a tier-p client trains the physically
    /// truncated model at its whole budget. `lod` factors every layer; `tier` is the
    /// federated scenarios' model (LeNet's three small layers dense, `factoredMinimumWeights:
    /// 10000`), and `tier-frozen` its client with the convolutions frozen.
    func benchNetwork(
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

    /// `--layers`: per layer, forward and backward milliseconds of each selected case.
    func printLayerProfile() {
        var generator = SeededGenerator(seed: 1)
        for (model, variant, fraction) in selectedCases {
            let network = benchNetwork(model, variant, fraction, generator: &generator)
            let inputCount = network.architecture.inputShape.reduce(1, *)
            let x = Tensor.randomNormal(shape: [batchSize * inputCount], using: &generator).scalars
            let times = network.layerTimes(x, batch: batchSize) { medianTime($0) }
            let label = variant == "dense" ? variant : "\(variant) at \(fraction)"
            print("\(model.rawValue) \(label), batch \(batchSize), ranks \(network.keptRanks)")
            print("  layer  kind           forward ms  backward ms")
            for time in times {
                let layers =
                    time.layers.count == 1
                    ? "\(time.layers.lowerBound)"
                    : "\(time.layers.lowerBound)-\(time.layers.upperBound - 1)"
                print(
                    "  " + layers.padding(toLength: 5, withPad: " ", startingAt: 0)
                        + time.name.padding(toLength: 13, withPad: " ", startingAt: 0)
                        + String(format: "%12.3f %12.3f", time.forward * 1e3, time.backward * 1e3))
            }
            let forward = times.reduce(0) { $0 + $1.forward }
            let backward = times.reduce(0) { $0 + $1.backward }
            print(
                "  total" + "".padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(format: "%12.3f %12.3f", forward * 1e3, backward * 1e3))
        }
    }

    /// Whether `--cases` includes this training-step case.
    func isSelected(model: ModelKind, variant: String, fraction: Double) -> Bool {
        guard let cases else { return true }
        return cases.split(separator: ",").contains { item in
            let parts = item.split(separator: "/").map(String.init)
            return parts[0] == model.rawValue && (parts.count < 2 || parts[1] == variant)
                && (parts.count < 3 || Double(parts[2]) == fraction)
        }
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

    /// Runs a fleet and splits its CPU time into client training and everything else.
    func measureFleet() throws -> BenchResults.FleetShare {
        guard FileManager.default.fileExists(atPath: fleet) else {
            throw CommandError(
                "\(fleet): no such scenario file (give --fleet FILE or --fleet none)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-bench-\(getpid())"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var arguments = ["fleet", fleet, "--out", directory, "--quiet"]
        if let fleetRounds { arguments += ["--rounds", "\(fleetRounds)"] }
        let before = childrenCPUSeconds()
        let start = monotonicSeconds()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandError(
                "the benchmark fleet run of \(fleet) failed (exit \(process.terminationStatus))")
        }
        let wall = monotonicSeconds() - start
        let cpu = childrenCPUSeconds() - before
        let data = try Data(
            contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(
                RunRecorder.summaryFile))
        let decoder = RunJSON.decoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let summary = try decoder.decode(RunSummary.self, from: data)
        return .init(
            scenario: fleet, rounds: summary.rounds, wallSeconds: wall, cpuSeconds: cpu,
            trainingCPUSeconds: summary.clientComputeSeconds,
            trainingShare: summary.clientComputeSeconds / max(cpu, 1e-9))
    }

    /// User + system CPU seconds of this process's waited-for descendants.
    func childrenCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
            + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) * 1e-6
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

    struct FleetShare: Encodable {
        var scenario: String
        var rounds: Int
        var wallSeconds: Double
        var cpuSeconds: Double
        var trainingCPUSeconds: Double
        var trainingShare: Double
    }

    var kernel: String
    /// Which version of the convolution kernels (`CKernels`) runs here.
    var convolutionKernels = streamingKernelsVectorized ? "avx2+fma" : "portable"
    var sgemmGflopsSingleThread = 0.0
    var codecFrameBytes = 0
    var codecEncodeGBPerSecond = 0.0
    var codecDecodeGBPerSecond = 0.0
    var aggregationPayloadBytes = 0
    var aggregationGBPerSecond = 0.0
    var fleet: FleetShare?
    var sgemmShapes: [Shape] = []
    var trainingSteps: [Step] = []

    var table: String {
        var lines = [
            "BLAS kernel: \(kernel) (one thread); convolution kernels: \(convolutionKernels)",
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
        lines.append("")
        lines.append(
            String(
                format: "wire codec (%.2f MB TRAIN frame): encode %.2f GB/s, decode %.2f GB/s",
                Double(codecFrameBytes) / 1e6, codecEncodeGBPerSecond, codecDecodeGBPerSecond))
        lines.append(
            String(
                format: "ordered aggregation (10 clients, %.2f MB of updates): %.2f GB/s",
                Double(aggregationPayloadBytes) / 1e6, aggregationGBPerSecond))
        if let fleet {
            lines.append(
                String(
                    format:
                        "fleet %@ (%d rounds): %.1f s wall, %.1f CPU s, of which client training %.1f s = %.0f%%",
                    fleet.scenario, fleet.rounds, fleet.wallSeconds, fleet.cpuSeconds,
                    fleet.trainingCPUSeconds, 100 * fleet.trainingShare))
        }
        return lines.joined(separator: "\n")
    }
}

extension Bench {
    /// Times dense training steps of `--model` (one BLAS thread, the bench's batch), reads
    /// the memory, optionally measures TCP connect round trips to the coordinator, and prints
    /// a tier line with what was measured.
    func printProfile() throws {
        guard let kind = ModelKind(rawValue: model), kind != .logistic else {
            throw ValidationError("--model must be mlp or lenet (got '\(model)')")
        }
        var generator = SeededGenerator(seed: 1)
        let network = Network(architecture: .make(kind, lowRank: false), using: &generator)
        let seconds = stepTime(network, generator: &generator)
        let gflops = network.trainingStepFLOPs(batch: batchSize) / seconds / 1e9
        // sysconf asks the kernel (sysinfo), so this works without /proc, as on a board.
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        let memoryMB = pages > 0 && pageSize > 0 ? (pages * pageSize) >> 20 : nil
        var link: LinkFigures?
        if let coordinator {
            link = try DeviceProfile.measureLink(
                to: coordinator, curve: try curveClient(serverKey: serverKey, clientKey: clientKey),
                wait: .milliseconds(Int64(coordinatorWait * 1000)),
                log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        }
        let host = ProcessInfo.processInfo.hostName
        print(
            "# maestro bench --profile on \(host): \(kind.rawValue) dense training steps (batch \(batchSize), one BLAS thread, kernel \(BLASKernel.coreName)) at \(String(format: "%.2f", gflops)) GFLOP/s"
                + (memoryMB.map { ", \($0) MB of memory" } ?? ""))
        var fields = [
            "name: \(name)", "count: 1", "rankFraction: 1.0",
            String(format: "gflops: %.2f", gflops),
        ]
        if let link, let coordinator {
            print(
                String(
                    format:
                        "# link to %@: round trip %.3f ms (median of 5 small probes), %d KiB transfers up and echoed back",
                    coordinator, 2 * link.latencyMilliseconds, link.transferBytes >> 10))
            fields.append(String(format: "latencyMs: %.3f", link.latencyMilliseconds))
            for (key, value) in [
                ("uplinkMbps", link.uplinkMbps), ("downlinkMbps", link.downlinkMbps),
            ] {
                if let value {
                    fields.append(String(format: "\(key): %.1f", value))
                } else {
                    print(
                        "# \(key): too fast to tell from the round trip's noise with \(link.transferBytes >> 10) KiB; not written"
                    )
                }
            }
        } else {
            print(
                "# not measured: latencyMs, uplinkMbps and downlinkMbps (give --coordinator tcp://IP:PORT of a running coordinator); add the link's figures before use"
            )
        }
        print("- {\(fields.joined(separator: ", "))}")
    }
}

/// A device's measured figures, as `bench --profile` prints them.
enum DeviceProfile {
    /// The `gflops:` figure of a profile file (its tier line).
    static func gflops(inFile path: String) throws -> Double {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandError("\(path): cannot read the device profile")
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let range = line.range(of: "gflops:") else { continue }
            let rest = line[range.upperBound...].drop { $0 == " " }
            let number = rest.prefix { $0.isNumber || $0 == "." || $0 == "e" || $0 == "-" }
            if let value = Double(number), value > 0, value.isFinite { return value }
            throw CommandError("\(path): '\(line)' has no positive gflops figure")
        }
        throw CommandError(
            "\(path): no 'gflops:' figure (write the file with `maestro bench --profile`)")
    }

    /// The link to a coordinator, measured with link probes over the protocol's own
    /// connection (DEALER, with CURVE when keys are given).
    ///
    /// Three exchanges, repeated and interleaved: small up and small down (the round trip),
    /// N bytes up and small down, N up and N down. The uplink carries N − small more bytes in
    /// the second than in the first, the downlink as many more in the third than in the
    /// second; the medians' differences give the rates. N doubles from 64 KiB until one
    /// exchange takes 0.3 s (at most 8 MiB), so slow and fast links are both timed over
    /// enough bytes. A coordinator never sends more than it was sent, so the downlink is
    /// measured by echoes.
    static func measureLink(
        to address: String, curve: CurveClientConfiguration?, wait: Duration,
        log: (String) -> Void
    ) throws -> LinkFigures {
        let transport: ZeroMQClient
        do {
            transport = try ZeroMQClient(connectingTo: address, curve: curve)
        } catch {
            throw CommandError("\(address): \(error)")
        }
        defer { transport.close() }
        let small = WireLimits.headerSize + 8
        func exchange(up: Int, down: Int, timeout: Duration) throws -> Double {
            let frame = WireCodec.encode(
                .linkProbe(
                    LinkProbe(
                        replyFrameBytes: UInt32(down), paddingBytes: UInt32(max(0, up - small)))),
                round: 0, sender: 0)
            let start = ContinuousClock.now
            do {
                try transport.send(frame, to: .coordinator)
                while true {
                    let left = timeout - (ContinuousClock.now - start)
                    guard left > .zero, let reply = try transport.receive(timeout: left) else {
                        throw CommandError(
                            "no answer from the coordinator at \(address) within \(timeout) (is a maestro coordinator listening there, and with CURVE, are --server-key and --client-key right?)"
                        )
                    }
                    let envelope: Envelope
                    do {
                        envelope = try WireCodec.decode(reply.bytes, maximumSize: 16 << 20)
                    } catch {
                        throw CommandError(
                            "\(address): an unreadable answer to a link probe: \(error)")
                    }
                    switch envelope.message {
                    case .linkProbeReply:
                        return (ContinuousClock.now - start).seconds
                    case .error(let report):
                        throw CommandError(
                            "the coordinator at \(address) refused the link probe: \(report.message)"
                        )
                    default:
                        continue  // not ours (a heartbeat, a late answer)
                    }
                }
            } catch let error as TransportError {
                throw CommandError("\(address): \(error)")
            }
        }
        log("waiting for the coordinator at \(address) to answer a link probe (up to \(wait))")
        _ = try exchange(up: small, down: 0, timeout: wait)
        for _ in 0..<3 { _ = try exchange(up: small, down: 0, timeout: .seconds(10)) }
        var size = 64 << 10
        while size < 8 << 20, try exchange(up: size, down: size, timeout: .seconds(60)) < 0.3 {
            size *= 2
        }
        log("timing the link with \(size >> 10) KiB transfers")
        var roundTrips: [Double] = []
        var uplink: [Double] = []
        var both: [Double] = []
        for _ in 0..<5 {
            roundTrips.append(try exchange(up: small, down: 0, timeout: .seconds(60)))
            uplink.append(try exchange(up: size, down: 0, timeout: .seconds(60)))
            both.append(try exchange(up: size, down: size, timeout: .seconds(60)))
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let roundTrip = median(roundTrips)
        let extraBits = Double(size - small) * 8
        let upSeconds = median(uplink) - roundTrip
        let downSeconds = median(both) - median(uplink)
        return LinkFigures(
            latencyMilliseconds: roundTrip / 2 * 1000,
            uplinkMbps: upSeconds > 0 ? extraBits / upSeconds / 1e6 : nil,
            downlinkMbps: downSeconds > 0 ? extraBits / downSeconds / 1e6 : nil,
            transferBytes: size)
    }
}

/// What `bench --profile --coordinator` measured of a link.
struct LinkFigures {
    /// Half the median round trip of small probes.
    var latencyMilliseconds: Double
    /// `nil` when the transfer was too fast to tell from the round trip's noise.
    var uplinkMbps: Double?
    var downlinkMbps: Double?
    /// The size of the timed transfers.
    var transferBytes: Int
}
