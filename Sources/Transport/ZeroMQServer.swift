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
public final class ZeroMQServer: MessageTransport {
    /// The bound endpoint, with the port the OS chose for `tcp://host:*`.
    public let endpoint: String
    public let options: ZeroMQOptions
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

    /// Binds a ROUTER socket to `address`, such as `tcp://127.0.0.1:*`.
    ///
    /// With `curve`, connections must use CURVE encryption and client keys are checked
    /// against an allow-list.
    public init(
        bindingTo address: String, options: ZeroMQOptions = ZeroMQOptions(),
        curve: CurveServerConfiguration? = nil, context: ZeroMQContext? = nil
    ) throws(TransportError) {
        let context = try ZeroMQContext.existing(context)
        let socket = try ZeroMQSocket(context: context, type: ZMQ_ROUTER, endpoint: address)
        try options.apply(to: socket)
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
        monitor = try ZeroMQMonitor(
            watching: socket, events: ZMQ_EVENT_DISCONNECTED)
    }

    /// Connections closed since the last call, each named by a routing identity that sent
    /// on it (a connection that never sent a frame names nobody and is not reported).
    public func takeConnectionEvents() -> ConnectionEvents {
        readMonitor()
        defer { closedConnections = [] }
        return ConnectionEvents(closed: closedConnections)
    }

    private func readMonitor() {
        guard let monitor else { return }
        for event in monitor.drain() {
            // A descriptor's DISCONNECTED is queued before the descriptor can be reused, and
            // the monitor is read before every frame: a mapping is never stale when used.
            guard event.kind == ZMQ_EVENT_DISCONNECTED else { continue }
            for identity in identitiesByFD.removeValue(forKey: Int32(bitPattern: event.value))
                ?? []
            {
                fdByIdentity[identity] = nil
                closedConnections.append(PeerID(bytes: identity))
            }
        }
    }

    deinit { close() }

    /// Sends one frame to a connected client.
    ///
    /// Throws ``TransportError/unknownPeer(_:)`` for an identity with no connection,
    /// ``TransportError/sendTimedOut(peer:timeout:)`` when the peer's queue stays full,
    /// ``TransportError/messageTooLarge(peer:size:maximum:)`` above
    /// `options.maximumMessageSize` (the client would drop the connection).
    public func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError) {
        guard bytes.count <= options.maximumMessageSize else {
            throw .messageTooLarge(
                peer: peer, size: bytes.count, maximum: options.maximumMessageSize)
        }
        guard !peer.bytes.isEmpty else { throw .unknownPeer(peer) }
        try check(try socket.sendPart(peer.bytes, more: true), peer)
        if let channel = peer.channel {
            try check(try socket.sendPart(channel, more: true), peer)
        }
        try check(try socket.sendPart(bytes, more: false), peer)
        statistics.recordSent(bytes.count)
    }

    private func check(_ code: Int32, _ peer: PeerID) throws(TransportError) {
        switch code {
        case 0: return
        case EHOSTUNREACH: throw .unknownPeer(peer)
        case EAGAIN: throw .sendTimedOut(peer: peer, timeout: options.sendTimeout)
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
            guard try socket.waitReadable(timeout: remaining),
                let (parts, count) = try socket.receiveParts(limit: 3, metadata: &metadata)
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
