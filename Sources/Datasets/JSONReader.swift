#if canImport(Glibc)
import Glibc
#endif

/// Bytes handed over a chunk at a time: a file read in pieces, or bytes already in memory.
protocol ByteChunks: AnyObject {
    /// The next non-empty run of bytes, or `nil` at the end.
    func nextChunk() throws(DatasetError) -> [UInt8]?
}

/// Bytes already in memory, handed over as one chunk.
final class InMemoryChunks: ByteChunks {
    private var bytes: [UInt8]?

    init(_ bytes: [UInt8]) { self.bytes = bytes.isEmpty ? nil : bytes }

    func nextChunk() -> [UInt8]? {
        defer { bytes = nil }
        return bytes
    }
}

/// A pull parser of JSON text (RFC 8259) that holds one chunk of its input at a time.
///
/// The caller walks the document it expects (`expect`, `nextElement`, `nextMember`,
/// `readString`, `readFloat`) and skips what it does not need (`skipValue`); nothing builds a
/// tree. Errors are `DatasetError.malformedJSON` with the byte offset. Python's `json`
/// module writes `NaN`, `Infinity` and `-Infinity`, which JSON lacks: `readFloat` returns them
/// as such so that the caller can reject them with its own context. Strings are capped at
/// ``maximumStringBytes`` and nesting at ``maximumDepth``, so no input can make it allocate
/// without bound or recurse deeply.
struct JSONReader<Source: ByteChunks> {
    /// Longest string accepted (keys, writer names).
    static var maximumStringBytes: Int { 4096 }
    /// Deepest nesting `skipValue` follows.
    static var maximumDepth: Int { 64 }

    let path: String
    private let source: Source
    private var chunk: [UInt8] = []
    private var index = 0
    private var chunkStart = 0
    /// The characters of the number being read, NUL-terminated for `strtof`.
    private var token = [CChar](repeating: 0, count: 72)

    init(_ source: Source, path: String) {
        self.source = source
        self.path = path
    }

    /// Bytes consumed so far.
    var offset: Int { chunkStart + index }

    /// A `malformedJSON` error at the current offset.
    func failure(_ reason: String) -> DatasetError {
        .malformedJSON(path: path, byteOffset: offset, reason: reason)
    }

    /// The next byte without consuming it, or `nil` at the end of the input.
    @inline(__always)
    private mutating func peek() throws(DatasetError) -> UInt8? {
        if index < chunk.count { return chunk[index] }
        return try refill()
    }

    /// Moves to the next non-empty chunk; returns its first byte, or `nil` at the end.
    @inline(never)
    private mutating func refill() throws(DatasetError) -> UInt8? {
        while let next = try source.nextChunk() {
            chunkStart += chunk.count
            chunk = next
            index = 0
            if !chunk.isEmpty { return chunk[0] }
        }
        return nil
    }

    /// The next byte that is not white space, not consumed.
    mutating func peekSignificant() throws(DatasetError) -> UInt8? {
        while let byte = try peek() {
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return byte }
            index += 1
        }
        return nil
    }

    /// Consumes `byte` (after white space), or throws naming `what` was expected.
    mutating func expect(_ byte: UInt8, _ what: String) throws(DatasetError) {
        guard let found = try peekSignificant() else {
            throw failure("the text ends where \(what) was expected")
        }
        guard found == byte else { throw failure("expected \(what), found \(describe(found))") }
        index += 1
    }

    /// Throws unless only white space is left.
    mutating func expectEnd() throws(DatasetError) {
        if let found = try peekSignificant() {
            throw failure("unexpected \(describe(found)) after the end of the document")
        }
    }

    /// Whether the array or object being walked has another element.
    ///
    /// Consumes the comma before it, or the `closing` bracket after the last. `isFirst`
    /// starts `true`.
    mutating func nextElement(closing: UInt8, isFirst: inout Bool) throws(DatasetError) -> Bool {
        guard var found = try peekSignificant() else {
            throw failure("the text ends inside a \(closing == 0x5D ? "list" : "mapping")")
        }
        if found == closing && isFirst {
            index += 1
            return false
        }
        if !isFirst {
            if found == closing {
                index += 1
                return false
            }
            guard found == 0x2C else {
                let bracket = Character(Unicode.Scalar(closing))
                throw failure("expected ',' or '\(bracket)', found \(describe(found))")
            }
            index += 1
            guard let after = try peekSignificant() else {
                throw failure("the text ends after ','")
            }
            found = after
            if found == closing {
                throw failure("a ',' before '\(Character(Unicode.Scalar(closing)))'")
            }
        }
        isFirst = false
        return true
    }

    /// The key of the object's next member (its ':' consumed), or `nil` after the last.
    mutating func nextMember(isFirst: inout Bool) throws(DatasetError) -> String? {
        guard try nextElement(closing: 0x7D, isFirst: &isFirst) else { return nil }
        let key = try readString()
        try expect(0x3A, "':' after a key")
        return key
    }

    /// A string value.
    mutating func readString() throws(DatasetError) -> String {
        try expect(0x22, "a string")
        var bytes: [UInt8] = []
        while true {
            guard let byte = try peek() else { throw failure("the text ends inside a string") }
            index += 1
            switch byte {
            case 0x22:
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw failure("a string that is not UTF-8")
                }
                return text
            case 0x5C:
                guard let escape = try peek() else {
                    throw failure("the text ends inside a string")
                }
                index += 1
                switch escape {
                case 0x22, 0x5C, 0x2F: bytes.append(escape)
                case 0x62: bytes.append(0x08)
                case 0x66: bytes.append(0x0C)
                case 0x6E: bytes.append(0x0A)
                case 0x72: bytes.append(0x0D)
                case 0x74: bytes.append(0x09)
                case 0x75:
                    var scalar = try readHexQuad()
                    if (0xD800..<0xDC00).contains(scalar) {
                        try expect(0x5C, "the low half of a surrogate pair")
                        try expect(0x75, "the low half of a surrogate pair")
                        let low = try readHexQuad()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw failure("an unpaired surrogate in a string")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let character = Unicode.Scalar(scalar) else {
                        throw failure("an unpaired surrogate in a string")
                    }
                    bytes += Array(String(Character(character)).utf8)
                default: throw failure("an unknown escape \\\(describe(escape)) in a string")
                }
            case 0..<0x20:
                throw failure("a control character \(describe(byte)) inside a string")
            default:
                bytes.append(byte)
            }
            if bytes.count > Self.maximumStringBytes {
                throw failure("a string longer than \(Self.maximumStringBytes) bytes")
            }
        }
    }

    private mutating func readHexQuad() throws(DatasetError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = try peek() else { throw failure("the text ends inside a string") }
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw failure("a \\u escape with the non-hex digit \(describe(byte))")
            }
            index += 1
            value = value << 4 | digit
        }
        return value
    }

    /// What the characters of a token spell.
    private enum TokenKind {
        /// `-? int`, JSON's integers.
        case integer
        /// `-? int frac? exp?` with a fraction or an exponent.
        case number
        /// Anything else: `NaN`, `Infinity`, `-Infinity` (Python's) or a mistake.
        case other
    }

    /// Reads the characters of a number (or a word such as `NaN`) into `token`, checking
    /// JSON's number grammar `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` as it goes.
    private mutating func readToken() throws(DatasetError) -> (count: Int, kind: TokenKind) {
        guard let first = try peekSignificant() else {
            throw failure("the text ends where a number was expected")
        }
        guard first == 0x2D || (0x30...0x39).contains(first) || first == 0x4E || first == 0x49
        else { throw failure("expected a number, found \(describe(first))") }
        // States: 0 start, 1 after '-', 2 a leading 0, 3 integer digits, 4 after '.',
        // 5 fraction digits, 6 after 'e', 7 after the exponent's sign, 8 exponent digits,
        // 9 not a JSON number.
        var state = 0
        var count = 0
        while let byte = try peek() {
            let isDigit = byte &- 0x30 < 10
            let isLetter = (byte | 0x20) &- 0x61 < 26
            guard isDigit || isLetter || byte == 0x2B || byte == 0x2D || byte == 0x2E else {
                break
            }
            let isExponent = byte | 0x20 == 0x65
            switch state {
            case 0: state = byte == 0x2D ? 1 : byte == 0x30 ? 2 : isDigit ? 3 : 9
            case 1: state = byte == 0x30 ? 2 : isDigit ? 3 : 9
            case 2: state = byte == 0x2E ? 4 : isExponent ? 6 : 9
            case 3: state = isDigit ? 3 : byte == 0x2E ? 4 : isExponent ? 6 : 9
            case 4: state = isDigit ? 5 : 9
            case 5: state = isDigit ? 5 : isExponent ? 6 : 9
            case 6: state = isDigit ? 8 : byte == 0x2B || byte == 0x2D ? 7 : 9
            case 7, 8: state = isDigit ? 8 : 9
            default: break
            }
            guard count < token.count - 1 else {
                throw failure("a number longer than \(token.count - 1) characters")
            }
            token[count] = CChar(bitPattern: byte)
            count += 1
            index += 1
        }
        token[count] = 0
        switch state {
        case 2, 3: return (count, .integer)
        case 5, 8: return (count, .number)
        default: return (count, .other)
        }
    }

    /// The token as text, for messages.
    private func tokenText(_ count: Int) -> String {
        String(decoding: token[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A number, rounded to the nearest `Float` (`±infinity` past its range); `NaN`,
    /// `Infinity` and `-Infinity` come back as themselves.
    mutating func readFloat() throws(DatasetError) -> Float {
        let (count, kind) = try readToken()
        guard kind != .other else {
            switch tokenText(count) {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: throw failure("expected a number, found \(tokenText(count))")
            }
        }
        // Only a token of JSON's grammar reaches strtof (which also takes hex and "inf").
        return token.withUnsafeBufferPointer { strtof($0.baseAddress!, nil) }
    }

    /// An integer (digits with an optional '-'), or the text of a number that is not one
    /// (`3.0`, `1e3`, `NaN`, past `Int`'s range).
    mutating func readInteger() throws(DatasetError) -> Result<Int, NonInteger> {
        let (count, kind) = try readToken()
        let text = tokenText(count)
        if kind == .integer, let value = Int(text) { return .success(value) }
        if kind == .other && !["NaN", "Infinity", "-Infinity"].contains(text) {
            throw failure("expected a number, found \(text)")
        }
        return .failure(NonInteger(text: text))
    }

    /// A number that is not an integer, by its text.
    struct NonInteger: Error {
        let text: String
    }

    /// Skips one value of any kind, checking that it is well formed.
    mutating func skipValue(depth: Int = 0) throws(DatasetError) {
        guard depth < Self.maximumDepth else {
            throw failure("lists or mappings nested more than \(Self.maximumDepth) deep")
        }
        guard let first = try peekSignificant() else {
            throw failure("the text ends where a value was expected")
        }
        switch first {
        case 0x22: _ = try readString()
        case 0x5B:
            index += 1
            var isFirst = true
            while try nextElement(closing: 0x5D, isFirst: &isFirst) {
                try skipValue(depth: depth + 1)
            }
        case 0x7B:
            index += 1
            var isFirst = true
            while try nextMember(isFirst: &isFirst) != nil { try skipValue(depth: depth + 1) }
        case 0x74: try expectWord("true")
        case 0x66: try expectWord("false")
        case 0x6E: try expectWord("null")
        default: _ = try readFloat()
        }
    }

    private mutating func expectWord(_ word: String) throws(DatasetError) {
        for expected in word.utf8 {
            guard let byte = try peek(), byte == expected else {
                throw failure("expected \(word)")
            }
            index += 1
        }
    }

    /// A byte for messages: `'x'` when printable, else its code.
    func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte)
            ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }
}
