import Foundation
import RunRecords
import Runtime

/// The executable and the source tree it was built in: what a run's provenance records.
public enum SourceTree {
    /// This executable's path (`/proc/self/exe`, else `argv[0]`).
    public static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
    }

    /// The root of the git clone this executable was built in (`.build/…/maestro` inside
    /// it), `nil` for an installed binary.
    public static func root(ofExecutable executable: String = executable) -> String? {
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<6 {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent(".git").path) {
                return folder.path
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// The git commit of the source tree this executable was built in, read from `.git`
    /// without running git (a worktree's `.git` file is followed); `nil` for an installed
    /// binary.
    public static func commit(ofExecutable executable: String = executable) -> String? {
        guard let root = root(ofExecutable: executable) else { return nil }
        var git = URL(fileURLWithPath: root).appendingPathComponent(".git")
        if let link = try? String(contentsOf: git, encoding: .utf8), link.hasPrefix("gitdir: ") {
            let path = link.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)
            git =
                path.hasPrefix("/")
                ? URL(fileURLWithPath: path)
                : URL(fileURLWithPath: root).appendingPathComponent(path)
        }
        guard
            let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8)
        else { return nil }
        var folders = [git]
        if let common = try? String(
            contentsOf: git.appendingPathComponent("commondir"), encoding: .utf8)
        {
            folders.append(
                git.appendingPathComponent(common.trimmingCharacters(in: .whitespacesAndNewlines))
                    .standardizedFileURL)
        }
        return commit(head: head, gitDirectories: folders.map(\.path))
    }

    /// The commit a `HEAD` file names: itself when detached, else its branch's loose ref or
    /// its line in `packed-refs`, looked for in each git folder in turn.
    static func commit(head: String, gitDirectories: [String]) -> String? {
        let line = head.trimmingCharacters(in: .whitespacesAndNewlines)
        guard line.hasPrefix("ref: ") else { return line }
        let ref = String(line.dropFirst(5))
        for folder in gitDirectories.map({ URL(fileURLWithPath: $0) }) {
            if let value = try? String(
                contentsOf: folder.appendingPathComponent(ref), encoding: .utf8)
            {
                return value.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let packed =
                (try? String(
                    contentsOf: folder.appendingPathComponent("packed-refs"), encoding: .utf8))
                ?? ""
            if let found = packed.split(separator: "\n").first(where: { $0.hasSuffix(" " + ref) }) {
                return String(found.prefix { $0 != " " })
            }
        }
        return nil
    }

    /// The provenance of a run started now by `commandLine` (this process's, by default).
    public static func provenance(
        version: String, commandLine: [String] = CommandLine.arguments
    ) -> RunSummary.Provenance {
        RunSummary.Provenance(
            version: version, commit: commit(), commandLine: commandLine,
            startedAt: ISO8601DateFormatter().string(from: Date()),
            host: ProcessInfo.processInfo.hostName)
    }
}

/// `text` as one shell word: as it is when it is plain, in single quotes otherwise.
public func shellQuoted(_ text: String) -> String {
    let plain =
        !text.isEmpty
        && text.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "-_./:=@%+,".unicodeScalars.contains($0)
        }
    return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
