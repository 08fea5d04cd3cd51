import Fleet
import Transport

/// A registered client as the coordinator knows it.
struct ClientRecord {
    var id: UInt32
    var peer: PeerID
    var tierIndex: Int
    var sampleCount: Int
    var nonce: UInt64
    /// The compute speed it reported at registration (GFLOP/s; 0 when it gave none).
    var reportedGflops: Float = 0
    /// The CURVE key its registration was authenticated with (`nil` in plaintext).
    var key: String? = nil
    /// False once its connection is known closed (until it registers again).
    var connected = true
}

extension ClientRecord {
    /// The speed the virtual clock uses for this client: the one it reported, when that is a
    /// plausible figure (0.001–100 000 GFLOP/s) other than its tier's, else the tier's
    /// (`nil`). A simulated fleet's clients report their tier's figure, so nothing changes.
    func capability(tier: Scenario.Tier) -> Double? {
        let reported = Double(reportedGflops)
        guard reported.isFinite, (0.001...100_000).contains(reported),
            abs(reported - tier.gflops) > 1e-6 * tier.gflops
        else { return nil }
        return reported
    }
}

/// The registered clients by ID, with the indices a frame needs (by peer, by nonce), so that
/// handling a frame costs O(1) however large the population; iteration is in ID order without
/// a sort.
///
/// Fleet IDs (`0..<fleetSize`, a simulated fleet's indices) live in an array; the IDs above,
/// assigned to devices that asked for none, in a dictionary.
struct ClientTable {
    let fleetSize: Int
    private var fleet: [ClientRecord?] = []
    private var others: [UInt32: ClientRecord] = [:]
    private var byPeer: [PeerID: UInt32] = [:]
    private var byNonce: [UInt64: UInt32] = [:]
    private(set) var count = 0
    /// The lowest unregistered fleet index, and the lowest unregistered ID above the fleet:
    /// IDs are never removed, so each only moves up (amortised O(1) per insert).
    private var firstFreeInFleet: UInt32 = 0
    private var firstFreeAboveFleet: UInt32

    init(fleetSize: Int) {
        self.fleetSize = fleetSize
        firstFreeAboveFleet = UInt32(clamping: fleetSize)
    }

    init(fleetSize: Int, records: some Sequence<ClientRecord>) {
        self.init(fleetSize: fleetSize)
        for record in records { insert(record) }
    }

    subscript(id: UInt32) -> ClientRecord? {
        if Int(id) < fleetSize { return Int(id) < fleet.count ? fleet[Int(id)] : nil }
        return others[id]
    }

    var isEmpty: Bool { count == 0 }

    /// Adds a client, or replaces the record of its ID (a re-registration).
    mutating func insert(_ record: ClientRecord) {
        if let previous = self[record.id] {
            if byPeer[previous.peer] == previous.id { byPeer[previous.peer] = nil }
            if byNonce[previous.nonce] == previous.id { byNonce[previous.nonce] = nil }
        } else {
            count += 1
        }
        if Int(record.id) < fleetSize {
            let index = Int(record.id)
            if index >= fleet.count {
                fleet.append(contentsOf: repeatElement(nil, count: index + 1 - fleet.count))
            }
            fleet[index] = record
        } else {
            others[record.id] = record
        }
        byPeer[record.peer] = record.id
        byNonce[record.nonce] = record.id
        while Int(firstFreeInFleet) < fleetSize, self[firstFreeInFleet] != nil {
            firstFreeInFleet += 1
        }
        while firstFreeAboveFleet < UInt32.max, self[firstFreeAboveFleet] != nil {
            firstFreeAboveFleet += 1
        }
    }

    /// The ID for a device that asks for none, below `bound` (the population bound): the
    /// lowest free ID above the fleet's indices, so that the fleet's own members find theirs
    /// free, else the lowest free fleet index; `nil` when every ID below `bound` is taken.
    func lowestFreeID(below bound: Int) -> UInt32? {
        if Int(firstFreeAboveFleet) < bound { return firstFreeAboveFleet }
        if Int(firstFreeInFleet) < min(fleetSize, bound) { return firstFreeInFleet }
        return nil
    }

    /// Records that a client's connection is known closed.
    mutating func markDisconnected(_ id: UInt32) {
        if Int(id) < fleetSize {
            if Int(id) < fleet.count { fleet[Int(id)]?.connected = false }
        } else {
            others[id]?.connected = false
        }
    }

    /// The client whose latest registration came from `peer`.
    func id(of peer: PeerID) -> UInt32? { byPeer[peer] }

    /// The client registered by the process with this nonce.
    func id(ofNonce nonce: UInt64) -> UInt32? { byNonce[nonce] }

    /// The largest registered ID.
    var largestID: UInt32? {
        if let other = others.keys.max() { return other }
        return fleet.lastIndex(where: { $0 != nil }).map(UInt32.init)
    }

    /// Every record in ID order.
    func forEach(_ body: (ClientRecord) -> Void) {
        for record in fleet { if let record { body(record) } }
        for id in others.keys.sorted() { body(others[id]!) }
    }

    /// Every registered ID in order.
    var ids: [UInt32] {
        var ids: [UInt32] = []
        ids.reserveCapacity(count)
        forEach { ids.append($0.id) }
        return ids
    }
}
