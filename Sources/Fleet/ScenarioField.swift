// Fields: how one scalar or list of a scenario is read and checked.

/// The reason a value was rejected.
struct FieldProblem: Error {
    var reason: String
}

/// Reads one node as a typed, range-checked value.
struct Field<Value> {
    let read: (ScenarioNode) -> Result<Value, FieldProblem>

    func map<Other>(_ transform: @escaping (Value) -> Other) -> Field<Other> {
        Field<Other> { node in read(node).map(transform) }
    }
}

extension ScenarioNode {
    /// The scalar's text, whatever its style.
    var text: String? {
        if case .scalar(let text, _) = self { text } else { nil }
    }

    /// The text of a plain scalar, the only kind that may spell a number or a Boolean.
    var plainText: String? {
        if case .scalar(let text, true) = self { text } else { nil }
    }

    /// What was found, for "wrong type" messages: quoted strings say so.
    var foundDescription: String {
        if case .scalar(let text, false) = self { return "the string \"\(text)\"" }
        return kindDescription
    }
}

/// An interval of real numbers, for range checks and their messages.
struct Interval {
    var lower: Double?
    var lowerIncluded = true
    var upper: Double?
    var upperIncluded = true

    static let positive = Interval(lower: 0, lowerIncluded: false)
    static let nonNegative = Interval(lower: 0)
    static let unit = Interval(lower: 0, upper: 1)
    static let unitOpenClosed = Interval(lower: 0, lowerIncluded: false, upper: 1)
    static let unitClosedOpen = Interval(lower: 0, upper: 1, upperIncluded: false)
    static func atLeast(_ bound: Double) -> Interval { Interval(lower: bound) }
    /// Sent to clients as a 32-bit float: a larger value would arrive as infinity.
    static let positiveFloat = Interval(
        lower: 0, lowerIncluded: false, upper: Scenario.maximumFloat)
    static let nonNegativeFloat = Interval(lower: 0, upper: Scenario.maximumFloat)
    /// GFLOP/s and Mbit/s: a microcontroller to a data centre, so that the virtual clock's
    /// times stay finite.
    static let speed = Interval(lower: 0.001, upper: 1e9)
    /// Milliseconds: at most an hour.
    static let latency = Interval(lower: 0, upper: 3_600_000)
    /// Virtual seconds: at most a year.
    static let seconds = Interval(lower: 0, lowerIncluded: false, upper: 31_536_000)

    func contains(_ x: Double) -> Bool {
        if let lower, lowerIncluded ? x < lower : x <= lower { return false }
        if let upper, upperIncluded ? x > upper : x >= upper { return false }
        return true
    }

    /// "in (0, 1]", "greater than 0", "at least 1".
    var phrase: String {
        switch (lower, upper) {
        case (let lower?, let upper?):
            "in \(lowerIncluded ? "[" : "(")\(format(lower)), \(format(upper))\(upperIncluded ? "]" : ")")"
        case (let lower?, nil):
            lowerIncluded ? "at least \(format(lower))" : "greater than \(format(lower))"
        case (nil, let upper?):
            upperIncluded ? "at most \(format(upper))" : "less than \(format(upper))"
        case (nil, nil): "finite"
        }
    }
}

extension Field where Value == Double {
    /// A finite number (plain scalar) inside `interval`.
    static func number(_ interval: Interval) -> Field {
        Field { node in
            guard let text = node.plainText, let value = Double(text), value.isFinite else {
                return .failure(
                    .init(reason: "wrong type: expected a number, found \(node.foundDescription)"))
            }
            guard interval.contains(value) else {
                return .failure(
                    .init(reason: "out of range: must be \(interval.phrase), found \(text)"))
            }
            return .success(value)
        }
    }
}

extension Field where Value == Int {
    /// An integer (plain scalar) of at least `lower` and, where the wire or the code carries
    /// it in fewer bits, at most `upper`.
    static func integer(atLeast lower: Int, atMost upper: Int? = nil) -> Field {
        Field { node in
            guard let text = node.plainText, let value = Int(text) else {
                return .failure(
                    .init(reason: "wrong type: expected an integer, found \(node.foundDescription)")
                )
            }
            guard value >= lower else {
                return .failure(
                    .init(reason: "out of range: must be at least \(lower), found \(text)"))
            }
            if let upper, value > upper {
                return .failure(
                    .init(reason: "out of range: must be in [\(lower), \(upper)], found \(text)"))
            }
            return .success(value)
        }
    }
}

extension Field where Value == Int {
    /// A number of clients: `1...Scenario.maximumClients`.
    static var count: Field { integer(atLeast: 1, atMost: Scenario.maximumClients) }
    /// A round number or a number of rounds: `1...Scenario.maximumRounds`.
    static var round: Field { integer(atLeast: 1, atMost: Scenario.maximumRounds) }
}

extension Field where Value == UInt64 {
    /// A seed: an integer in 0...2⁶⁴−1.
    static var seed: Field {
        Field { node in
            guard let text = node.plainText, Int64(text) != nil || UInt64(text) != nil else {
                return .failure(
                    .init(reason: "wrong type: expected an integer, found \(node.foundDescription)")
                )
            }
            guard let value = UInt64(text) else {
                return .failure(
                    .init(reason: "out of range: must be in [0, 2^64 - 1], found \(text)"))
            }
            return .success(value)
        }
    }
}

extension Field where Value == Bool {
    /// `true` or `false` (plain scalar).
    static var boolean: Field {
        Field { node in
            switch node.plainText {
            case "true", "True", "TRUE": .success(true)
            case "false", "False", "FALSE": .success(false)
            default:
                .failure(
                    .init(
                        reason: "wrong type: expected true or false, found \(node.foundDescription)"
                    ))
            }
        }
    }
}

extension Field where Value == String {
    /// Any non-empty scalar, quoted or not.
    static var nonEmptyText: Field {
        Field { node in
            guard let text = node.text else {
                return .failure(
                    .init(reason: "wrong type: expected a string, found \(node.kindDescription)"))
            }
            guard !text.isEmpty else { return .failure(.init(reason: "must not be empty")) }
            return .success(text)
        }
    }

    /// A name usable in file names: ASCII letters, digits, `.`, `_`, `-`.
    static var identifier: Field {
        Field { node in
            guard let text = node.text else {
                return .failure(
                    .init(reason: "wrong type: expected a name, found \(node.kindDescription)"))
            }
            let allowed = text.unicodeScalars.allSatisfy {
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0)
                        || "._-".unicodeScalars.contains($0))
            }
            guard !text.isEmpty, allowed else {
                return .failure(
                    .init(reason: "invalid name \"\(text)\": use letters, digits, '.', '_' and '-'")
                )
            }
            guard text.utf8.count <= Scenario.maximumNameBytes else {
                return .failure(
                    .init(
                        reason:
                            "too long: \(text.utf8.count) bytes; a name may have at most \(Scenario.maximumNameBytes) (what REGISTER carries)"
                    ))
            }
            return .success(text)
        }
    }

    /// One of `choices`, spelled exactly; a near miss gets a suggestion.
    static func choice(_ choices: [String]) -> Field {
        Field { node in
            guard let text = node.text else {
                return .failure(
                    .init(
                        reason:
                            "wrong type: expected one of \(choices.joined(separator: ", ")), found \(node.kindDescription)"
                    ))
            }
            guard choices.contains(text) else {
                var reason =
                    "unknown value '\(text)'; expected one of \(choices.joined(separator: ", "))"
                if let suggestion = closestMatch(to: text, among: choices) {
                    reason += " (did you mean '\(suggestion)'?)"
                }
                return .failure(.init(reason: reason))
            }
            return .success(text)
        }
    }
}

extension Field where Value: RawRepresentable<String> & CaseIterable {
    /// A case of `type`, by raw value.
    static func choice(_ type: Value.Type) -> Field {
        Field<String>.choice(type.allCases.map(\.rawValue)).map { Value(rawValue: $0)! }
    }
}

extension Field {
    /// A sequence whose every element reads as `element`; reports the first bad element.
    static func list<Element>(of element: Field<Element>) -> Field where Value == [Element] {
        Field { node in
            guard case .sequence(let items, _) = node else {
                return .failure(
                    .init(reason: "wrong type: expected a sequence, found \(node.kindDescription)"))
            }
            var values: [Element] = []
            for (index, item) in items.enumerated() {
                switch element.read(item) {
                case .success(let value): values.append(value)
                case .failure(let problem):
                    return .failure(.init(reason: "element \(index): \(problem.reason)"))
                }
            }
            return .success(values)
        }
    }
}

/// `x` as written in YAML: integral values without a fraction (`2`, not `2.0`).
func format(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return "\(x)"
}
