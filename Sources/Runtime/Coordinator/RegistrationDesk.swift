import Federation
import Fleet
import Transport

/// Who may register as which client: the registration and enrolment policy, apart from the
/// machine's bookkeeping. A pure decision on a REGISTER frame; the machine applies it.
struct RegistrationDesk {
    let scenario: Scenario
    /// Which CURVE keys register as which clients (`nil`: any authenticated peer, any ID).
    let enrolment: Enrolment?
    /// At most this many clients register (the scenario's fleet, or `--max-clients`).
    let populationBound: Int

    /// A registration the desk accepts.
    struct Admission {
        let id: UInt32
        let tierIndex: Int
        /// The client's record before this registration (it registered before).
        let previous: ClientRecord?
    }

    /// A registration the desk refuses, and what the error reply says.
    struct Refusal: Error {
        let reason: RejectionReason
        let message: String
    }

    /// The client ID and tier `registration` gets from `peer` (proving `key`), or why not.
    ///
    /// `clients` are those registered, `workers` the admitted worker processes (a channel's
    /// client registers only through the worker hosting it), `unresponsive` the clients known
    /// gone (their ID may be taken over).
    func admit(
        _ registration: Registration, from peer: PeerID, key: String?, clients: ClientTable,
        workers: WorkerPool, unresponsive: Set<UInt32>
    ) -> Result<Admission, Refusal> {
        let refuse = { (reason: RejectionReason, message: String) in
            Result<Admission, Refusal>.failure(Refusal(reason: reason, message: message))
        }
        // Escaped for a refusal's message only (an admitted tier is one of the scenario's).
        var tierName: String { PeerText.escaped(registration.tierName) }
        guard let tierIndex = scenario.tiers.firstIndex(where: { $0.name == registration.tierName })
        else {
            let names = scenario.tiers.map(\.name).joined(separator: ", ")
            return refuse(.unknownTier, "unknown tier '\(tierName)'; this run has \(names)")
        }
        let entry = enrolment?.entry(forKey: key)
        if enrolment != nil && entry == nil {
            // With an allow-list the transport admits only listed keys; a frame without one
            // (or with another) is not from an enrolled device.
            return refuse(.notEnrolled, "this connection's key is not enrolled")
        }
        if let bound = entry?.clientID, let requested = registration.requestedClientID,
            requested != bound
        {
            return refuse(
                .keyIDMismatch, "this key is enrolled as client \(bound), not client \(requested)")
        }
        if let tier = entry?.tier, tier != registration.tierName {
            return refuse(
                .keyTierMismatch, "this key is enrolled in tier '\(tier)', not '\(tierName)'")
        }
        var hostedIndex: UInt32?
        if let channel = peer.channel {
            // A channel of a multiplexed connection: only an admitted worker's own clients
            // register there, each under its fleet index.
            guard let index = WorkerPool.client(ofChannel: channel),
                workers.hosts(peer.connection, client: index),
                registration.requestedClientID == UInt32(index)
            else {
                return refuse(
                    .notHosted,
                    "a client registers on a channel only through the admitted worker hosting it, "
                        + "under its index")
            }
            // A hosted client is one of the scenario's: its tier is the scenario's, not the
            // worker's word.
            if let home = scenario.tierRanges.firstIndex(where: { $0.contains(index) }),
                home != tierIndex
            {
                return refuse(
                    .wrongTier,
                    "client \(index) of this fleet is in tier '\(scenario.tiers[home].name)', "
                        + "not '\(tierName)'")
            }
            hostedIndex = UInt32(index)
        } else if entry?.isWorker == true {
            return refuse(
                .workerKey, "a worker's key hosts clients on its channels; it is no device")
        }
        let id: UInt32
        if let held = clients.id(of: peer) {
            // A connection (or a worker's channel) is one device: it holds one client ID,
            // whatever nonce it sends now (a new process behind the same identity included).
            if let requested = registration.requestedClientID ?? entry?.clientID,
                requested != held
            {
                return refuse(
                    .peerHasID,
                    "this connection is registered as client \(held); it cannot also be client "
                        + "\(requested)")
            }
            id = held
        } else if let assigned = hostedIndex ?? entry?.clientID
            ?? clientID(for: registration, clients: clients)
        {
            id = assigned
        } else if clients.count >= populationBound {
            return refuse(.populationFull, populationFullMessage)
        } else {
            return refuse(.noClientID, "no client ID left to assign; give one")
        }
        if Int(id) >= populationBound {
            return refuse(
                .idOutOfRange,
                "client IDs in this run are 0…\(populationBound - 1); \(id) is outside them")
        }
        if let owner = enrolment?.key(boundTo: id), owner != key {
            return refuse(.idBoundToOtherKey, "client \(id) is enrolled under another key")
        }
        let previous = clients[id]
        if let previous, previous.peer != peer {
            // Another peer claims a registered ID (with its nonce or not: a nonce travels in
            // the clear). It may take it over when the first connection is known gone, when
            // it is the same connection (a worker's channel), or when its key is enrolled as
            // that ID (the key proves who it is); never from a live connection on a claim.
            let proven = entry?.clientID == id
            guard
                proven || !previous.connected || unresponsive.contains(id)
                    || previous.peer.connection == peer.connection
            else {
                return refuse(
                    .idTaken,
                    "client \(id) is registered from another connection that is still alive")
            }
        }
        if previous == nil && clients.count >= populationBound {
            return refuse(.populationFull, populationFullMessage)
        }
        return .success(Admission(id: id, tierIndex: tierIndex, previous: previous))
    }

    /// The ID a registering client gets: its own again for a repeated REGISTER from the same
    /// process (same nonce), the one it asks for (a fleet member, or a restarted one, under
    /// its fleet index), or else the lowest free ID below `populationBound` (above the fleet's
    /// indices first: see `ClientTable.lowestFreeID(below:)`).
    ///
    /// A requested ID is returned as asked: the caller refuses one at or above the bound
    /// (`id_out_of_range`). `nil` when every ID below the bound is taken.
    func clientID(for registration: Registration, clients: ClientTable) -> UInt32? {
        if let existing = clients.id(ofNonce: registration.instanceNonce) { return existing }
        if let requested = registration.requestedClientID { return requested }
        return clients.lowestFreeID(below: populationBound)
    }

    private var populationFullMessage: String {
        "this run takes at most \(populationBound) clients, and has them"
    }
}
