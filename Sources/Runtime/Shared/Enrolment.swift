/// Which CURVE keys may connect, and which client each may register as.
///
/// An allow-list file has one entry per line, `KEY [ID [TIER]]` or `KEY worker` (`# ` starts a
/// comment): the Z85 public key (which may itself contain and start with `#`), then optionally
/// the client ID the key is bound to and the tier it must register in, or the word `worker`.
/// A key bound to an ID registers only as that ID, and that ID only from that key; a device key
/// without an ID registers as any ID no key is bound to. A worker key hosts a share of a
/// simulated fleet: its clients register on its channels, and it never registers as a device;
/// a device key is never admitted as a worker.
public struct Enrolment: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var clientID: UInt32?
        public var tier: String?
        /// The key is a worker's (`KEY worker`): it hosts virtual clients, it is no device.
        public var isWorker: Bool

        public init(clientID: UInt32? = nil, tier: String? = nil, isWorker: Bool = false) {
            self.clientID = clientID
            self.tier = tier
            self.isWorker = isWorker
        }

        /// A worker's entry.
        public static let worker = Entry(isWorker: true)
    }

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case badLine(path: String, line: Int, reason: String)

        public var description: String {
            switch self {
            case .badLine(let path, let line, let reason): "\(path):\(line): \(reason)"
            }
        }
    }

    /// Entries by Z85 public key.
    public private(set) var entries: [String: Entry] = [:]
    private var keyByID: [UInt32: String] = [:]

    public init() {}

    /// Every allowed key.
    public var keys: Set<String> { Set(entries.keys) }

    /// Adds a key; `nil` if the key is listed already or its ID is bound to another key.
    public mutating func add(key: String, entry: Entry) -> String? {
        guard entries[key] == nil else { return "key \(key) is listed twice" }
        if let id = entry.clientID {
            if let other = keyByID[id] { return "client \(id) is bound to key \(other) already" }
            keyByID[id] = key
        }
        entries[key] = entry
        return nil
    }

    /// Reads an allow-list file's text (`path` names it in errors).
    public static func parse(_ text: String, path: String) throws(Error) -> Enrolment {
        var enrolment = Enrolment()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            // Z85 keys may contain and even start with '#': a comment is a lone "#", a first
            // field starting with '#' that is no key (not 40 characters), or any later field
            // starting with '#'.
            var fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if let comment = fields.indices.first(where: { index in
                fields[index] == "#"
                    || (fields[index].hasPrefix("#") && (index > 0 || fields[index].count != 40))
            }) {
                fields.removeSubrange(comment...)
            }
            guard !fields.isEmpty else { continue }
            func fail(_ reason: String) -> Error {
                .badLine(path: path, line: number + 1, reason: reason)
            }
            guard fields.count <= 3 else {
                throw fail("expected 'KEY [ID [TIER]]' or 'KEY worker', got \(fields.count) fields")
            }
            let key = String(fields[0])
            guard key.utf8.count == 40, key.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
            else {
                throw fail("'\(key)' is not a CURVE public key (40 Z85 characters)")
            }
            var entry = Entry()
            if fields.count > 1, fields[1] == "worker" {
                guard fields.count == 2 else {
                    throw fail("a worker key is bound to no ID or tier: expected 'KEY worker'")
                }
                entry = .worker
            } else if fields.count > 1 {
                guard let id = UInt32(fields[1]), id < UInt32.max else {
                    throw fail("'\(fields[1])' is not a client ID (0…\(UInt32.max - 1))")
                }
                entry.clientID = id
            }
            if fields.count > 2 { entry.tier = String(fields[2]) }
            if let problem = enrolment.add(key: key, entry: entry) { throw fail(problem) }
        }
        return enrolment
    }

    /// The entry of the key that authenticated a connection (`nil` in plaintext, or for a key
    /// that is not listed).
    public func entry(forKey key: String?) -> Entry? {
        key.flatMap { entries[$0] }
    }

    /// The key bound to a client ID, if any.
    public func key(boundTo id: UInt32) -> String? { keyByID[id] }
}
