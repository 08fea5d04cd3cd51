import Yams

/// An untyped YAML tree: what the file says, before anything is checked.
///
/// Scalars keep their text and whether they were written plain (unquoted), because only a
/// plain scalar may be read as a number or a Boolean: `"1"` is a string, `1` is a number.
/// A plain empty scalar, `~` and `null` become `.null`, which reads as "key absent".
indirect enum ScenarioNode: Sendable, Equatable {
    case null
    case scalar(String, isPlain: Bool)
    case mapping([Entry], isFlow: Bool)
    case sequence([ScenarioNode], isFlow: Bool)

    struct Entry: Sendable, Equatable {
        var key: String
        var value: ScenarioNode
    }

    /// What the node is, for "expected …, found …" messages.
    var kindDescription: String {
        switch self {
        case .null: "nothing"
        case .scalar(let text, _): "'\(text)'"
        case .mapping: "a mapping"
        case .sequence: "a sequence"
        }
    }

    /// The value under `key` of a mapping, or `nil`.
    subscript(key: String) -> ScenarioNode? {
        guard case .mapping(let entries, _) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }
}

// MARK: - From YAML text

/// A YAML document that could not be read as a tree, with its 1-based position.
struct YAMLSyntaxError: Error, Equatable {
    var line: Int
    var column: Int
    var reason: String
}

extension ScenarioNode {
    /// Parses one YAML document; `nil` when the document is empty.
    ///
    /// Anchors and aliases are resolved by Yams; merge keys (`<<: *base`) are applied here,
    /// with keys written in the mapping itself taking precedence.
    ///
    /// Bounded, because a scenario may come from anyone: at most ``maximumBytes`` of text,
    /// ``maximumDepth`` levels of nesting, and ``maximumNodes`` nodes once aliases are
    /// expanded (a "billion laughs" of nested aliases is refused after that many, instead of
    /// taking memory without bound).
    static func parse(yaml: String) throws(YAMLSyntaxError) -> ScenarioNode? {
        guard yaml.utf8.count <= maximumBytes else {
            throw YAMLSyntaxError(
                line: 1, column: 1,
                reason:
                    "the document is \(yaml.utf8.count) bytes; a scenario may have at most \(maximumBytes)"
            )
        }
        try checkNesting(yaml)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw YAMLSyntaxError(error, in: yaml)
        } catch {
            throw YAMLSyntaxError(line: 1, column: 1, reason: "\(error)")
        }
        guard let root else { return nil }
        var budget = maximumNodes
        guard let node = ScenarioNode(yams: root, budget: &budget) else {
            throw YAMLSyntaxError(
                line: 1, column: 1,
                reason:
                    "the document expands to more than \(maximumNodes) nodes (nested aliases?); a scenario has a few hundred"
            )
        }
        return node
    }

    /// The largest scenario text read (1 MiB; shipped scenarios are a few kB).
    static let maximumBytes = 1 << 20
    /// The deepest nesting read (shipped scenarios nest 4 levels).
    static let maximumDepth = 64
    /// The most nodes a document may expand to, aliases included.
    static let maximumNodes = 100_000

    /// Refuses nesting deeper than ``maximumDepth`` before the recursive composer sees it:
    /// flow brackets (`[[[…`), compact sequences (`- - - …`) and indentation.
    private static func checkNesting(_ yaml: String) throws(YAMLSyntaxError) {
        let (space, dash, hash) = (UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "#"))
        var flowDepth = 0
        var quote: UInt8?  // quoted scalars may span lines
        var line = 1
        var blockDepth = 0
        var leading = true
        var previous = space
        var inComment = false
        for byte in yaml.utf8 {
            if byte == UInt8(ascii: "\n") {
                (line, blockDepth, leading, previous, inComment) = (line + 1, 0, true, space, false)
                continue
            }
            defer { previous = byte }
            if inComment { continue }
            if let open = quote {
                if byte == open { quote = nil }
                continue
            }
            switch byte {
            case hash where previous == space || previous == UInt8(ascii: "\t"):
                inComment = true
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                quote = byte
                leading = false
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                flowDepth += 1
                leading = false
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                flowDepth = max(0, flowDepth - 1)
            case space where leading, dash where leading:
                blockDepth += 1
            default:
                leading = false
            }
            // A block level takes at least one column of indentation or a "- ": allow two
            // columns per level.
            if flowDepth > maximumDepth || blockDepth > 2 * maximumDepth {
                throw YAMLSyntaxError(
                    line: line, column: 1,
                    reason: "nesting deeper than \(maximumDepth) levels; a scenario nests a few")
            }
        }
    }

    /// Converts a composed document, spending one unit of `budget` per node (aliases are
    /// expanded, so a shared subtree costs each time it appears); `nil` once it runs out.
    init?(yams node: Node, budget: inout Int) {
        budget -= 1
        guard budget >= 0 else { return nil }
        switch node {
        case .scalar(let scalar):
            let isPlain = scalar.style == .plain
            if isPlain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                self = .null
            } else {
                self = .scalar(scalar.string, isPlain: isPlain)
            }
        case .sequence(let sequence):
            var items: [ScenarioNode] = []
            for item in sequence {
                guard let converted = ScenarioNode(yams: item, budget: &budget) else { return nil }
                items.append(converted)
            }
            self = .sequence(items, isFlow: sequence.style == .flow)
        case .mapping(let mapping):
            var entries: [Entry] = []
            var merged: [Entry] = []
            // Keys seen so far, so that merging n keys costs O(n), not O(n²).
            var mergedKeys: Set<String> = []
            for (key, value) in mapping {
                guard let converted = ScenarioNode(yams: value, budget: &budget) else {
                    return nil
                }
                if key.scalar?.string == "<<", key.scalar?.style == .plain {
                    // A merge key: a mapping or a sequence of mappings, earlier ones win.
                    let sources: [ScenarioNode] =
                        if case .sequence(let items, _) = converted { items } else { [converted] }
                    for case .mapping(let inherited, _) in sources {
                        for entry in inherited where mergedKeys.insert(entry.key).inserted {
                            merged.append(entry)
                        }
                    }
                } else {
                    entries.append(Entry(key: key.scalar?.string ?? "\(key)", value: converted))
                }
            }
            if !merged.isEmpty {
                let ownKeys = Set(entries.map(\.key))
                entries += merged.filter { !ownKeys.contains($0.key) }
            }
            self = .mapping(entries, isFlow: mapping.style == .flow)
        case .alias(let alias):
            self = .scalar("*\(alias.anchor)", isPlain: false)
        }
    }
}

extension YAMLSyntaxError {
    init(_ error: YamlError, in yaml: String) {
        func described(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return problem }
            return "\(problem) (\(context.text) at line \(context.mark.line), "
                + "column \(context.mark.column))"
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            self.init(line: mark.line, column: mark.column, reason: described(problem, context))
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams marks the first occurrence; point at the repeat, the line to fix.
            let first = context.mark
            if duplicates.count == 1, let key = duplicates.first,
                let repeated = Self.repeatedKey(key, after: first, in: yaml)
            {
                self.init(
                    line: repeated.line, column: repeated.column,
                    reason: "duplicate key '\(key)' (first at line \(first.line))")
            } else {
                let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
                self.init(
                    line: first.line, column: first.column,
                    reason: "duplicate key \(keys) in one mapping")
            }
        case .reader(let problem, let offset, _, _):
            let prefix = yaml.prefix(offset ?? 0)
            let line = prefix.count { $0 == "\n" || $0 == "\r\n" } + 1
            let column =
                prefix.distance(
                    from: prefix.lastIndex { $0 == "\n" || $0 == "\r\n" }.map(prefix.index(after:))
                        ?? prefix.startIndex,
                    to: prefix.endIndex) + 1
            self.init(line: line, column: column, reason: problem)
        default:
            self.init(line: 1, column: 1, reason: "\(error)")
        }
    }

    /// The next line of the same block mapping that starts with `key:`, if any.
    static func repeatedKey(
        _ key: String, after first: Mark, in yaml: String
    ) -> (line: Int, column: Int)? {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let indent = first.column - 1
        guard first.line >= 1, first.line < lines.count else { return nil }
        for index in first.line..<lines.count {
            let text = lines[index]
            let content = text.drop { $0 == " " }
            if content.isEmpty || content.hasPrefix("#") { continue }
            let leading = text.count - content.count
            if leading < indent { return nil }  // left the mapping
            if leading == indent, content.hasPrefix(key),
                content.dropFirst(key.count).drop(while: { $0 == " " }).first == ":"
            {
                return (index + 1, indent + 1)
            }
        }
        return nil
    }
}

// MARK: - To YAML text

extension ScenarioNode {
    /// Block-style YAML for a mapping root; flow mappings and sequences stay on one line.
    func emitted() -> String {
        var lines: [String] = []
        emitBlock(indent: "", into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private func emitBlock(indent: String, into lines: inout [String]) {
        switch self {
        case .mapping(let entries, _):
            for entry in entries {
                switch entry.value {
                case .mapping(_, false), .sequence(_, false):
                    lines.append("\(indent)\(Self.quoted(entry.key)):")
                    entry.value.emitBlock(indent: indent + "  ", into: &lines)
                default:
                    lines.append("\(indent)\(Self.quoted(entry.key)): \(entry.value.inline)")
                }
            }
        case .sequence(let items, _):
            for item in items {
                switch item {
                case .mapping(_, false), .sequence(_, false):
                    var nested: [String] = []
                    item.emitBlock(indent: indent + "  ", into: &nested)
                    if let first = nested.first {
                        nested[0] = indent + "- " + first.dropFirst(indent.count + 2)
                    }
                    lines += nested
                default:
                    lines.append("\(indent)- \(item.inline)")
                }
            }
        default:
            lines.append(indent + inline)
        }
    }

    /// The node on one line (flow style).
    private var inline: String {
        switch self {
        case .null: "null"
        case .scalar(let text, let isPlain): isPlain ? text : Self.quoted(text)
        case .mapping(let entries, _):
            "{"
                + entries.map { "\(Self.quoted($0.key)): \($0.value.inline)" }
                .joined(separator: ", ") + "}"
        case .sequence(let items, _): "[" + items.map(\.inline).joined(separator: ", ") + "]"
        }
    }

    /// `text` as written in YAML: plain when it cannot be mistaken for anything else.
    static func quoted(_ text: String) -> String {
        let reserved: Set<String> = ["true", "false", "null", "yes", "no", "on", "off", "y", "n"]
        let isSafe =
            !text.isEmpty && !reserved.contains(text.lowercased()) && Double(text) == nil
            && text.first.map { $0.isLetter || $0 == "/" || $0 == "_" } == true
            && text.unicodeScalars.allSatisfy {
                ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
                    || "_./-".unicodeScalars.contains($0)
            }
        if isSafe { return text }
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            case "\r": escaped += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                escaped += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

// MARK: - Codable bridge

/// A coding key made at run time, for mappings whose keys are not known in advance.
struct DynamicCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension ScenarioNode: Codable {
    /// Reads any JSON-like value; numbers and Booleans become plain scalars.
    init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: DynamicCodingKey.self) {
            self = .mapping(
                try keyed.allKeys.map {
                    Entry(
                        key: $0.stringValue, value: try keyed.decode(ScenarioNode.self, forKey: $0))
                }, isFlow: false)
        } else if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [ScenarioNode] = []
            while !unkeyed.isAtEnd { items.append(try unkeyed.decode(ScenarioNode.self)) }
            self = .sequence(items, isFlow: true)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                self = .null
            } else if let value = try? single.decode(Bool.self) {
                self = .scalar("\(value)", isPlain: true)
            } else if let value = try? single.decode(Int.self) {
                self = .scalar("\(value)", isPlain: true)
            } else if let value = try? single.decode(Double.self) {
                self = .scalar("\(value)", isPlain: true)
            } else {
                self = .scalar(try single.decode(String.self), isPlain: false)
            }
        }
    }

    /// Writes plain scalars as the Boolean or number they spell, other scalars as strings.
    func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .scalar(let text, let isPlain):
            var single = encoder.singleValueContainer()
            if isPlain, let value = Bool(text) {
                try single.encode(value)
            } else if isPlain, let value = Int(text) {
                try single.encode(value)
            } else if isPlain, let value = Double(text) {
                try single.encode(value)
            } else {
                try single.encode(text)
            }
        case .mapping(let entries, _):
            var keyed = encoder.container(keyedBy: DynamicCodingKey.self)
            for entry in entries {
                try keyed.encode(entry.value, forKey: DynamicCodingKey(stringValue: entry.key))
            }
        case .sequence(let items, _):
            var unkeyed = encoder.unkeyedContainer()
            for item in items { try unkeyed.encode(item) }
        }
    }
}
