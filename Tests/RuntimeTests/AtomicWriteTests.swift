import Foundation
@testable import RunRecords
import Testing

@testable import Runtime

@Suite("Atomic writes", .serialized)
struct AtomicWriteTests {
    @Test(
        "A file is created with the mode asked for (a secret key is never world-readable), and replaced whole"
    )
    func modes() throws {
        let folder = NSTemporaryDirectory() + "maestro-atomic-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let previous = umask(0o022)
        defer { umask(previous) }
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
                ?? -1
        }
        try RunRecorder.writeAtomically([1, 2, 3], to: "\(folder)/secret.key", mode: 0o600)
        #expect(try mode("\(folder)/secret.key") == 0o600)
        try RunRecorder.writeAtomically([4], to: "\(folder)/public.pub")
        #expect(try mode("\(folder)/public.pub") == 0o644)
        try RunRecorder.writeAtomically([5, 6], to: "\(folder)/secret.key", mode: 0o600)
        #expect(FileManager.default.contents(atPath: "\(folder)/secret.key") == Data([5, 6]))
        // No temporary file is left beside it.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == [
                "public.pub", "secret.key",
            ])
    }

    /// A scratch folder, and one outside it holding the file an attacker aims at.
    static func folders(_ label: String) throws -> (shared: String, victim: String) {
        let base = NSTemporaryDirectory() + "maestro-\(label)-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        for folder in ["\(base)/shared", "\(base)/victim"] {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true)
        }
        return ("\(base)/shared", "\(base)/victim")
    }

    @Test(
        "A symbolic link planted at the old predictable temporary name is not followed: the file it points to keeps its bytes"
    )
    func plantedAtPredictableName() throws {
        let (shared, victim) = try Self.folders("planted-predictable")
        defer {
            try? FileManager.default.removeItem(
                atPath: (shared as NSString).deletingLastPathComponent)
        }
        try Data("victim".utf8).write(to: URL(fileURLWithPath: "\(victim)/target"))
        // What `.NAME.tmp-PID` used to be: another user plants links to their own files
        // (an existing one, and one that does not exist yet).
        try FileManager.default.createSymbolicLink(
            atPath: "\(shared)/.secret.key.tmp-\(getpid())", withDestinationPath: "\(victim)/target"
        )
        try FileManager.default.createSymbolicLink(
            atPath: "\(shared)/.public.pub.tmp-\(getpid())", withDestinationPath: "\(victim)/new")
        try RunRecorder.writeAtomically(
            Array("SECRET".utf8), to: "\(shared)/secret.key", mode: 0o600)
        try RunRecorder.writeAtomically(Array("PUBLIC".utf8), to: "\(shared)/public.pub")
        #expect(FileManager.default.contents(atPath: "\(victim)/target") == Data("victim".utf8))
        #expect(!FileManager.default.fileExists(atPath: "\(victim)/new"))
        #expect(FileManager.default.contents(atPath: "\(shared)/secret.key") == Data("SECRET".utf8))
        #expect(FileManager.default.contents(atPath: "\(shared)/public.pub") == Data("PUBLIC".utf8))
    }

    @Test(
        "A link or file planted at the very name drawn is skipped (O_EXCL | O_NOFOLLOW) and the next name used; all names taken is an error"
    )
    func plantedAtDrawnName() throws {
        let (shared, victim) = try Self.folders("planted-drawn")
        defer {
            try? FileManager.default.removeItem(
                atPath: (shared as NSString).deletingLastPathComponent)
        }
        let planted = ["\(shared)/.k.tmp-guessed-link", "\(shared)/.k.tmp-guessed-file"]
        try FileManager.default.createSymbolicLink(
            atPath: planted[0], withDestinationPath: "\(victim)/new")
        try Data("planted".utf8).write(to: URL(fileURLWithPath: planted[1]))
        var drawn: [String] = []
        try RunRecorder.writeAtomically(
            Array("SECRET".utf8), to: "\(shared)/k", mode: 0o600,
            names: { path in
                let name = drawn.count < planted.count ? planted[drawn.count] : path + ".fresh"
                drawn.append(name)
                return name
            })
        #expect(drawn.count == 3)
        #expect(!FileManager.default.fileExists(atPath: "\(victim)/new"))
        #expect(FileManager.default.contents(atPath: planted[1]) == Data("planted".utf8))
        #expect(FileManager.default.contents(atPath: "\(shared)/k") == Data("SECRET".utf8))
        #expect(throws: RunRecorder.Error.self) {
            try RunRecorder.writeAtomically(
                [1], to: "\(shared)/k", mode: 0o600, names: { _ in planted[0] })
        }
        #expect(FileManager.default.contents(atPath: "\(shared)/k") == Data("SECRET".utf8))
    }

    @Test(
        "A secret key's file is 0600 from its creation, before any byte is written, whatever the umask",
        arguments: [0o000, 0o022, 0o277] as [mode_t])
    func secretModeAsCreated(umaskValue: mode_t) throws {
        let (shared, _) = try Self.folders("secret-mode-\(umaskValue)")
        defer {
            try? FileManager.default.removeItem(
                atPath: (shared as NSString).deletingLastPathComponent)
        }
        let previous = umask(umaskValue)
        defer { umask(previous) }
        var modeAsCreated: mode_t?
        var sizeAsCreated: Int?
        try RunRecorder.writeAtomically(
            Array("SECRET".utf8), to: "\(shared)/secret.key", mode: 0o600,
            names: RunRecorder.temporaryName(for:),
            created: { temporary in
                var status = stat()
                guard lstat(temporary, &status) == 0 else { return }
                modeAsCreated = status.st_mode & 0o777
                sizeAsCreated = Int(status.st_size)
            })
        #expect(modeAsCreated == 0o600)
        #expect(sizeAsCreated == 0)
        var status = stat()
        #expect(stat("\(shared)/secret.key", &status) == 0 && status.st_mode & 0o777 == 0o600)
    }

    @Test("Temporary names are unpredictable: 64 random bits, none repeated")
    func unpredictableNames() {
        let names = (0..<100).map { _ in RunRecorder.temporaryName(for: "/x/run/summary.json") }
        #expect(Set(names).count == 100)
        #expect(names.allSatisfy { $0.hasPrefix("/x/run/.summary.json.tmp-") })
        #expect(!names.contains("/x/run/.summary.json.tmp-\(getpid())"))
    }
}
