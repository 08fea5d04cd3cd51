import ArgumentParser
import Foundation
import LowRank
import Report

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Test accuracy, parameters and MACs of one trained model at several rank budgets."
    )

    @Argument(help: "A model file written by `maestro train` or a fleet run.")
    var file: String

    @Option(
        name: .customLong("rank-fractions"), help: "Comma-separated fractions of the kept ranks.")
    var rankFractions: String = "0.0625,0.125,0.25,0.5,1"

    @Option(
        help:
            "Per-layer ranks to evaluate instead of fractions, as R1/R2/... (one per LoD layer, each at most its kept rank); repeat for several sets."
    )
    var ranks: [String] = []

    @Option(
        help:
            "What to evaluate on: test (the test set) or check (the last 5000 training samples, the split export's choices are made on)."
    )
    var split: EvaluationSplit = .test

    @Option(
        name: .customLong("data-dir"),
        help: "Folder of the test files (default: where the model was trained from).")
    var dataDirectory: String?

    @Flag(help: "Print a JSON array instead of a table.")
    var json = false

    @Flag(
        help:
            "Print the accuracy–cost frontier: per-layer greedy ranks against the uniform fraction at budgets from the smallest model to the full one."
    )
    var pareto = false

    @Option(help: "With --pareto: the budget measure, macs or parameters.")
    var measure: CostMeasure = .macs

    @Option(help: "With --pareto: how many budgets, evenly spaced in cost.")
    var points = 12

    @Option(
        help:
            "With --pareto: what the greedy choice minimises, loss (on the check split: the last 5000 training samples) or energy (no data)."
    )
    var importance: Importance = .loss

    func run() throws {
        let fractions = try parseFractions(rankFractions)
        let (network, metadata) = try loadModel(file)
        let rankSets = try ranks.map { try parseRanks($0, keptRanks: network.keptRanks) }
        let data = try heldOutData(for: metadata, dataDirectory: dataDirectory)
        if pareto {
            try printFrontier(network: network, test: data.test, check: data.check)
            return
        }
        let samples = split == .test ? data.test : data.check
        // Given ranks: their share of the kept ranks (the smallest over layers) stands in the
        // fraction column.
        let sets: [(fraction: Double, ranks: [Int])] =
            rankSets.isEmpty
            ? fractions.map { ($0, network.ranks(atFraction: $0)) }
            : rankSets.map { ranks in
                let shares = zip(ranks, network.keptRanks).map { Double($0) / Double(max($1, 1)) }
                return (shares.min() ?? 1, ranks)
            }
        let results = network.evaluate(
            on: samples, rankSets: sets.map(\.ranks),
            threads: ProcessInfo.processInfo.activeProcessorCount)
        var rows: [[String: Any]] = []
        for (set, result) in zip(sets, results) {
            rows.append([
                "rank_fraction": set.fraction, "accuracy": result.accuracy, "loss": result.loss,
                "parameters": network.parameterCount(ranks: set.ranks),
                "macs": network.macs(ranks: set.ranks), "ranks": set.ranks,
            ])
        }
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                "\(file): \(metadata["variant"] ?? "?") \(metadata["model"] ?? network.architecture.name), kept ranks \(formatRanks(network.keptRanks))"
            )
            print("fraction  accuracy    loss  parameters        MACs  ranks")
            for row in rows {
                print(
                    String(
                        format: "%8.4f  %7.2f%%  %6.4f  %10d  %10d  %@",
                        row["rank_fraction"] as! Double, 100 * (row["accuracy"] as! Double),
                        row["loss"] as! Double,
                        row["parameters"] as! Int, row["macs"] as! Int,
                        formatRanks(row["ranks"] as! [Int])))
            }
        }
    }
}

extension Evaluate {
    /// At each budget: the greedy per-layer choice and the uniform fraction, their test
    /// accuracy and cost; a point is on the frontier when no cheaper point is as accurate.
    func printFrontier(network: Network, test: TrainingSamples, check: TrainingSamples) throws {
        guard points >= 2 else { throw ValidationError("--points must be at least 2") }
        let full = network.cost(ranks: network.keptRanks, measure: measure)
        let smallest = network.cost(ranks: network.keptRanks.map { min($0, 1) }, measure: measure)
        let path = greedyPath(network, measure: measure, importance: importance, check: check)
        var rows: [[String: Any]] = []
        var best = -1.0
        for index in 0..<points {
            let budget = smallest + (full - smallest) * index / (points - 1)
            guard let greedy = Network.ranks(on: path, budget: budget) else { continue }
            let greedyAccuracy = network.evaluate(on: test, ranks: greedy).accuracy
            var row: [String: Any] = [
                "budget": budget, "greedy_ranks": greedy, "greedy_accuracy": greedyAccuracy,
                "greedy_cost": network.cost(ranks: greedy, measure: measure),
            ]
            // The choice `export --check` makes: the more accurate of the two on the check
            // split (training data, never the test set); its test accuracy is what it costs.
            var accuracy = greedyAccuracy
            row["chosen"] = "greedy"
            if let uniform = network.uniformRanks(budget: budget, measure: measure) {
                let uniformAccuracy = network.evaluate(on: test, ranks: uniform.ranks).accuracy
                row["uniform_ranks"] = uniform.ranks
                row["uniform_fraction"] = uniform.fraction
                row["uniform_accuracy"] = uniformAccuracy
                row["uniform_cost"] = network.cost(ranks: uniform.ranks, measure: measure)
                if network.evaluate(on: check, ranks: uniform.ranks).accuracy
                    > network.evaluate(on: check, ranks: greedy).accuracy
                {
                    row["chosen"] = "uniform"
                    accuracy = uniformAccuracy
                }
            }
            row["chosen_accuracy"] = accuracy
            row["on_frontier"] = accuracy > best
            best = max(best, accuracy)
            rows.append(row)
        }
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(
            "\(file): test accuracy against \(measure.rawValue), greedy per-layer ranks (\(importance.rawValue) importance) vs one uniform fraction"
        )
        print(
            "    budget   greedy acc  greedy ranks              uniform acc  uniform ranks     checked  frontier"
        )
        for row in rows {
            let uniform =
                (row["uniform_accuracy"] as? Double).map { String(format: "%10.2f%%", 100 * $0) }
                ?? "         -"
            let uniformRanks =
                (row["uniform_ranks"] as? [Int]).map(formatRanks) ?? "-"
            let greedyRanks = formatRanks(row["greedy_ranks"] as! [Int])
            print(
                "\(String(row["budget"] as! Int).leftPadded(10))  \(String(format: "%9.2f%%", 100 * (row["greedy_accuracy"] as! Double)))  \(greedyRanks.padding(toLength: 24, withPad: " ", startingAt: 0))  \(uniform)  \(uniformRanks.padding(toLength: 16, withPad: " ", startingAt: 0))  \((row["chosen"] as! String).padding(toLength: 7, withPad: " ", startingAt: 0))  \((row["on_frontier"] as! Bool) ? "*" : "")"
            )
        }
    }
}

/// What the greedy rank choice minimises per unit of cost saved.
enum Importance: String, ExpressibleByArgument, CaseIterable {
    /// The cross-entropy on 2000 samples of the check split (held out of the test set).
    case loss
    /// Each component's share of its layer's energy (no data; weaker, see docs/benchmarks.md).
    case energy
}

/// The greedy path of `network` for `measure`, by `importance`; with `budget`, only up to its
/// first point that fits (the point `Network.ranks(on:budget:)` picks).
func greedyPath(
    _ network: Network, measure: CostMeasure, importance: Importance, check: TrainingSamples,
    stoppingAt budget: Int? = nil
) -> [(ranks: [Int], cost: Int)] {
    switch importance {
    case .loss:
        return lossGreedyPath(
            network, measure: measure, samples: lossSample(check), stoppingAt: budget)
    case .energy:
        var path: [(ranks: [Int], cost: Int)] = []
        var next = network.cost(ranks: network.keptRanks, measure: measure)
        while let ranks = network.greedyRanks(budget: next, measure: measure) {
            let cost = network.cost(ranks: ranks, measure: measure)
            path.append((ranks, cost))
            if let budget, cost <= budget { break }
            next = cost - 1
        }
        return path
    }
}

/// The first 5000 samples of `check`: the samples a loss-driven rank choice measures.
func lossSample(_ check: TrainingSamples) -> TrainingSamples {
    let count = min(5000, check.count)
    return TrainingSamples(
        features: Array(check.features[..<(count * check.featureCount)]),
        labels: Array(check.labels[..<count]), featureCount: check.featureCount)
}

/// The test split (and the last 5000 training samples, the check split) of the data a model
/// was trained on, from its metadata.
func heldOutData(
    for metadata: [String: String], dataDirectory: String?
) throws -> (test: TrainingSamples, check: TrainingSamples) {
    var options = try DataOptions.parse([])
    options.dataset = DatasetName(rawValue: metadata["dataset"] ?? "") ?? .fashionMNIST
    options.dataDirectory = dataDirectory ?? metadata["dataDirectory"] ?? options.dataDirectory
    let seed = UInt64(metadata["seed"] ?? "") ?? 1
    let data = try options.load(seed: seed)
    let count = min(5000, data.train.count)
    let start = data.train.count - count
    let check = TrainingSamples(
        features: Array(data.train.features[(start * data.train.featureCount)...]),
        labels: Array(data.train.labels[start...]), featureCount: data.train.featureCount)
    return (data.test, check)
}

extension CostMeasure: ExpressibleByArgument {}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Write a physically smaller model holding only a prefix of each layer's components.")

    @Argument(help: "A model file.")
    var file: String

    @Option(
        name: .customLong("rank-fraction"),
        help: "Fraction p of each layer's kept rank to keep (ceil(p·k)).")
    var rankFraction: Double?

    @Option(help: "Budget: at most this many multiply-accumulates per sample (per-layer ranks).")
    var macs: Int?

    @Option(help: "Budget: at most this many parameters (per-layer ranks).")
    var parameters: Int?

    @Option(
        name: .customLong("latency-ms"),
        help: "Budget: at most this many milliseconds per sample on the device of --profile.")
    var latencyMs: Double?

    @Option(help: "A device profile written by `maestro bench --profile` (its gflops figure).")
    var profile: String?

    @Flag(
        help:
            "Also try the uniform fraction at the same budget and keep whichever is more accurate on the check split."
    )
    var check = false

    @Option(
        help:
            "What the greedy choice minimises per unit of cost: loss (on the check split, the last 5000 training samples, never the test set) or energy (no data needed)."
    )
    var importance: Importance = .loss

    @Option(
        name: .customLong("data-dir"),
        help: "With --check: folder of the data (default: where the model was trained from).")
    var dataDirectory: String?

    @Option(help: "Where to write the smaller model.")
    var out: String

    func validate() throws {
        let chosen = [rankFraction != nil, macs != nil, parameters != nil, latencyMs != nil]
            .filter { $0 }.count
        guard chosen == 1 else {
            throw ValidationError(
                "give exactly one of --rank-fraction, --macs, --parameters, --latency-ms")
        }
        if let rankFraction, !(rankFraction > 0 && rankFraction <= 1) {
            throw ValidationError("--rank-fraction must be in (0, 1] (got \(rankFraction))")
        }
        if let macs, macs < 1 { throw ValidationError("--macs must be at least 1 (got \(macs))") }
        if let parameters, parameters < 1 {
            throw ValidationError("--parameters must be at least 1 (got \(parameters))")
        }
        if let latencyMs {
            guard latencyMs > 0 else { throw ValidationError("--latency-ms must be > 0") }
            guard profile != nil else {
                throw ValidationError(
                    "--latency-ms needs --profile FILE (from `maestro bench --profile`)")
            }
        }
        if check && rankFraction != nil {
            throw ValidationError(
                "--check compares choices at a budget: give --macs, --parameters or --latency-ms")
        }
    }

    /// The budget in MACs or parameters, from the flags.
    func budget() throws -> (Int, CostMeasure)? {
        if let macs { return (macs, .macs) }
        if let parameters { return (parameters, .parameters) }
        guard let latencyMs, let profile else { return nil }
        let gflops = try DeviceProfile.gflops(inFile: profile)
        // A MAC is two floating-point operations.
        return (Int(latencyMs * 1e-3 * gflops * 1e9 / 2), .macs)
    }

    func run() throws {
        // The same file under another name (a link, `./`) counts too: never replace the input.
        let resolved = { (path: String) in
            URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        }
        var input = stat()
        var output = stat()
        if resolved(file) == resolved(out)
            || (stat(file, &input) == 0 && stat(out, &output) == 0 && input.st_dev == output.st_dev
                && input.st_ino == output.st_ino)
        {
            throw ValidationError("--out \(out) is the input model \(file): choose another file")
        }
        let (network, metadata) = try loadModel(file)
        var newMetadata = metadata
        let ranks: [Int]
        if let (budget, measure) = try budget() {
            let needsData = check || importance == .loss
            let held =
                needsData ? try heldOutData(for: metadata, dataDirectory: dataDirectory).check : nil
            let path = greedyPath(
                network, measure: measure, importance: importance,
                check: held ?? TrainingSamples(features: [], labels: [], featureCount: 1),
                stoppingAt: budget)
            guard let greedy = Network.ranks(on: path, budget: budget) else {
                throw CommandError(
                    "\(file): even one component per layer costs \(network.cost(ranks: network.keptRanks.map { min($0, 1) }, measure: measure)) \(measure.rawValue), above the budget of \(budget)"
                )
            }
            var chosen = greedy
            var how = "greedy per-layer (\(importance.rawValue))"
            if check, let held {
                // Each candidate's accuracy on the check split; the first most accurate is kept.
                var candidates = [(how, greedy, "greedy \(formatRanks(greedy))")]
                if let uniform = network.uniformRanks(budget: budget, measure: measure) {
                    candidates.append(
                        (
                            "uniform fraction \(uniform.fraction)", uniform.ranks,
                            String(format: "uniform fraction %.4f", uniform.fraction)
                                + " \(formatRanks(uniform.ranks))"
                        ))
                }
                if let curves = layerCurveRanks(
                    network, measure: measure, samples: lossSample(held), budget: budget)
                {
                    candidates.append(
                        ("layer curves", curves, "layer curves \(formatRanks(curves))"))
                }
                let accuracies = network.evaluate(
                    on: held, rankSets: candidates.map(\.1),
                    threads: ProcessInfo.processInfo.activeProcessorCount
                ).map(\.accuracy)
                var best = 0
                for index in candidates.indices where accuracies[index] > accuracies[best] {
                    best = index
                }
                (how, chosen) = (candidates[best].0, candidates[best].1)
                let line = zip(candidates, accuracies).map { candidate, accuracy in
                    candidate.2 + String(format: " %.2f%%", 100 * accuracy)
                }.joined(separator: ", ")
                print("check split (\(held.count) samples): \(line); keeping the \(how) ranks")
            }
            ranks = chosen
            newMetadata["exportedBudget"] = "\(budget) \(measure.rawValue)"
            newMetadata["exportedRanksChosenBy"] = how
        } else {
            let fraction = rankFraction ?? 1
            ranks = network.ranks(atFraction: fraction)
            newMetadata["exportedRankFraction"] = "\(fraction)"
        }
        let smaller = network.exported(ranks: ranks)
        newMetadata["exportedFrom"] = file
        let bytes = ModelFile.encode(smaller, metadata: newMetadata)
        try writeAtomically(bytes, to: out)
        print(
            "wrote \(out): \(smaller.parameterCount(ranks: smaller.keptRanks)) parameters (from \(network.parameterCount(ranks: network.keptRanks))), \(network.macs(ranks: ranks)) MACs (from \(network.macs(ranks: network.keptRanks))), \(bytes.count) bytes, kept ranks \(formatRanks(smaller.keptRanks)) (of \(formatRanks(network.keptRanks)))"
        )
    }
}

/// The data `eval` measures on.
enum EvaluationSplit: String, ExpressibleByArgument, CaseIterable {
    /// The test set.
    case test
    /// The last 5000 training samples (what `export --check` and the greedy path measure).
    case check
}

/// Per-layer ranks written R1/R2/..., one per LoD layer, each from 1 to its kept rank.
func parseRanks(_ text: String, keptRanks: [Int]) throws -> [Int] {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == keptRanks.count else {
        throw ValidationError(
            "--ranks \(text): \(parts.count) ranks for \(keptRanks.count) LoD layers (kept ranks \(formatRanks(keptRanks)))"
        )
    }
    return try zip(parts, keptRanks).map { part, kept in
        guard let rank = Int(part.trimmingCharacters(in: .whitespaces)), rank >= 1, rank <= kept
        else {
            throw ValidationError(
                "--ranks \(text): '\(part)' is not a rank from 1 to its layer's kept \(kept)")
        }
        return rank
    }
}

func parseFractions(_ text: String) throws -> [Double] {
    try text.split(separator: ",").map { part in
        guard let value = Double(part.trimmingCharacters(in: .whitespaces)), value > 0, value <= 1
        else {
            throw ValidationError("--rank-fractions: '\(part)' is not a fraction in (0, 1]")
        }
        return value
    }
}

func loadModel(_ path: String) throws(CommandError) -> (Network, [String: String]) {
    let bytes = try readFile(path)
    do {
        return try ModelFile.decode(bytes)
    } catch {
        throw CommandError("\(path): \(error)")
    }
}
