import ArgumentParser
import Foundation
import LowRank

struct Evaluate: AsyncParsableCommand {
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
        name: .customLong("data-dir"),
        help: "Folder of the test files (default: where the model was trained from).")
    var dataDirectory: String?

    @Flag(help: "Print a JSON array instead of a table.")
    var json = false

    func run() async throws {
        let fractions = try parseFractions(rankFractions)
        let (network, metadata) = try loadModel(file)
        var options = try DataOptions.parse([])
        options.dataset = DatasetName(rawValue: metadata["dataset"] ?? "") ?? .fashionMNIST
        options.dataDirectory = dataDirectory ?? metadata["dataDirectory"] ?? options.dataDirectory
        let seed = UInt64(metadata["seed"] ?? "") ?? 1
        let test = try options.load(seed: seed).test
        var rows: [[String: Any]] = []
        for fraction in fractions {
            let ranks = network.ranks(atFraction: fraction)
            let accuracy = network.evaluate(on: test, ranks: ranks).accuracy
            rows.append([
                "rank_fraction": fraction, "accuracy": accuracy,
                "parameters": network.parameterCount(ranks: ranks),
                "macs": network.macs(ranks: ranks), "ranks": ranks,
            ])
        }
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                "\(file): \(metadata["variant"] ?? "?") \(metadata["model"] ?? network.architecture.name), kept ranks \(network.keptRanks.map(String.init).joined(separator: "/"))"
            )
            print("fraction  accuracy  parameters        MACs  ranks")
            for row in rows {
                print(
                    String(
                        format: "%8.4f  %7.2f%%  %10d  %10d  %@", row["rank_fraction"] as! Double,
                        100 * (row["accuracy"] as! Double),
                        row["parameters"] as! Int, row["macs"] as! Int,
                        (row["ranks"] as! [Int]).map(String.init).joined(separator: "/")))
            }
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Write a physically smaller model holding only a prefix of each layer's components.")

    @Argument(help: "A model file.")
    var file: String

    @Option(
        name: .customLong("rank-fraction"),
        help: "Fraction p of each layer's kept rank to keep (ceil(p·k)).")
    var rankFraction: Double

    @Option(help: "Where to write the smaller model.")
    var out: String

    func run() async throws {
        guard rankFraction > 0 && rankFraction <= 1 else {
            throw ValidationError("--rank-fraction must be in (0, 1] (got \(rankFraction))")
        }
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
        let ranks = network.ranks(atFraction: rankFraction)
        let smaller = network.exported(ranks: ranks)
        var newMetadata = metadata
        newMetadata["exportedFrom"] = file
        newMetadata["exportedRankFraction"] = "\(rankFraction)"
        let bytes = ModelFile.encode(smaller, metadata: newMetadata)
        try writeAtomically(bytes, to: out)
        print(
            "wrote \(out): \(smaller.parameterCount(ranks: smaller.keptRanks)) parameters (from \(network.parameterCount(ranks: network.keptRanks))), \(bytes.count) bytes, ranks \(ranks.map(String.init).joined(separator: "/"))"
        )
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
