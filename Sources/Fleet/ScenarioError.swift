/// One thing wrong with a scenario, at the key where it is wrong.
///
/// `keyPath` joins mapping keys with `.` and sequence positions with `[i]`, for example
/// `tiers[2].rankFraction`; a problem with the document as a whole has `keyPath` `(root)`.
public struct ScenarioProblem: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Where: `tiers[2].rankFraction`.
    public var keyPath: String
    /// Why, in a phrase: `out of range: must be in (0, 1], found 1.5`.
    public var reason: String

    public init(keyPath: String, reason: String) {
        self.keyPath = keyPath
        self.reason = reason
    }

    /// `keyPath: reason`.
    public var description: String { "\(keyPath): \(reason)" }
}

/// Why a scenario file could not become a ``Scenario``.
public enum ScenarioError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read (missing, a directory, not UTF-8, …).
    case unreadable(path: String, reason: String)
    /// The text is not YAML; `line` and `column` count from 1.
    case syntax(path: String, line: Int, column: Int, reason: String)
    /// The YAML is well formed but breaks the schema; every problem found, in schema order.
    case invalid(path: String, problems: [ScenarioProblem])

    /// The file the error is about.
    public var path: String {
        switch self {
        case .unreadable(let path, _), .syntax(let path, _, _, _), .invalid(let path, _): path
        }
    }

    /// One line per problem, each starting with the file: `FILE: keyPath: reason`,
    /// `FILE:LINE:COLUMN: reason` for syntax errors.
    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "\(path): cannot read the scenario: \(reason)"
        case .syntax(let path, let line, let column, let reason):
            "\(path):\(line):\(column): YAML syntax error: \(reason)"
        case .invalid(let path, let problems):
            problems.map { "\(path): \($0.keyPath): \($0.reason)" }.joined(separator: "\n")
        }
    }
}
