import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The coordinator's end: a ZeroMQ ROUTER socket bound to an endpoint, addressing each
/// connected client by its routing identity.
///
/// Configured with `ZMQ_ROUTER_MANDATORY` (sending to a peer that is not connected throws
/// ``TransportError/unknownPeer(_:)`` instead of dropping silently) and
/// `ZMQ_ROUTER_HANDOVER` (a client that reconnects with its identity takes it over), plus
/// the ``ZeroMQOptions``. Not `Sendable`: the owner (one actor or thread) is the only user.
///
/// Every peer is bounded by the ``ServerLimits``: `send` never blocks (`ZMQ_DONTWAIT`; the
/// queue bound is the byte budget, not `ZMQ_SNDHWM`, which is off), a connection that has
/// not taken its budget's worth of frames is dropped, connections over the caps are closed
/// as they arrive (the socket monitor's `ACCEPTED` events, with `getpeername`), and a
/// connection that has not finished its handshake within `handshakeInterval` is closed by
/// libzmq.
public final class ZeroMQServer: MessageTransport {
    /// The bound endpoint, with the port the OS chose for `tcp://host:*`.
    public let endpoint: String
    public let options: ZeroMQOptions
    public let limits: ServerLimits
    public private(set) var statistics = TransportStatistics()
    private let socket: ZeroMQSocket
    private var authenticator: ZAPAuthenticator?
    private var monitor: ZeroMQMonitor?
    /// The routing identities that have sent on each open connection (by file descriptor),
    /// so that a closed connection names its peers.
    private var identitiesByFD: [Int32: Set<[UInt8]>] = [:]
    /// The descriptor each identity last sent on: a client that reconnected (same identity,
    /// `ZMQ_ROUTER_HANDOVER`) is not reported when its old connection's close comes late.
    private var fdByIdentity: [[UInt8]: Int32] = [:]
    private var closedConnections: [PeerID] = []
    /// What libzmq holds for each routing identity (see ``QueuedBytes``).
    private var queued: [[UInt8]: QueuedBytes] = [:]
    /// Counters of closed connections whose frames libzmq has not freed yet.
    private var draining: [[UInt8]: QueuedBytes] = [:]
    /// The source address of each open TCP connection, by descriptor, and the count by address.
    private var addressByFD: [Int32: String] = [:]
    private var openByAddress: [String: Int] = [:]
    private var refusedConnections: [String] = []

    /// Binds a ROUTER socket to `address`, such as `tcp://127.0.0.1:*`.
    ///
    /// With `curve`, connections must use CURVE encryption and client keys are checked
    /// against an allow-list.
    public init(
        bindingTo address: String, options: ZeroMQOptions = ZeroMQOptions(),
        limits: ServerLimits = ServerLimits(), curve: CurveServerConfiguration? = nil,
        context: ZeroMQContext? = nil
    ) throws(TransportError) {
        let context = try ZeroMQContext.existing(context)
        let socket = try ZeroMQSocket(context: context, type: ZMQ_ROUTER, endpoint: address)
        try options.apply(to: socket)
        // What a peer may send (the options' size also bounds what this side sends).
        try socket.set(
            ZMQ_MAXMSGSIZE,
            Int64(min(options.maximumMessageSize, limits.maximumInboundFrameBytes)),
            "ZMQ_MAXMSGSIZE")
        // Queues are bounded in bytes per connection (`limits`), so bursts of small frames
        // (a worker's many clients registering) never meet a message count.
        try socket.set(ZMQ_SNDHWM, Int32(0), "ZMQ_SNDHWM")
        try socket.set(
            ZMQ_HANDSHAKE_IVL, milliseconds(limits.handshakeInterval), "ZMQ_HANDSHAKE_IVL")
        try socket.set(ZMQ_ROUTER_MANDATORY, Int32(1), "ZMQ_ROUTER_MANDATORY")
        try socket.set(ZMQ_ROUTER_HANDOVER, Int32(1), "ZMQ_ROUTER_HANDOVER")
        if let curve {
            // The ZAP handler must be bound in this context before any handshake starts.
            authenticator = try ZAPAuthenticator(
                context: context, allowedClientKeys: curve.allowedClientKeys,
                onRefusal: curve.onRefusal)
            try socket.set(ZMQ_CURVE_SERVER, Int32(1), "ZMQ_CURVE_SERVER")
            try socket.set(
                ZMQ_CURVE_SECRETKEY, try curve.keyPair.secretKeyBytes(), "ZMQ_CURVE_SECRETKEY")
            try socket.set(ZMQ_ZAP_DOMAIN, Array("maestro".utf8), "ZMQ_ZAP_DOMAIN")
        }
        self.endpoint = try socket.bind(address)
        self.socket = socket
        self.options = options
        self.limits = limits
        monitor = try ZeroMQMonitor(
            watching: socket, events: ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPTED)
    }

    /// Connections closed since the last call, each named by a routing identity that sent
    /// on it (a connection that never sent a frame names nobody and is not reported).
    public func takeConnectionEvents() -> ConnectionEvents {
        readMonitor()
        defer { (closedConnections, refusedConnections) = ([], []) }
        return ConnectionEvents(closed: closedConnections, refused: refusedConnections)
    }

    /// Open TCP connections (accepted, not yet closed), as the socket monitor last told.
    public var openConnections: Int { addressByFD.count }

    /// Bytes libzmq holds for `peer`'s connection: frames handed over, not yet written to
    /// the kernel (with ``ServerLimits/frameOverhead`` each).
    public func queuedBytes(for peer: PeerID) -> Int {
        (queued[peer.bytes]?.current ?? 0) + (draining[peer.bytes]?.current ?? 0)
    }

    private func readMonitor() {
        guard let monitor else { return }
        if !draining.isEmpty { draining = draining.filter { $0.value.current > 0 } }
        for event in monitor.drain() {
            let descriptor = Int32(bitPattern: event.value)
            if event.kind == ZMQ_EVENT_ACCEPTED {
                accepted(descriptor)
                continue
            }
            // A descriptor's DISCONNECTED is queued before the descriptor can be reused, and
            // the monitor is read before every frame: a mapping is never stale when used.
            guard event.kind == ZMQ_EVENT_DISCONNECTED else { continue }
            if let address = addressByFD.removeValue(forKey: descriptor) {
                openByAddress[address, default: 1] -= 1
                if openByAddress[address] == 0 { openByAddress[address] = nil }
            }
            for identity in identitiesByFD.removeValue(forKey: descriptor) ?? [] {
                fdByIdentity[identity] = nil
                if let counter = queued.removeValue(forKey: identity), counter.current > 0 {
                    draining[identity] = counter
                }
                closedConnections.append(PeerID(bytes: identity))
            }
        }
    }

    /// A TCP connection arrived: counted by source address, and closed at once when it
    /// passes a cap. It stays counted until its DISCONNECTED.
    private func accepted(_ descriptor: Int32) {
        let address = peerAddress(of: descriptor) ?? "unknown address"
        addressByFD[descriptor] = address
        openByAddress[address, default: 0] += 1
        if addressByFD.count > limits.maximumConnections
            || openByAddress[address, default: 0] > limits.maximumConnectionsPerAddress
        {
            // `shutdown`, not `close`: libzmq owns the descriptor; it sees the end of the
            // stream, closes the connection and reports DISCONNECTED.
            shutdown(descriptor, Int32(SHUT_RDWR))
            refusedConnections.append(address)
        }
    }

    /// Drops `peer`'s connection (its frames queued in libzmq are freed with it).
    private func drop(_ peer: PeerID) {
        readMonitor()  // the descriptor mapping as of now
        guard let descriptor = fdByIdentity[peer.bytes] else { return }
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    deinit { close() }

    /// Sends one frame to a connected client.
    ///
    /// Throws ``TransportError/unknownPeer(_:)`` for an identity with no connection,
    /// ``TransportError/peerQueueFull(peer:queuedBytes:budget:)`` when the peer's connection
    /// already holds frames and this one would pass ``ServerLimits/queuedBytesPerConnection``
    /// (the connection is then dropped), and
    /// ``TransportError/messageTooLarge(peer:size:maximum:)`` above
    /// `options.maximumMessageSize` (the client would drop the connection). Never blocks.
    public func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError) {
        guard bytes.count <= options.maximumMessageSize else {
            throw .messageTooLarge(
                peer: peer, size: bytes.count, maximum: options.maximumMessageSize)
        }
        guard !peer.bytes.isEmpty else { throw .unknownPeer(peer) }
        let counter = queued[peer.bytes] ?? QueuedBytes()
        let held = counter.current
        let charge = bytes.count + ServerLimits.frameOverhead
        if held > 0 && held + charge > limits.queuedBytesPerConnection {
            drop(peer)
            throw .peerQueueFull(
                peer: peer, queuedBytes: held, budget: limits.queuedBytesPerConnection)
        }
        try check(try socket.sendPart(peer.bytes, more: true, dontWait: true), peer)
        if let channel = peer.channel {
            try check(try socket.sendPart(channel, more: true, dontWait: true), peer)
        }
        queued[peer.bytes] = counter
        try check(
            counter.send(
                bytes, overhead: ServerLimits.frameOverhead, on: try socket.liveHandle(),
                flags: ZMQ_DONTWAIT), peer)
        statistics.recordSent(bytes.count)
    }

    private func check(_ code: Int32, _ peer: PeerID) throws(TransportError) {
        switch code {
        case 0: return
        case EHOSTUNREACH: throw .unknownPeer(peer)
        case EAGAIN:
            // Only with a high-water mark, which the server does not set: a full queue.
            throw .peerQueueFull(
                peer: peer, queuedBytes: queuedBytes(for: peer),
                budget: limits.queuedBytesPerConnection)
        case ETERM: throw .closed(endpoint: endpoint)
        default: throw .sendFailed(peer: peer, reason: zmqReason(code))
        }
    }

    /// The next frame from any client, or `nil` after `timeout`.
    ///
    /// `[identity, payload]` comes from a direct connection, `[identity, channel, payload]`
    /// from one channel of a multiplexed connection (a worker; the channel is at most 255
    /// bytes). Any other message is discarded and reported as
    /// ``TransportError/malformedEnvelope(peer:partCount:)``; the server stays usable.
    public func receive(timeout: Duration) throws(TransportError) -> ReceivedFrame? {
        try untilDeadline(timeout) { (remaining) throws(TransportError) -> ReceivedFrame? in
            // Events first: a connection's DISCONNECTED is queued before its descriptor can
            // be reused by a connection whose frames follow.
            readMonitor()
            var metadata = ZeroMQSocket.Metadata()
            guard try socket.waitReadable(timeout: remaining) else { return nil }
            // Again: while it waited, a connection may have closed and its descriptor been
            // reused by the connection whose frame is now readable (its DISCONNECTED is
            // queued before the reuse, so reading the monitor now keeps the mapping true).
            readMonitor()
            guard let (parts, count) = try socket.receiveParts(limit: 3, metadata: &metadata)
            else { return nil }
            guard let identity = parts.first else {
                throw .malformedEnvelope(peer: nil, partCount: count)
            }
            let peer: PeerID
            switch count {
            case 2: peer = PeerID(bytes: identity)
            case 3 where parts[1].count <= 255: peer = PeerID(bytes: identity, channel: parts[1])
            default: throw .malformedEnvelope(peer: PeerID(bytes: identity), partCount: count)
            }
            if metadata.sourceFD >= 0, fdByIdentity[identity] != metadata.sourceFD {
                if let earlier = fdByIdentity[identity] {
                    identitiesByFD[earlier]?.remove(identity)
                }
                fdByIdentity[identity] = metadata.sourceFD
                identitiesByFD[metadata.sourceFD, default: []].insert(identity)
            }
            let payload = parts[count - 1]
            statistics.recordReceived(payload.count)
            return ReceivedFrame(
                peer: peer, bytes: payload, authenticatedKey: metadata.userID)
        }
    }

    /// The socket's `ZMQ_FD` (see ``ZeroMQSocket/readinessDescriptor()``), for a thread that
    /// waits on it with `poll(2)` while another uses the server.
    func readinessDescriptor() throws(TransportError) -> Int32 {
        try socket.readinessDescriptor()
    }

    /// Whether a frame can be read now.
    func hasInput() throws(TransportError) -> Bool { try socket.hasInput() }

    /// Closes the socket (queued frames get `options.linger` to leave) and stops the ZAP
    /// handler.
    public func close() {
        monitor?.close()
        monitor = nil
        socket.close()
        authenticator?.stop()
        authenticator = nil
    }
}
