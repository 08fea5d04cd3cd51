import Foundation
import Testing

/// The documentation stays true: its links resolve, the README's command lines parse, and the
/// README stays a few screens with the two-command quick start `.ci/run` relies on.
@Suite("Documentation")
struct DocsTests {
    /// README.md, CHANGELOG.md, docs/*.md, Scenarios/README.md and every Sources/**/README.md.
    static func documents() throws -> [URL] {
        let manager = FileManager.default
        var files = ["README.md", "CHANGELOG.md", "Scenarios/README.md"].map {
            repositoryRoot.appendingPathComponent($0)
        }
        let docs = repositoryRoot.appendingPathComponent("docs")
        files += try manager.contentsOfDirectory(atPath: docs.path).sorted()
            .filter { $0.hasSuffix(".md") }.map { docs.appendingPathComponent($0) }
        let sources = repositoryRoot.appendingPathComponent("Sources")
        let enumerator = manager.enumerator(atPath: sources.path)
        while let path = enumerator?.nextObject() as? String {
            if (path as NSString).lastPathComponent == "README.md" {
                files.append(sources.appendingPathComponent(path))
            }
        }
        return files
    }

    @Test("Every relative link of the documentation resolves to a file and, with #, a heading")
    func linksResolve() throws {
        let documents = try Self.documents()
        #expect(documents.count >= 12, "found \(documents.map(\.lastPathComponent))")
        var problems: [String] = []
        for document in documents {
            let text = try String(contentsOf: document, encoding: .utf8)
            problems += Self.brokenLinks(in: text, of: document)
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test("A broken link and a missing anchor are reported")
    func brokenLinksAreFound() throws {
        let readme = repositoryRoot.appendingPathComponent("README.md")
        let text = """
            [fine](docs/usage.md) [gone](docs/nowhere.md) [bad anchor](docs/usage.md#no-such-heading)
            [fine anchor](docs/usage.md#a-simulated-fleet) `[in code](docs/nowhere.md)` [web](https://example.com)
            """
        #expect(
            Self.brokenLinks(in: text, of: readme) == [
                "README.md: docs/nowhere.md (no such file)",
                "README.md: docs/usage.md#no-such-heading (no such heading)",
            ])
    }

    @Test("GitHub-style heading slugs")
    func slugs() {
        #expect(
            Self.slug("Reports: charts and savings at equal accuracy")
                == "reports-charts-and-savings-at-equal-accuracy")
        #expect(Self.slug("`metrics.jsonl`") == "metricsjsonl")
        #expect(
            Self.slug("### `shrinking`, `evaluation`, `security`, `simulation`")
                == "shrinking-evaluation-security-simulation")
        #expect(Self.slug("1. Build the image") == "1-build-the-image")
    }

    @Test("README.md is at most 15 KB and its quick start has exactly two commands")
    func readmeShape() throws {
        let readme = try String(
            contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.utf8.count <= 15_000, "README.md is \(readme.utf8.count) bytes")
        let commands = Self.commands(inSection: "Quick start", of: readme)
        #expect(commands.count == 2, "quick start commands: \(commands)")
        let ci = try String(
            contentsOf: repositoryRoot.appendingPathComponent(".ci/run"), encoding: .utf8)
        #expect(commands.count == 2 && ci.contains(commands[1]), ".ci/run runs the second command")
    }

    @Test("Every maestro command line in README.md's code blocks uses flags its command has")
    func readmeCommandsParse() throws {
        let readme = try String(
            contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let invocations = Self.maestroInvocations(in: readme)
        #expect(invocations.count >= 10, "found \(invocations.count) maestro command lines")
        var help: [[String]: String] = [:]
        for invocation in invocations {
            if help[invocation.command] == nil {
                let result = try maestro(invocation.command + ["--help"], timeout: 60)
                #expect(
                    result.status == 0,
                    "maestro \(invocation.command.joined(separator: " ")) --help: \(result.error)")
                help[invocation.command] = result.output
            }
            let missing = Self.unknownFlags(invocation.flags, help: help[invocation.command]!)
            #expect(
                missing.isEmpty,
                "\(invocation.line): \(missing) not in maestro \(invocation.command.joined(separator: " ")) --help"
            )
        }
    }

    @Test("A misspelled flag is caught")
    func misspelledFlag() throws {
        let invocations = Self.maestroInvocations(
            in: "```sh\nmaestro eval m.maestro \\\n    --rank-fractions 0.5 --jsn\n```\n")
        #expect(invocations.map(\.command) == [["eval"]])
        #expect(invocations.first?.flags == ["--rank-fractions", "--jsn"])
        let help = try maestro(["eval", "--help"], timeout: 60).output
        #expect(Self.unknownFlags(invocations.first?.flags ?? [], help: help) == ["--jsn"])
    }

    // MARK: Markdown

    /// Text with fenced code blocks and inline code removed (links there are not links).
    static func prose(_ text: String) -> String {
        var lines: [Substring] = []
        var inFence = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                inFence.toggle()
                continue
            }
            if !inFence { lines.append(line) }
        }
        return lines.joined(separator: "\n").replacingOccurrences(
            of: "`[^`\n]*`", with: "code", options: .regularExpression)
    }

    /// Problems of the relative links of `text`, a document at `file`, as "FILE: TARGET (reason)".
    static func brokenLinks(in text: String, of file: URL) -> [String] {
        let prose = prose(text)
        let pattern = try! NSRegularExpression(pattern: #"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#)
        let name = file.path.replacingOccurrences(of: repositoryRoot.path + "/", with: "")
        var problems: [String] = []
        let range = NSRange(prose.startIndex..., in: prose)
        for match in pattern.matches(in: prose, range: range) {
            let target = String(prose[Range(match.range(at: 1), in: prose)!])
            if target.contains("://") || target.hasPrefix("mailto:") { continue }
            let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
            let path = String(parts[0])
            let destination =
                path.isEmpty
                ? file : file.deletingLastPathComponent().appendingPathComponent(path).standardized
            var isDirectory: ObjCBool = false
            guard
                FileManager.default.fileExists(atPath: destination.path, isDirectory: &isDirectory)
            else {
                problems.append("\(name): \(target) (no such file)")
                continue
            }
            guard parts.count == 2 else { continue }
            let anchors =
                isDirectory.boolValue
                ? [] : headingSlugs((try? String(contentsOf: destination, encoding: .utf8)) ?? "")
            if !anchors.contains(String(parts[1])) {
                problems.append("\(name): \(target) (no such heading)")
            }
        }
        return problems
    }

    /// The anchors GitHub gives a document's headings (duplicates get -1, -2, …).
    static func headingSlugs(_ text: String) -> Set<String> {
        var seen: [String: Int] = [:]
        var slugs: Set<String> = []
        var inFence = false
        for line in text.split(separator: "\n") {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                inFence.toggle()
                continue
            }
            guard !inFence, line.hasPrefix("#") else { continue }
            let base = slug(String(line))
            let count = seen[base, default: 0]
            seen[base] = count + 1
            slugs.insert(count == 0 ? base : "\(base)-\(count)")
        }
        return slugs
    }

    /// GitHub's slug of a heading: lower case, punctuation dropped, spaces to hyphens.
    static func slug(_ heading: String) -> String {
        let text = heading.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces).lowercased()
        var slug = ""
        for scalar in text.unicodeScalars {
            if CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == "_" {
                slug.unicodeScalars.append(scalar)
            } else if scalar == " " {
                slug.append("-")
            }
        }
        return slug
    }

    /// Command lines of the code blocks of the `## TITLE` section, `\` continuations joined,
    /// comments and blank lines left out.
    static func commands(inSection title: String, of text: String) -> [String] {
        var section: [Substring] = []
        var inside = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                inside = line.dropFirst(3).trimmingCharacters(in: .whitespaces) == title
            } else if inside {
                section.append(line)
            }
        }
        return commandLines(section.joined(separator: "\n"))
    }

    /// Every command line inside the fenced code blocks of `text`, continuations joined.
    static func commandLines(_ text: String) -> [String] {
        var commands: [String] = []
        var inFence = false
        var pending = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") {
                inFence.toggle()
                continue
            }
            guard inFence else { continue }
            if pending.isEmpty && (line.isEmpty || line.hasPrefix("#")) { continue }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
            } else {
                commands.append(pending + line)
                pending = ""
            }
        }
        return commands
    }

    struct Invocation {
        var line: String
        /// The subcommand path, e.g. ["fleet"] or ["scenario", "validate"].
        var command: [String]
        var flags: [String]
    }

    /// Commands whose modes are subcommands (`maestro bench profile …`; `maestro bench` alone
    /// runs its default, `all`).
    static let nestedCommands: Set<String> = ["scenario", "keys", "bench", "model"]

    /// The `maestro …` invocations in the code blocks of `text` (also `.build/release/maestro`
    /// and after `&&`, `;`, `|` or an environment assignment).
    static func maestroInvocations(in text: String) -> [Invocation] {
        var invocations: [Invocation] = []
        for line in commandLines(text) {
            let code = line.replacingOccurrences(
                of: #"\s#.*$"#, with: "", options: .regularExpression)
            for part in code.components(separatedBy: "&&").flatMap({
                $0.components(separatedBy: ";")
            })
            .flatMap({ $0.components(separatedBy: " | ") }) {
                let words = part.split(whereSeparator: \.isWhitespace).map {
                    $0.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                }
                guard
                    let start = words.firstIndex(where: {
                        $0 == "maestro" || $0.hasSuffix("/maestro")
                    }),
                    start + 1 < words.count
                else { continue }
                var command = [words[start + 1]]
                if nestedCommands.contains(command[0]), start + 2 < words.count,
                    !words[start + 2].hasPrefix("-")
                {
                    command.append(words[start + 2])
                }
                let flags = words[(start + 1)...].compactMap { word -> String? in
                    guard word.hasPrefix("--") else { return nil }
                    return String(word.prefix { $0 != "=" })
                }
                invocations.append(Invocation(line: line, command: command, flags: flags))
            }
        }
        return invocations
    }

    /// The flags that do not appear as options in a `--help` text.
    static func unknownFlags(_ flags: [String], help: String) -> [String] {
        let known = Set(
            help.split(whereSeparator: {
                $0.isWhitespace || $0 == "," || $0 == "[" || $0 == "]" || $0 == "|"
            })
            .filter { $0.hasPrefix("--") }.map {
                String($0.prefix { $0 != "=" && $0 != ">" && $0 != "<" })
            })
        return flags.filter { !known.contains($0) }
    }
}
