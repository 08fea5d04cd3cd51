import Foundation
import Vocabulary

/// A model description read from YAML: a scenario's `model.architecture` or a description
/// file (`maestro train --model FILE`, `maestro model show FILE`).
///
/// The value is a preset name (`cnn`), or a mapping with `preset` (and optionally
/// `normalization: batch | group | none`), or a mapping with `layers`, or the layer list
/// itself. Each layer is a keyword or a one-key mapping:
///
/// ```yaml
/// layers:
///   - conv: {channels: 32, kernel: 5, padding: 2}   # stride 1; factored by the size rule
///   - relu
///   - maxpool
///   - conv: {channels: 64, kernel: 3, stride: 2, padding: 1, factored: true}
///   - batchnorm
///   - groupnorm: 8                                   # or {groups: 8}
///   - residual:
///       body: [{conv: {channels: 64, kernel: 3, padding: 1}}, groupnorm: 8, relu]
///       shortcut: []                                 # absent or empty: the identity
///   - avgpool: 2                                     # or {size: 2}
///   - global_avgpool
///   - flatten
///   - dense: 512                                     # or {outputs: 512, factored: false}
///   - dense: classes                                 # the data set's class count
/// ```
extension ModelDescription {
    /// Reads a description file; errors name the file, the key path and the reason.
    public static func load(path: String) throws(ScenarioError) -> ModelDescription {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
            !isDirectory.boolValue
        else { throw .unreadable(path: path, reason: "no such file") }
        guard let data = FileManager.default.contents(atPath: path),
            let text = String(data: data, encoding: .utf8)
        else { throw .unreadable(path: path, reason: "unreadable or not UTF-8 text") }
        return try parse(yaml: text, path: path)
    }

    /// Parses description YAML; `path` names the source in errors.
    public static func parse(
        yaml: String, path: String = "<string>"
    ) throws(ScenarioError)
        -> ModelDescription
    {
        let root: ScenarioNode?
        do {
            root = try ScenarioNode.parse(yaml: yaml)
        } catch {
            throw .syntax(path: path, line: error.line, column: error.column, reason: error.reason)
        }
        guard let root else {
            throw .invalid(
                path: path, problems: [ScenarioProblem(keyPath: "(root)", reason: "empty document")]
            )
        }
        var problems: [ScenarioProblem] = []
        let description = ModelDescriptionReader.description(root, at: "model", problems: &problems)
        guard let description, problems.isEmpty else {
            throw .invalid(path: path, problems: problems)
        }
        return description
    }
}

/// Reads description nodes, collecting every problem with its key path.
enum ModelDescriptionReader {
    static let layerKeywords = [
        "conv", "dense", "batchnorm", "groupnorm", "relu", "maxpool", "avgpool", "global_avgpool",
        "flatten", "residual",
    ]

    /// A preset name, a `preset` / `layers` mapping, or a layer list.
    static func description(
        _ node: ScenarioNode, at path: String, problems: inout [ScenarioProblem]
    ) -> ModelDescription? {
        switch node {
        case .scalar(let name, _):
            guard let preset = ModelPreset(rawValue: name) else {
                problems.append(
                    ScenarioProblem(
                        keyPath: path,
                        reason:
                            "unknown model '\(name)': expected a preset (\(ModelPreset.allCases.map(\.rawValue).joined(separator: ", "))) or a layer description"
                    ))
                return nil
            }
            return .preset(preset)
        case .sequence(let items, _):
            return layers(items, at: path, problems: &problems).map { .layers($0) }
        case .mapping(let entries, _):
            let known = Set(["preset", "normalization", "layers"])
            for entry in entries where !known.contains(entry.key) {
                problems.append(
                    ScenarioProblem(
                        keyPath: "\(path).\(entry.key)",
                        reason: "unknown key: expected preset (with normalization) or layers"))
            }
            if let layersNode = node["layers"] {
                guard node["preset"] == nil else {
                    problems.append(
                        ScenarioProblem(keyPath: path, reason: "give preset or layers, not both"))
                    return nil
                }
                guard case .sequence(let items, _) = layersNode else {
                    problems.append(
                        ScenarioProblem(
                            keyPath: "\(path).layers",
                            reason:
                                "expected a sequence of layers, found \(layersNode.kindDescription)"
                        ))
                    return nil
                }
                return layers(items, at: "\(path).layers", problems: &problems).map { .layers($0) }
            }
            guard let presetNode = node["preset"],
                case .preset(let preset) = description(
                    presetNode, at: "\(path).preset", problems: &problems)
            else {
                if node["preset"] == nil {
                    problems.append(
                        ScenarioProblem(keyPath: path, reason: "missing preset or layers"))
                }
                return nil
            }
            guard let normalizationNode = node["normalization"] else { return .preset(preset) }
            guard case .scalar(let text, _) = normalizationNode,
                let normalization = Normalization(rawValue: text)
            else {
                problems.append(
                    ScenarioProblem(
                        keyPath: "\(path).normalization",
                        reason:
                            "expected batch, group or none, found \(normalizationNode.kindDescription)"
                    ))
                return nil
            }
            return normalization == .presetDefault
                ? .preset(preset) : .layers(preset.layers(normalization: normalization))
        case .null:
            problems.append(ScenarioProblem(keyPath: path, reason: "missing model"))
            return nil
        }
    }

    static func layers(
        _ items: [ScenarioNode], at path: String, problems: inout [ScenarioProblem]
    ) -> [LayerDescription]? {
        let before = problems.count
        let result = items.enumerated().compactMap { index, item in
            layer(item, at: "\(path)[\(index)]", problems: &problems)
        }
        return problems.count == before ? result : nil
    }

    static func layer(
        _ node: ScenarioNode, at path: String, problems: inout [ScenarioProblem]
    ) -> LayerDescription? {
        func problem(_ key: String, _ reason: String) -> LayerDescription? {
            problems.append(ScenarioProblem(keyPath: key, reason: reason))
            return nil
        }
        let keyword: String
        let value: ScenarioNode
        switch node {
        case .scalar(let text, _):
            (keyword, value) = (text, .null)
        case .mapping(let entries, _) where entries.count == 1:
            (keyword, value) = (entries[0].key, entries[0].value)
        default:
            return problem(
                path,
                "expected a layer (a keyword such as relu, or a one-key mapping such as conv: {…}), found \(node.kindDescription)"
            )
        }
        let at = "\(path).\(keyword)"
        guard layerKeywords.contains(keyword) else {
            return problem(
                path,
                "unknown layer '\(keyword)': expected one of \(layerKeywords.joined(separator: ", "))"
            )
        }
        // Arguments: a mapping of known keys, or (for one-argument layers) a bare value.
        func arguments(_ known: [String], bare: String?) -> [String: ScenarioNode]? {
            switch value {
            case .null: return [:]
            case .mapping(let entries, _):
                var result: [String: ScenarioNode] = [:]
                for entry in entries {
                    guard known.contains(entry.key) else {
                        problems.append(
                            ScenarioProblem(
                                keyPath: "\(at).\(entry.key)",
                                reason: "unknown key: expected \(known.joined(separator: ", "))"))
                        return nil
                    }
                    result[entry.key] = entry.value
                }
                return result
            case .scalar where bare != nil: return [bare!: value]
            default:
                problems.append(
                    ScenarioProblem(
                        keyPath: at,
                        reason: known.isEmpty
                            ? "takes no arguments, found \(value.kindDescription)"
                            : "expected a mapping of \(known.joined(separator: ", ")), found \(value.kindDescription)"
                    ))
                return nil
            }
        }
        func integer(
            _ arguments: [String: ScenarioNode], _ key: String, default fallback: Int?,
            atLeast minimum: Int
        ) -> Int? {
            guard let node = arguments[key], node != .null else {
                if fallback == nil {
                    problems.append(ScenarioProblem(keyPath: "\(at).\(key)", reason: "missing"))
                }
                return fallback
            }
            guard case .scalar(let text, true) = node, let number = Int(text), number >= minimum,
                number <= 1 << 20
            else {
                problems.append(
                    ScenarioProblem(
                        keyPath: "\(at).\(key)",
                        reason:
                            "expected an integer in \(minimum)…\(1 << 20), found \(node.kindDescription)"
                    ))
                return nil
            }
            return number
        }
        func flag(_ arguments: [String: ScenarioNode]) -> (ok: Bool, value: Bool?) {
            guard let node = arguments["factored"], node != .null else { return (true, nil) }
            guard case .scalar(let text, true) = node, text == "true" || text == "false" else {
                problems.append(
                    ScenarioProblem(
                        keyPath: "\(at).factored",
                        reason: "expected true or false, found \(node.kindDescription)"))
                return (false, nil)
            }
            return (true, text == "true")
        }
        let before = problems.count
        switch keyword {
        case "conv":
            guard
                let a = arguments(
                    ["channels", "kernel", "stride", "padding", "factored"], bare: nil)
            else { return nil }
            let channels = integer(a, "channels", default: nil, atLeast: 1)
            let kernel = integer(a, "kernel", default: nil, atLeast: 1)
            let stride = integer(a, "stride", default: 1, atLeast: 1)
            let padding = integer(a, "padding", default: 0, atLeast: 0)
            let factored = flag(a)
            guard problems.count == before, let channels, let kernel, let stride, let padding,
                factored.ok
            else { return nil }
            guard padding < kernel else {
                return problem(
                    "\(at).padding", "must be below the kernel size \(kernel), found \(padding)")
            }
            return .convolution(
                channels: channels, kernel: kernel, stride: stride, padding: padding,
                factored: factored.value)
        case "dense":
            guard let a = arguments(["outputs", "factored"], bare: "outputs") else { return nil }
            let factored = flag(a)
            if case .scalar("classes", _)? = a["outputs"] {
                return factored.ok ? .dense(outputs: nil, factored: factored.value) : nil
            }
            let outputs = integer(a, "outputs", default: nil, atLeast: 1)
            guard let outputs, factored.ok else { return nil }
            return .dense(outputs: outputs, factored: factored.value)
        case "groupnorm":
            guard let a = arguments(["groups"], bare: "groups"),
                let groups = integer(a, "groups", default: nil, atLeast: 1)
            else { return nil }
            return .groupNormalization(groups: groups)
        case "avgpool":
            guard let a = arguments(["size"], bare: "size"),
                let size = integer(a, "size", default: 2, atLeast: 1)
            else { return nil }
            return .averagePool(size: size)
        case "residual":
            guard let a = arguments(["body", "shortcut"], bare: nil) else { return nil }
            func branch(_ key: String) -> [LayerDescription]? {
                switch a[key] ?? .null {
                case .null: return []
                case .sequence(let items, _):
                    return layers(items, at: "\(at).\(key)", problems: &problems)
                case let other:
                    _ = problem(
                        "\(at).\(key)",
                        "expected a sequence of layers, found \(other.kindDescription)")
                    return nil
                }
            }
            guard let body = branch("body"), let shortcut = branch("shortcut") else { return nil }
            guard !body.isEmpty else {
                return problem("\(at).body", "a residual block needs a body")
            }
            return .residual(body: body, shortcut: shortcut)
        default:
            guard arguments([], bare: nil) != nil else { return nil }
            switch keyword {
            case "batchnorm": return .batchNormalization
            case "relu": return .relu
            case "maxpool": return .maxPool
            case "global_avgpool": return .globalAveragePool
            default: return .flatten
            }
        }
    }
}

extension ModelPreset {
    /// LeNet-5, under the name scenarios have always used in code.
    public static let leNet = ModelPreset.lenet
}

extension ScenarioValidator {
    /// Reports a preset whose layers cannot take the data set's images (VGG's five 2×2
    /// poolings on Fashion-MNIST's 28×28), at `model.architecture`.
    mutating func checkModelFitsImages(
        _ architecture: Scenario.Architecture, datasetName: String?
    ) {
        guard datasetName == "fashion-mnist",
            let problem = ModelDescription.preset(architecture).spatialProblem(
                height: 28, width: 28)
        else { return }
        report(
            "model.architecture",
            "\(architecture.rawValue) cannot take fashion-mnist's 28×28 images: \(problem)")
    }
}
