#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A CURVE key file that cannot be used: the file and the reason.
public struct CurveKeyFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String { "\(path): \(reason)" }
}

/// The key files of a federation (`maestro keys` writes them): one Z85 key each, 40
/// characters, surrounding whitespace ignored. One reader for every command that takes one.
public enum CurveKeyFile {
    /// The key in the file at `path`; `what` names it in the error ("secret key").
    public static func read(_ path: String, what: String) throws(CurveKeyFileError) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CurveKeyFileError(path: path, reason: "cannot read the \(what)")
        }
        let key = trimmingWhitespace(text)
        guard key.count == 40 else {
            throw CurveKeyFileError(
                path: path, reason: "not a CURVE key (expected 40 Z85 characters)")
        }
        return key
    }

    /// The key pair of the secret key in the file at `path`.
    public static func keyPair(secretKeyFile path: String) throws(CurveKeyFileError) -> CurveKeyPair
    {
        let key = try read(path, what: "secret key")
        do {
            return try CurveKeyPair(secretKey: key)
        } catch {
            throw CurveKeyFileError(path: path, reason: "\(error)")
        }
    }

    /// `text` without its leading and trailing whitespace and newlines (what Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` does, which the board client cannot
    /// link).
    static func trimmingWhitespace(_ text: String) -> String {
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
            let last = text.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(text[first...last])
    }
}
