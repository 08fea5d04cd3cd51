import Federation
import Transport

/// Which worker hosts which share of a simulated fleet: a pure table the coordinator's driver
/// consults when a HELLO arrives on a worker's control channel.
///
/// The fleet is split into `slots` shares; share `s` holds the clients `i` with
/// `i mod slots == s`, so every share has clients of every tier. The split is the
/// coordinator's (`--workers N`) or, when it has none, the one the first worker declares
/// (`maestro worker --slot I --slots N`, as Slurm's `SLURM_PROCID`/`SLURM_NTASKS` or a
/// Kubernetes indexed Job give it); every worker must then agree. A worker that names a share
/// gets it even if another process held it (a restarted worker, or a rescheduled pod, takes its
/// share back; the previous holder's clients are replaced as they re-register); a worker that
/// asks for any share gets a free one.
struct WorkerRegistry {
    struct Holder: Equatable {
        var peer: PeerID
        var nonce: UInt64
        var host: String
    }

    /// The split, once known.
    private(set) var slots: Int?
    private(set) var holders: [Int: Holder] = [:]
    /// The fleet size: a split with more shares than clients leaves shares empty.
    let fleetSize: Int

    init(slots: Int?, fleetSize: Int) {
        precondition(slots.map { $0 >= 1 } ?? true, "a split needs at least one share")
        self.slots = slots
        self.fleetSize = fleetSize
    }

    /// The share a HELLO gets, or why it gets none.
    enum Answer: Equatable {
        case assigned(slot: Int, slots: Int, takeover: Holder?)
        case refused(String)
    }

    mutating func hello(_ hello: WorkerHello, from peer: PeerID) -> Answer {
        let connection = peer.connection
        if let declared = hello.slots.map(Int.init) {
            if let slots, slots != declared {
                return .refused(
                    "this fleet is split into \(slots) worker shares, the worker asked for a split into \(declared)"
                )
            }
            if slots == nil {
                guard declared <= max(fleetSize, 1) else {
                    return .refused(
                        "a split into \(declared) shares for a fleet of \(fleetSize) clients leaves shares empty"
                    )
                }
                slots = declared
            }
        }
        guard let slots else {
            return .refused(
                "this coordinator has no worker split: start the worker with --slot I --slots N, or the coordinator with --workers N"
            )
        }
        // The same process asking again keeps what it has.
        if let held = holders.first(where: { $0.value.nonce == hello.instanceNonce }) {
            if hello.slot == nil || hello.slot.map(Int.init) == held.key {
                holders[held.key]?.peer = connection
                return .assigned(slot: held.key, slots: slots, takeover: nil)
            }
        }
        let slot: Int
        if let asked = hello.slot.map(Int.init) {
            guard asked < slots else {
                return .refused("share \(asked) does not exist: the fleet has \(slots) shares")
            }
            slot = asked
        } else {
            guard let free = (0..<slots).first(where: { holders[$0] == nil }) else {
                return .refused("all \(slots) worker shares are taken")
            }
            slot = free
        }
        let previous = holders[slot]
        holders[slot] = Holder(peer: connection, nonce: hello.instanceNonce, host: hello.host)
        return .assigned(slot: slot, slots: slots, takeover: previous)
    }

    /// Fleet indices of share `slot`.
    func clients(ofSlot slot: Int) -> StrideTo<Int> {
        stride(from: slot, to: fleetSize, by: slots ?? 1)
    }
}
