import Datasets
import Federation
import Transport

/// The worker processes of a simulated fleet as the coordinator admits and uses them: who is a
/// worker (admission), which share of the fleet each hosts (the split), which worker trains
/// which client's TRAIN (dispatch), and whose training rows each worker has been given.
///
/// A worker is a principal of its own. Under CURVE with an allow-list only a key enrolled as a
/// worker is one (a device's key never is); otherwise the HELLO must carry the run's worker
/// secret. Anyone else learns nothing (a short refusal) and changes nothing (not the split,
/// not a share). The fleet is split into `slots` shares; share `s` holds the clients `i` with
/// `i mod slots == s`, so every share has clients of every tier. The split is the
/// coordinator's (`--workers N`) or, when it has none, the one the first admitted worker
/// declares; every worker must then agree. A share held by a live connection is never handed
/// to another one: a restarted worker gets its share back once its old connection is known
/// closed.
///
/// Pure: the coordinator's machine owns it and feeds it HELLOs, closed connections, TRAINs to
/// dispatch and the frames that answer them.
struct WorkerPool: Sendable {
    struct Holder: Equatable {
        var connection: PeerID
        var nonce: UInt64
        var host: String
    }

    /// The share a HELLO gets, or why it gets none.
    enum Answer: Equatable {
        /// `renewed`: the connection held the share already (a repeated HELLO).
        case assigned(slot: Int, slots: Int, renewed: Bool)
        /// `admitted`: whether the peer proved it is a worker (a refusal of one that did not
        /// says nothing else); `retryable`: the same HELLO may succeed later.
        case refused(String, admitted: Bool, retryable: Bool = false)
    }

    /// The reply to a HELLO that proves nothing: shorter than the smallest HELLO, so a forged
    /// HELLO is never answered with more bytes than it carried.
    static let notAWorker = "not a worker"

    /// The fleet size: a split with more shares than clients leaves shares empty.
    let fleetSize: Int
    /// The plaintext worker secret (`nil`: no plaintext worker is admitted).
    let secret: String?
    /// Under CURVE with an allow-list: which keys are workers'.
    let enrolment: Enrolment?
    /// The split, once known.
    private(set) var slots: Int?
    private(set) var holders: [Int: Holder] = [:]
    private var slotOfConnection: [PeerID: Int] = [:]
    /// Who trains which TRAIN.
    private(set) var dispatch = TrainingDispatch<SendTicket>()
    /// Every client's training rows (`nil` inside: generated data), read on first use.
    private var partition: [[UInt32]]??
    private let partitionRows: @Sendable () throws -> [[Int]]?
    /// Clients of other shares whose rows each worker connection has been sent.
    private var rowsGiven: [PeerID: Set<Int>] = [:]

    init(
        slots: Int?, fleetSize: Int, secret: String?, enrolment: Enrolment?,
        partitionRows: @escaping @Sendable () throws -> [[Int]]?
    ) {
        precondition(slots.map { $0 >= 1 } ?? true, "a split needs at least one share")
        self.slots = slots
        self.fleetSize = fleetSize
        self.secret = secret
        self.enrolment = enrolment
        self.partitionRows = partitionRows
    }

    /// Whether a HELLO with `credential`, on a connection authenticated with `key`, comes from
    /// a worker.
    func admits(key: String?, credential: String) -> Bool {
        if let enrolment { return enrolment.entry(forKey: key)?.isWorker == true }
        guard let secret, !secret.isEmpty else { return false }
        return constantTimeEqual(Array(secret.utf8), Array(credential.utf8))
    }

    /// Whether `connection` holds a share.
    func isWorker(_ connection: PeerID) -> Bool { slotOfConnection[connection] != nil }

    /// Whether the worker on `connection` hosts fleet client `index`.
    func hosts(_ connection: PeerID, client index: Int) -> Bool {
        guard let slot = slotOfConnection[connection], let slots else { return false }
        return index >= 0 && index < fleetSize && index % slots == slot
    }

    mutating func hello(_ hello: WorkerHello, from peer: PeerID, key: String?) -> Answer {
        guard admits(key: key, credential: hello.credential) else {
            return .refused(Self.notAWorker, admitted: false)
        }
        let connection = peer.connection
        if let declared = hello.slots.map(Int.init) {
            if let slots, slots != declared {
                return .refused(
                    "this fleet is split into \(slots) worker shares, the worker asked for a split into \(declared)",
                    admitted: true)
            }
            if slots == nil {
                guard declared <= max(fleetSize, 1) else {
                    return .refused(
                        "a split into \(declared) shares for a fleet of \(fleetSize) clients leaves shares empty",
                        admitted: true)
                }
                slots = declared
            }
        }
        guard let slots else {
            return .refused(
                "this coordinator has no worker split: start the worker with --slot I --slots N, or the coordinator with --workers N",
                admitted: true)
        }
        if let held = slotOfConnection[connection] {
            // The holder asking again (its assignment was lost, or it restarted behind the
            // same connection) keeps what it has.
            guard hello.slot.map({ Int($0) == held }) ?? true else {
                return .refused(
                    "this connection hosts share \(held); it cannot also host share \(hello.slot!)",
                    admitted: true)
            }
            holders[held] = Holder(
                connection: connection, nonce: hello.instanceNonce, host: hello.host)
            return .assigned(slot: held, slots: slots, renewed: true)
        }
        let slot: Int
        if let asked = hello.slot.map(Int.init) {
            guard asked < slots else {
                return .refused(
                    "share \(asked) does not exist: the fleet has \(slots) shares", admitted: true)
            }
            guard holders[asked] == nil else {
                return .refused(
                    "share \(asked) is held by a live worker; it is free again once that worker's connection closes",
                    admitted: true, retryable: true)
            }
            slot = asked
        } else {
            guard let free = (0..<slots).first(where: { holders[$0] == nil }) else {
                return .refused("all \(slots) worker shares are taken", admitted: true)
            }
            slot = free
        }
        holders[slot] = Holder(connection: connection, nonce: hello.instanceNonce, host: hello.host)
        slotOfConnection[connection] = slot
        dispatch.add(worker: connection)
        return .assigned(slot: slot, slots: slots, renewed: false)
    }

    /// The fleet index a hosted client's channel names: its index in decimal ASCII, nothing
    /// else (no sign, no leading zero).
    static func client(ofChannel channel: [UInt8]) -> Int? {
        guard (1...10).contains(channel.count), channel.allSatisfy({ (0x30...0x39).contains($0) }),
            channel.count == 1 || channel[0] != 0x30,
            let index = Int(String(decoding: channel, as: UTF8.self)), index < Int(UInt32.max)
        else { return nil }
        return index
    }

    /// Fleet indices of share `slot`.
    func clients(ofSlot slot: Int) -> StrideTo<Int> {
        stride(from: slot, to: fleetSize, by: slots ?? 1)
    }

    /// Every client's rows, read once (`nil`: generated data, no rows).
    private mutating func allRows() throws -> [[UInt32]]? {
        if let partition { return partition }
        let rows = try partitionRows().map { all in all.map { $0.map(UInt32.init) } }
        partition = .some(rows)
        return rows
    }

    /// What the worker holding `slot` needs: the scenario as run and its own clients' rows.
    mutating func assignment(
        slot: Int, slots: Int, runID: UInt64, scenario: String
    ) throws -> WorkerAssignment {
        let rows = try allRows().map { all in clients(ofSlot: slot).map { all[$0] } } ?? []
        return WorkerAssignment(
            slot: UInt32(slot), slots: UInt32(slots), runID: runID, scenario: scenario, rows: rows)
    }

    /// The rows the worker on `connection` must be sent before it trains client `index`, if it
    /// does not host that client and has not had them yet.
    mutating func rows(
        forGuest index: Int, on connection: PeerID
    ) throws -> WorkerRows? {
        guard !hosts(connection, client: index), !rowsGiven[connection, default: []].contains(index),
            let all = try allRows(), all.indices.contains(index)
        else { return nil }
        rowsGiven[connection, default: []].insert(index)
        return WorkerRows(client: UInt32(index), rows: all[index])
    }

    /// A worker connection is gone: its share is free, no task goes to it any more. Returns
    /// the home peers of the clients whose TRAIN it held.
    mutating func remove(_ connection: PeerID) -> [PeerID] {
        rowsGiven[connection] = nil
        if let slot = slotOfConnection.removeValue(forKey: connection) { holders[slot] = nil }
        return dispatch.remove(worker: connection)
    }

    mutating func enqueue(_ task: TrainingDispatch<SendTicket>.Task) { dispatch.enqueue(task) }

    mutating func next(currentRound: Int) -> (
        task: TrainingDispatch<SendTicket>.Task, target: PeerID
    )? {
        dispatch.next(currentRound: currentRound)
    }

    /// A frame arrived from `peer`: if it answers a dispatched task, that worker is free again.
    mutating func arrived(from peer: PeerID) { dispatch.arrived(from: peer) }

    /// Sending the task for `home`'s channel to `target` failed: the worker is dropped (its
    /// share freed) and the task queued again. Returns the home peers of the other tasks
    /// that worker held.
    mutating func sendFailed(home: PeerID, target: PeerID) -> [PeerID] {
        let task = dispatch.task(routedTo: target)
        let stranded = remove(target.connection)
        if let task { dispatch.requeue(task) }
        return stranded.filter { $0 != home }
    }
}

/// Whether two byte strings are equal, in a time that depends only on their lengths.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0
}

/// The plaintext worker secret: how a coordinator tells its workers from other peers when
/// there are no CURVE keys.
public enum WorkerSecret {
    /// The environment variable a worker reads it from (kept off the command line, which
    /// every user of the machine can read in `ps`).
    public static let environmentVariable = "MAESTRO_WORKER_SECRET"

    /// A new secret: 32 random bytes as 64 hexadecimal digits.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        return String((0..<64).map { _ in digits[Int(generator.next() % 16)] })
    }

    /// Why `text` cannot be a secret, or `nil`: 16 to 255 printable ASCII characters.
    public static func problem(with text: String) -> String? {
        guard (16...255).contains(text.utf8.count) else {
            return "a worker secret has 16 to 255 characters, this one \(text.utf8.count)"
        }
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return "a worker secret is printable ASCII without spaces"
        }
        return nil
    }
}
