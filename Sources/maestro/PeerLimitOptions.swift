import ArgumentParser
import CPlatform
import Transport

/// What one peer may cost a coordinator (`maestro coordinator`, `maestro fleet`): see
/// `docs/security.md`, "Bounded per peer".
struct PeerLimitOptions: ParsableArguments {
    @Option(
        name: .customLong("max-connections"),
        help:
            "Close TCP connections beyond this many open at once (default: the open-file limit less 256)."
    )
    var maxConnections: Int?

    @Option(
        name: .customLong("max-connections-per-address"),
        help:
            "Close TCP connections beyond this many from one source address (default: half of --max-connections)."
    )
    var maxConnectionsPerAddress: Int?

    @Option(
        name: .customLong("peer-queue-mib"),
        help:
            "Drop a connection that has not taken this many MiB of frames queued for it (default: 4; never below the scenario's largest TRAIN plus 2 MiB)."
    )
    var peerQueueMiB: Int?

    @Option(
        name: .customLong("handshake-timeout"),
        help:
            "Close a connection that has not finished its handshake within this many seconds (default: 5)."
    )
    var handshakeTimeout: Double?

    /// The limits, defaults filled in; a value out of range names its option.
    func serverLimits() throws -> ServerLimits {
        var limits = ServerLimits()
        if let maxConnections {
            guard maxConnections >= 1 else {
                throw ValidationError(
                    "--max-connections must be at least 1 (got \(maxConnections))")
            }
            limits.maximumConnections = maxConnections
            limits.maximumConnectionsPerAddress = max(1, maxConnections / 2)
        }
        if let maxConnectionsPerAddress {
            guard (1...limits.maximumConnections).contains(maxConnectionsPerAddress) else {
                throw ValidationError(
                    "--max-connections-per-address must be in 1…\(limits.maximumConnections) (got \(maxConnectionsPerAddress))"
                )
            }
            limits.maximumConnectionsPerAddress = maxConnectionsPerAddress
        }
        if let peerQueueMiB {
            guard (1...4096).contains(peerQueueMiB) else {
                throw ValidationError("--peer-queue-mib must be in 1…4096 (got \(peerQueueMiB))")
            }
            limits.queuedBytesPerConnection = peerQueueMiB << 20
        }
        if let handshakeTimeout {
            guard handshakeTimeout.isFinite, (0.1...600).contains(handshakeTimeout) else {
                throw ValidationError(
                    "--handshake-timeout must be in 0.1…600 seconds (got \(handshakeTimeout))")
            }
            limits.handshakeInterval = .milliseconds(Int64((handshakeTimeout * 1000).rounded()))
        }
        return limits
    }
}

/// Makes the allocator give blocks of 1 MiB and more back to the system when they are freed,
/// so that a coordinator's resident memory follows the frames it holds.
///
/// `maestro` keeps blocks up to 256 MiB on the heap and trims it only above 512 MiB (see
/// `Entry.main`: training reuses its large activation buffers every step). A coordinator's
/// large blocks are frames, many of them a peer's: kept, a flood of 8 MiB probes would leave
/// the heap at its high-water mark for the rest of the run. Frames of a MiB and more cost an
/// `mmap` and a `munmap` each (tens of microseconds); the coordinator's evaluation buffers,
/// page faults once per round.
func returnLargeBuffersToTheSystem() {
    maestro_return_large_allocations(1 << 20)
}
