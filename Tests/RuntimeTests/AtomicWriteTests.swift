import Foundation
import Testing

@testable import Runtime

@Suite("Atomic writes")
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
}
