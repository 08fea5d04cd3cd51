/// Text a peer sent (a worker's host name, a tier name, an error message), made safe to
/// write into one line of a log or a terminal.
///
/// A peer chooses every byte of such text: a newline would forge a log line of its own, an
/// escape sequence (`ESC [ 2 J`) would drive the operator's terminal, a bidirectional
/// override would make a line read differently from what it says, and 4 KB of text would
/// bury the line it sits in. So every control character (C0, DEL, C1), line or paragraph
/// separator, bidirectional control and replacement character (what invalid UTF-8 decodes
/// to) is written as a visible escape (`\n`, `\u{1B}`, `\u{202E}`), a backslash as `\\`,
/// and the result is cut at ``maximumLength`` characters with an ellipsis and the original
/// length.
public enum PeerText {
    /// The most characters of peer text one log line carries (a host or tier name fits).
    public static let maximumLength = 256

    /// `text` escaped and capped for a log line: ASCII-printable and ordinary Unicode text
    /// comes back unchanged.
    public static func escaped(_ text: String, maximumLength: Int = maximumLength) -> String {
        // Printable ASCII without a backslash, short enough: nothing to escape or cut.
        if text.utf8.count <= maximumLength,
            text.utf8.allSatisfy({ (0x20..<0x7F).contains($0) && $0 != 0x5C })
        {
            return text
        }
        var result = ""
        var length = 0
        for scalar in text.unicodeScalars {
            let piece = escape(scalar)
            guard length + piece.unicodeScalars.count <= maximumLength else {
                return result + "… (\(text.utf8.count) bytes)"
            }
            result += piece
            length += piece.unicodeScalars.count
        }
        return result
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        case 0x5C: return "\\\\"
        case 0x00..<0x20, 0x7F..<0xA0,  // C0, DEL, C1
            0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069,  // bidirectional controls
            0x2028, 0x2029,  // line and paragraph separators
            0xFFFD:  // what invalid UTF-8 decodes to
            return "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        default: return String(scalar)
        }
    }
}
