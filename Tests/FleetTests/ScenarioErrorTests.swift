import Fleet
import Foundation
import Testing

@Suite("Scenario errors: syntax, unreadable files, messages")
struct ScenarioErrorTests {
    func syntaxError(_ yaml: String) -> (line: Int, column: Int, reason: String)? {
        do {
            _ = try Scenario.parse(yaml: yaml, path: "bad.yaml")
        } catch {
            if case .syntax(let path, let line, let column, let reason) = error, path == "bad.yaml"
            {
                return (line, column, reason)
            }
            Issue.record("expected .syntax, got \(error)")
        }
        return nil
    }

    @Test("A billion-laughs alias bomb is refused after a bounded expansion, not read into memory")
    func aliasBomb() throws {
        // Nine levels of nine aliases each expand to 9⁹ ≈ 387 million nodes.
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
            lines.append("a\(level): &a\(level) [\(refs)]")
        }
        let error = try #require(syntaxError(lines.joined(separator: "\n") + "\n"))
        #expect(error.reason.contains("expands to more than 100000 nodes"), "\(error.reason)")
    }

    @Test("Size and nesting are bounded: 1 MiB of text, 64 levels, each refused with its line")
    func sizeAndDepthLimits() throws {
        let big = "name: x\n" + String(repeating: "# padding\n", count: 110_000)
        let size = try #require(syntaxError(big))
        #expect(size.reason.contains("a scenario may have at most 1048576"), "\(size.reason)")
        let brackets = try #require(
            syntaxError("name: x\ndeep: " + String(repeating: "[", count: 65) + "\n"))
        #expect(brackets.line == 2 && brackets.reason.contains("nesting deeper than 64"))
        let dashes = try #require(
            syntaxError("name: x\n" + String(repeating: "- ", count: 65) + "x\n"))
        #expect(dashes.line == 2 && dashes.reason.contains("nesting deeper than 64"))
        // Brackets inside quotes and comments do not count.
        let quoted =
            "name: x  # " + String(repeating: "[", count: 100) + "\ntext: '"
            + String(repeating: "{", count: 100) + "'\n"
        do {
            _ = try Scenario.parse(yaml: quoted, path: "ok.yaml")
        } catch {
            if case .syntax = error { Issue.record("quoted brackets counted as nesting: \(error)") }
        }
    }

    @Test("An unclosed flow mapping is a syntax error with its line")
    func unclosedFlowMapping() throws {
        let error = try #require(
            syntaxError("name: x\nseed: 1\ndataset: {name: fashion-mnist\nrounds: 3\n"))
        #expect(error.line == 4)
        #expect(!error.reason.isEmpty)
    }

    @Test("A tab in the indentation is a syntax error at that line")
    func tabIndentation() throws {
        let error = try #require(syntaxError("name: x\ndataset:\n\tname: fashion-mnist\n"))
        #expect(error.line == 3)
        #expect(error.column == 1)
    }

    @Test("A bad indentation is a syntax error at that line")
    func badIndentation() throws {
        let error = try #require(
            syntaxError("name: x\nmodel:\n  architecture: lenet\n strategy: orderedLoD\n"))
        #expect(error.line == 4)
    }

    @Test("A duplicate key is a syntax error naming the key and its line")
    func duplicateKey() throws {
        let error = try #require(syntaxError("name: x\nseed: 1\nclients: 4\n# c\n\nseed: 2\n"))
        #expect(error.reason == "duplicate key 'seed' (first at line 2)")
        #expect(error.line == 6)
        #expect(error.column == 1)
        let nested = try #require(
            syntaxError(
                "model:\n  strategy: orderedLoD\n  architecture: mlp\ntraining:\n  strategy: x\n  strategy: y\n"
            ))
        #expect(nested.reason == "duplicate key 'strategy' (first at line 5)")
        #expect(nested.line == 6)
        #expect(nested.column == 3)
        let flow = try #require(syntaxError("model: {strategy: a, strategy: b}\n"))
        #expect(flow.line == 1)
        #expect(flow.reason == "duplicate key 'strategy' in one mapping")
    }

    @Test("Descriptions name the file: one line per problem, FILE: keyPath: reason")
    func descriptions() {
        let invalid = ScenarioError.invalid(
            path: "s.yaml",
            problems: [
                ScenarioProblem(
                    keyPath: "tiers[2].rankFraction",
                    reason: "out of range: must be in (0, 1], found 2"),
                ScenarioProblem(keyPath: "rounds", reason: "missing required key"),
            ])
        #expect(
            invalid.description
                == "s.yaml: tiers[2].rankFraction: out of range: must be in (0, 1], found 2\n"
                + "s.yaml: rounds: missing required key")
        #expect(
            ScenarioError.syntax(path: "s.yaml", line: 3, column: 7, reason: "r").description
                == "s.yaml:3:7: YAML syntax error: r")
        #expect(
            ScenarioError.unreadable(path: "s.yaml", reason: "no such file").description
                == "s.yaml: cannot read the scenario: no such file")
        #expect(invalid.path == "s.yaml")
    }

    @Test("A broken file on disk reports every problem under its own path")
    func loadReportsPath() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("fleet-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("broken.yaml")
        try minimalYAML.replacingOccurrences(of: "rounds: 3", with: "rounds: 0")
            .replacingOccurrences(of: "rankFraction: 0.25", with: "rankFraction: 2")
            .write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try Scenario.load(path: file.path)
            Issue.record("expected an error")
        } catch {
            #expect(
                error.description.split(separator: "\n") == [
                    "\(file.path): rounds: out of range: must be at least 1, found 0",
                    "\(file.path): tiers[0].rankFraction: out of range: must be in (0, 1], found 2",
                ])
        }
    }

    @Test("Missing files, directories and non-UTF-8 files are unreadable")
    func unreadable() throws {
        #expect(
            throws: ScenarioError.unreadable(path: "/nonexistent/s.yaml", reason: "no such file")
        ) {
            try Scenario.load(path: "/nonexistent/s.yaml")
        }
        let directory = FileManager.default.temporaryDirectory.path
        #expect(throws: ScenarioError.unreadable(path: directory, reason: "is a directory")) {
            try Scenario.load(path: directory)
        }
        let file = FileManager.default.temporaryDirectory
            .appendingPathComponent("fleet-tests-\(UUID().uuidString).yaml")
        try Data([0x6E, 0x61, 0xFF, 0xFE, 0x0A]).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: ScenarioError.unreadable(path: file.path, reason: "not UTF-8 text")) {
            try Scenario.load(path: file.path)
        }
    }
}
