import Foundation
import Testing

@testable import Fleet

/// A strategy twin `Scenarios/NAME-STRATEGY.yaml` (NAME.yaml shipped, STRATEGY a
/// `model.strategy`): the difference from its base, key path by key path.
struct TwinDifference: Equatable {
    /// Key paths whose values differ in both files (`name`, `model.strategy` expected).
    var changed: [String] = []
    /// Key paths the base writes and the twin leaves out, with the base's value.
    var omitted: [(keyPath: String, value: ScenarioNode)] = []
    /// Key paths the twin writes and the base does not.
    var added: [String] = []

    static func == (a: TwinDifference, b: TwinDifference) -> Bool {
        a.changed == b.changed && a.added == b.added
            && a.omitted.map(\.keyPath) == b.omitted.map(\.keyPath)
    }

    /// Walks both trees: mappings by key (order and comments do not count), sequences by
    /// position; any other pair must be equal.
    init(base: ScenarioNode, twin: ScenarioNode) {
        walk(base, twin, at: "")
    }

    private mutating func walk(_ base: ScenarioNode, _ twin: ScenarioNode, at path: String) {
        func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
        switch (base, twin) {
        case (.mapping(let left, _), .mapping(let right, _)):
            for entry in left {
                let other = right.first { $0.key == entry.key }?.value ?? .null
                if other != .null {
                    walk(entry.value, other, at: child(entry.key))
                } else if entry.value != .null {
                    omitted.append((child(entry.key), entry.value))
                }
            }
            for entry in right
            where entry.value != .null && !left.contains(where: { $0.key == entry.key }) {
                added.append(child(entry.key))
            }
        case (.sequence(let left, _), .sequence(let right, _)) where left.count == right.count:
            for (index, pair) in zip(left, right).enumerated() {
                walk(pair.0, pair.1, at: "\(path)[\(index)]")
            }
        case (.scalar(let left, _), .scalar(let right, _)):
            if left != right { changed.append(path) }
        default:
            if base != twin { changed.append(path) }
        }
    }
}

/// The twins in `directory`: (twin name, base name, strategy) for every `NAME-STRATEGY.yaml`
/// whose `NAME.yaml` is there and whose STRATEGY is a strategy's name.
func strategyTwins(in directory: URL) throws -> [(twin: String, base: String, strategy: String)] {
    let names = Set(
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) })
    return names.sorted().compactMap { name in
        guard let dash = name.lastIndex(of: "-") else { return nil }
        let base = String(name[..<dash])
        let strategy = String(name[name.index(after: dash)...])
        guard names.contains(base), Scenario.Strategy(rawValue: strategy) != nil else {
            return nil
        }
        return (name, base, strategy)
    }
}

func yamlTree(_ name: String) throws -> ScenarioNode {
    let text = try String(
        contentsOf: scenariosDirectory.appendingPathComponent("\(name).yaml"), encoding: .utf8)
    return try #require(try ScenarioNode.parse(yaml: text), "\(name).yaml is empty")
}

/// What is wrong with `twin` (the tree of `NAME-STRATEGY.yaml`) as the `strategy` twin of
/// `base` (the tree of `NAME.yaml`): nothing when it equals the base but for `name` (the
/// twin's file name) and `model.strategy`, and leaves out only keys that `strategy` refuses
/// with the base's value.
func twinProblems(
    name: String, strategy: String, base: ScenarioNode, twin: ScenarioNode
) -> [String] {
    var problems: [String] = []
    if twin["name"]?.text != name { problems.append("name must be \(name)") }
    if twin["model"]?["strategy"]?.text != strategy {
        problems.append("model.strategy must be \(strategy)")
    }
    let difference = TwinDifference(base: base, twin: twin)
    for keyPath in difference.changed where keyPath != "name" && keyPath != "model.strategy" {
        problems.append("\(keyPath) differs from the base")
    }
    for keyPath in difference.added { problems.append("\(keyPath) is not in the base") }
    do {
        _ = try Scenario.parse(yaml: twin.emitted(), path: name)
    } catch {
        return problems + ["does not load: \(error)"]
    }
    // Each key left out must be one the twin's strategy refuses as the base writes it.
    for (keyPath, value) in difference.omitted {
        guard let components = KeyPathComponent.parse(keyPath),
            case .success(let restored) = twin.setting(value, at: components[...])
        else {
            problems.append("\(keyPath): cannot be put back")
            continue
        }
        do {
            _ = try Scenario.parse(yaml: restored.emitted(), path: name)
            problems.append("leaves out \(keyPath), which \(strategy) accepts: keep it")
        } catch .invalid(_, let found)
            where found.contains(where: { $0.keyPath.hasPrefix(keyPath) })
        {
            // Refused at that key: rightly left out.
        } catch {
            problems.append("\(keyPath): put back, refused elsewhere: \(error)")
        }
    }
    return problems
}

@Suite("Strategy twins of the shipped scenarios")
struct TwinScenarioTests {
    @Test("The fixedRank twins of default, cnn and smoke are shipped and found as twins")
    func fixedRankTwinsShipped() throws {
        let twins = try strategyTwins(in: scenariosDirectory).map(\.twin)
        for name in ["default-fixedRank", "cnn-fixedRank", "smoke-fixedRank"] {
            #expect(twins.contains(name), "\(name).yaml")
        }
        // cnn-dense is checked on its own (its suffix is not a strategy's name).
        #expect(!twins.contains("cnn-dense"))
    }

    @Test(
        "Every Scenarios/NAME-STRATEGY.yaml equals NAME.yaml but for name and model.strategy, leaving out only keys its strategy refuses"
    )
    func twinsMatchTheirBase() throws {
        let twins = try strategyTwins(in: scenariosDirectory)
        #expect(!twins.isEmpty)
        for (name, base, strategy) in twins {
            let problems = twinProblems(
                name: name, strategy: strategy, base: try yamlTree(base), twin: try yamlTree(name))
            #expect(problems.isEmpty, "\(name).yaml against \(base).yaml: \(problems)")
        }
    }

    @Test("The twin check sees a changed value, an added key and a key left out")
    func differenceFindsEachKind() throws {
        let base = try #require(
            try ScenarioNode.parse(
                yaml: """
                    name: a
                    model: {architecture: mlp, strategy: orderedLoD}
                    training: {sampler: perLayer, groupLasso: 0.1}
                    tiers:
                      - {name: low, rankFraction: 0.25}
                    """))
        let twin = try #require(
            try ScenarioNode.parse(
                yaml: """
                    # comments and key order do not count
                    name: a-fixedRank
                    model: {strategy: fixedRank, architecture: mlp}
                    training: {groupLasso: 0.1, momentum: 0.9}
                    tiers:
                      - {name: low, rankFraction: 0.5}
                    """))
        let difference = TwinDifference(base: base, twin: twin)
        #expect(difference.changed == ["name", "model.strategy", "tiers[0].rankFraction"])
        #expect(difference.added == ["training.momentum"])
        #expect(difference.omitted.map(\.keyPath) == ["training.sampler"])
        #expect(TwinDifference(base: base, twin: base).changed.isEmpty)
    }

    @Test(
        "A twin that changes a value, or leaves out a key its strategy accepts, is reported; one that leaves out only refused keys is not"
    )
    func twinCheckCatchesBadTwins() throws {
        let base = try yamlTree("smoke")
        let good = try yamlTree("smoke-fixedRank")
        func edited(_ keyPath: String, _ value: ScenarioNode) throws -> ScenarioNode {
            let components = try #require(KeyPathComponent.parse(keyPath))
            return try good.setting(value, at: components[...]).get()
        }
        #expect(
            twinProblems(name: "smoke-fixedRank", strategy: "fixedRank", base: base, twin: good)
                == [])
        let noSchedule = try edited("training.learningRateSchedule", .null)
        #expect(
            twinProblems(
                name: "smoke-fixedRank", strategy: "fixedRank", base: base, twin: noSchedule)
                == ["leaves out training.learningRateSchedule, which fixedRank accepts: keep it"])
        let faster = try edited("training.learningRate", .scalar("0.05", isPlain: true))
        #expect(
            twinProblems(name: "smoke-fixedRank", strategy: "fixedRank", base: base, twin: faster)
                == ["training.learningRate differs from the base"])
        // The base itself is no fixedRank twin: wrong name and strategy.
        #expect(
            twinProblems(name: "smoke-fixedRank", strategy: "fixedRank", base: base, twin: base)
                == ["name must be smoke-fixedRank", "model.strategy must be fixedRank"])
    }
}
