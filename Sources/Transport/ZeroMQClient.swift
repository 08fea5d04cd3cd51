import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client's end: a ZeroMQ DEALER socket connected to the coordinator's ROUTER.
///
/// Its only peer is ``PeerID/coordinator``. The socket carries a fixed routing identity
/// (random unless given), so the coordinator sees the same ``PeerID`` after a reconnect.
/// Frames sent before the connection is up are queued (up to the high-water mark). Not
/// `Sendable`: the owner (one actor or thread) is the only user.
public final class ZeroMQClient: MessageTransport {
    /// The endpoint connected to.
    public let endpoint: String
    public let options: ZeroMQOptions
    /// The routing identity the coordinator sees as this client's ``PeerID``.
    public let routingID: PeerID
    /// Whether every frame travels behind a channel part (a worker hosting many clients).
    public let isMultiplexed: Bool
    public private(set) var statistics = TransportStatistics()
    private let socket: ZeroMQSocket
    private var monitor: ZeroMQMonitor?
    /// Completed handshakes seen so far (the first is the initial connection).
    private var handshakes = 0
    private var reported = 0

    /// Connects a DEALER socket to `address`, such as `tcp://127.0.0.1:5555`.
    ///
    /// With `curve`, the connection is encrypted and authenticated with the client's key pair.
    /// `routingID` must be 1–255 bytes and must not start with a zero byte (reserved by
    /// libzmq); by default 8 random bytes.
    ///
    /// A `multiplexed` client carries many peers over its one connection: it sends to and
    /// receives from ``PeerID/coordinator(channel:)`` (`[channel, frame]` on the socket).
    public init(
        connectingTo address: String, options: ZeroMQOptions = ZeroMQOptions(),
        routingID: [UInt8]? = nil, curve: CurveClientConfiguration? = nil,
        context: ZeroMQContext? = nil, multiplexed: Bool = false
    ) throws(TransportError) {
        let identity = routingID ?? Self.randomRoutingID()
        guard (1...255).contains(identity.count), identity[0] != 0 else {
            throw .setupFailed(
                what: "routing identity \(PeerID(bytes: identity))",
                reason: "must be 1–255 bytes and not start with 0")
        }
        let context = try ZeroMQContext.existing(context)
        let socket = try ZeroMQSocket(context: context, type: ZMQ_DEALER, endpoint: address)
        try options.apply(to: socket)
        try socket.set(ZMQ_ROUTING_ID, identity, "ZMQ_ROUTING_ID")
        if let curve {
            try socket.set(
                ZMQ_CURVE_SERVERKEY, try curve.serverPublicKeyBytes(), "ZMQ_CURVE_SERVERKEY")
            try socket.set(
                ZMQ_CURVE_PUBLICKEY, try curve.keyPair.publicKeyBytes(), "ZMQ_CURVE_PUBLICKEY")
            try socket.set(
                ZMQ_CURVE_SECRETKEY, try curve.keyPair.secretKeyBytes(), "ZMQ_CURVE_SECRETKEY")
        }
        let monitor = try ZeroMQMonitor(
            watching: socket,
            events: ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED)
        try socket.connect(address)
        self.monitor = monitor
        self.socket = socket
        self.endpoint = address
        self.options = options
        self.routingID = PeerID(bytes: identity)
        self.isMultiplexed = multiplexed
    }

    deinit { close() }

    private static func randomRoutingID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = UInt8.random(in: 1...255, using: &generator)
        return bytes
    }

    /// Sends one frame to the coordinator.
    public func send(_ bytes: [UInt8]) throws(TransportError) {
        try send(bytes, to: .coordinator)
    }

    /// Sends one frame; `peer` must be ``PeerID/coordinator``, or the coordinator on a channel
    /// (at most 255 bytes) for a multiplexed client.
    public func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError) {
        guard peer.bytes.isEmpty, (peer.channel != nil) == isMultiplexed,
            (peer.channel?.count ?? 0) <= 255
        else { throw .unknownPeer(peer) }
        guard bytes.count <= options.maximumMessageSize else {
            throw .messageTooLarge(
                peer: peer, size: bytes.count, maximum: options.maximumMessageSize)
        }
        var code: Int32 = 0
        if let channel = peer.channel { code = try socket.sendPart(channel, more: true) }
        if code == 0 { code = try socket.sendPart(bytes, more: false) }
        switch code {
        case 0: statistics.recordSent(bytes.count)
        case EAGAIN: throw .sendTimedOut(peer: peer, timeout: options.sendTimeout)
        case ETERM: throw .closed(endpoint: endpoint)
        default: throw .sendFailed(peer: peer, reason: zmqReason(code))
        }
    }

    /// The next frame from the coordinator, or `nil` after `timeout`.
    public func receive(timeout: Duration) throws(TransportError) -> ReceivedFrame? {
        try untilDeadline(timeout) { (remaining) throws(TransportError) -> ReceivedFrame? in
            let expected = isMultiplexed ? 2 : 1
            guard try socket.waitReadable(timeout: remaining),
                let (parts, count) = try socket.receiveParts(limit: expected)
            else { return nil }
            guard count == expected else {
                throw .malformedEnvelope(peer: .coordinator, partCount: count)
            }
            statistics.recordReceived(parts[count - 1].count)
            return ReceivedFrame(
                peer: isMultiplexed ? .coordinator(channel: parts[0]) : .coordinator,
                bytes: parts[count - 1])
        }
    }

    /// How often the connection was established again since the last call: the coordinator
    /// restarted or the link healed, so a registered client should register again. Also the
    /// connections made and the attempts that failed (nothing listening at the address).
    public func takeConnectionEvents() -> ConnectionEvents {
        let events = monitor?.drain() ?? []
        handshakes += events.filter { $0.kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED }.count
        let again = max(0, handshakes - 1) - reported
        reported += again
        return ConnectionEvents(
            reestablished: again,
            failedConnects: events.filter { $0.kind == ZMQ_EVENT_CONNECT_RETRIED }.count,
            connects: events.filter { $0.kind == ZMQ_EVENT_CONNECTED }.count)
    }

    /// Closes the socket; queued frames get `options.linger` to leave.
    public func close() {
        monitor?.close()
        monitor = nil
        socket.close()
    }
}
