/// Moves opaque byte frames between a coordinator and its peers.
///
/// One frame in is one frame out: no fragmentation, no merging, order kept per peer. The
/// coordinator's transport addresses clients by the ``PeerID`` their frames arrived from; a
/// client's transport has one peer, ``PeerID/coordinator``.
///
/// Implementations are single-owner objects: they are not `Sendable`, so the compiler keeps
/// each one inside the actor or thread that created it (a ZeroMQ socket must not be used
/// from two threads at once). `receive(timeout:)` blocks its caller for up to `timeout`.
public protocol MessageTransport: AnyObject {
    /// Hands one frame to the transport for `peer`.
    ///
    /// Success means the frame was queued, not that the peer received it.
    func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError)

    /// The next frame from any peer, or `nil` if none arrives within `timeout`.
    func receive(timeout: Duration) throws(TransportError) -> ReceivedFrame?

    /// Frames and payload bytes moved so far (see the README for what is counted).
    var statistics: TransportStatistics { get }

    /// Releases the connection; later calls throw ``TransportError/closed(endpoint:)``.
    /// Closing twice is harmless.
    func close()

    /// What happened to connections since the last call (the socket monitor's news).
    func takeConnectionEvents() -> ConnectionEvents

    /// The next frame from any peer, or the news that the transport answered one itself
    /// (``ServedServer``), or `nil` if nothing arrives within `timeout`.
    func receiveArrival(timeout: Duration) throws(TransportError) -> Arrival?
}

extension MessageTransport {
    /// A transport that cannot tell reports nothing.
    public func takeConnectionEvents() -> ConnectionEvents { ConnectionEvents() }

    /// A transport that answers nothing itself returns frames.
    public func receiveArrival(timeout: Duration) throws(TransportError) -> Arrival? {
        try receive(timeout: timeout).map(Arrival.frame)
    }
}

/// What a transport hands its owner: a frame, or a frame it answered itself.
public enum Arrival: Sendable, Equatable {
    case frame(ReceivedFrame)
    case answered(AnsweredFrame)
}

/// A frame the transport's own thread answered (a link probe, while the owner was busy):
/// what the owner would have counted had it answered, without the frame's bytes.
public struct AnsweredFrame: Sendable, Equatable {
    public var peer: PeerID
    /// The CURVE public key (Z85) that authenticated the connection, `nil` in plaintext.
    public var authenticatedKey: String?
    /// The size of the frame that was answered.
    public var frameBytes: Int
    /// The size of the reply.
    public var replyBytes: Int
    /// Why the reply did not go out (`nil`: it was handed to the connection).
    public var error: TransportError?

    public init(
        peer: PeerID, authenticatedKey: String?, frameBytes: Int, replyBytes: Int,
        error: TransportError?
    ) {
        self.peer = peer
        self.authenticatedKey = authenticatedKey
        self.frameBytes = frameBytes
        self.replyBytes = replyBytes
        self.error = error
    }
}

/// Connection news from a transport's socket monitor.
public struct ConnectionEvents: Sendable, Equatable {
    /// Coordinator side: connections that closed (a peer's process died, its link or its
    /// heartbeats failed), as ``PeerID/connection`` values of peers that had sent on them.
    public var closed: [PeerID] = []
    /// Client side: how many times the connection to the coordinator was established again
    /// after the first time (a restarted coordinator, a healed link).
    public var reestablished = 0
    /// Coordinator side: the source addresses of connections closed on arrival because they
    /// passed a connection cap (``ServerLimits``), one entry per connection.
    public var refused: [String] = []
    /// Client side: connection attempts that failed and will be retried (nothing listening
    /// at the address: refused, or unreachable).
    public var failedConnects = 0
    /// Client side: connections established (TCP up, before any handshake).
    public var connects = 0

    public init(
        closed: [PeerID] = [], reestablished: Int = 0, refused: [String] = [],
        failedConnects: Int = 0, connects: Int = 0
    ) {
        self.closed = closed
        self.reestablished = reestablished
        self.refused = refused
        self.failedConnects = failedConnects
        self.connects = connects
    }

    /// These events followed by `later`'s.
    public mutating func append(_ later: ConnectionEvents) {
        closed += later.closed
        reestablished += later.reestablished
        refused += later.refused
        failedConnects += later.failedConnects
        connects += later.connects
    }

    public var isEmpty: Bool {
        closed.isEmpty && reestablished == 0 && refused.isEmpty && failedConnects == 0
            && connects == 0
    }
}

/// One frame and the peer it came from.
public struct ReceivedFrame: Sendable, Equatable {
    public var peer: PeerID
    public var bytes: [UInt8]
    /// The CURVE public key (Z85) that authenticated the connection, `nil` in plaintext.
    public var authenticatedKey: String?

    public init(peer: PeerID, bytes: [UInt8], authenticatedKey: String? = nil) {
        self.peer = peer
        self.bytes = bytes
        self.authenticatedKey = authenticatedKey
    }
}

/// A peer's address on a transport: for ZeroMQ, the ROUTER routing identity of the
/// connection (1–255 bytes, never empty); for the in-memory transport, a name.
///
/// A connection may carry several peers (a worker hosting many virtual clients): each then
/// has a `channel`, the extra ZeroMQ message part that travels in front of the frame
/// (`[identity, channel, frame]` at the ROUTER, `[channel, frame]` at the worker's DEALER).
/// `channel == nil` is a direct connection (`[identity, frame]`); an empty channel is the
/// worker's own control channel.
public struct PeerID: Sendable, Hashable, CustomStringConvertible {
    /// The routing identity bytes.
    public var bytes: [UInt8]
    /// The channel inside a multiplexed connection, or `nil` for a direct one.
    public var channel: [UInt8]?

    public init(bytes: [UInt8], channel: [UInt8]? = nil) {
        self.bytes = bytes
        self.channel = channel
    }

    /// The single peer of a client transport: empty, which no ROUTER identity can be.
    public static let coordinator = PeerID(bytes: [])

    /// The coordinator as seen through `channel` of a multiplexed client transport.
    public static func coordinator(channel: [UInt8]) -> PeerID {
        PeerID(bytes: [], channel: channel)
    }

    /// The same connection, another channel.
    public func onChannel(_ channel: [UInt8]?) -> PeerID { PeerID(bytes: bytes, channel: channel) }

    /// The connection itself, without a channel.
    public var connection: PeerID { PeerID(bytes: bytes) }

    /// `coordinator`, the identity as text when it is printable ASCII, hex otherwise; a
    /// channel follows after `/`.
    public var description: String {
        let base = bytes.isEmpty ? "coordinator" : Self.text(bytes)
        guard let channel else { return base }
        return channel.isEmpty ? "\(base)/control" : "\(base)/\(Self.text(channel))"
    }

    private static func text(_ bytes: [UInt8]) -> String {
        if bytes.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        let hexDigits = Array("0123456789abcdef")
        var text = "0x"
        for byte in bytes {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 15)])
        }
        return text
    }
}

/// Counters of what crossed a transport, at the frame level.
///
/// Counts only payload frames handed to (sent) or taken from (received) the transport:
/// `bytesSent` is the sum of `bytes.count` over successful `send` calls, `bytesReceived`
/// the sum over frames `receive` returned. Routing identities, ZeroMQ framing, heartbeats,
/// CURVE and TCP overhead are not counted, so a coordinator's `bytesSent` equals the sum of
/// its clients' `bytesReceived` as long as no connection drops queued frames.
public struct TransportStatistics: Sendable, Equatable {
    public var framesSent: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var framesReceived: UInt64 = 0
    public var bytesReceived: UInt64 = 0

    public init() {}

    public init(
        framesSent: UInt64, bytesSent: UInt64, framesReceived: UInt64, bytesReceived: UInt64
    ) {
        self.framesSent = framesSent
        self.bytesSent = bytesSent
        self.framesReceived = framesReceived
        self.bytesReceived = bytesReceived
    }

    public mutating func recordSent(_ count: Int) {
        framesSent += 1
        bytesSent += UInt64(count)
    }

    public mutating func recordReceived(_ count: Int) {
        framesReceived += 1
        bytesReceived += UInt64(count)
    }
}

/// Why a transport operation failed, naming the endpoint or peer and the reason.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The endpoint string is not usable (`zmq_bind`/`zmq_connect` said EINVAL,
    /// EPROTONOSUPPORT, ENOCOMPATPROTO or ENODEV).
    case invalidEndpoint(endpoint: String, reason: String)
    /// Another socket already listens on the address.
    case addressInUse(endpoint: String, reason: String)
    /// The address is not local to this machine.
    case addressNotAvailable(endpoint: String, reason: String)
    /// `zmq_bind` failed for another reason.
    case bindFailed(endpoint: String, reason: String)
    /// `zmq_connect` failed for another reason.
    case connectFailed(endpoint: String, reason: String)
    /// No connected peer has this identity (gone, or never connected).
    case unknownPeer(PeerID)
    /// The peer's queue stayed full (high-water mark) for the whole send timeout, or a
    /// client has no connection to queue on.
    case sendTimedOut(peer: PeerID, timeout: Duration)
    /// The frame exceeds the size this side is configured to send.
    case messageTooLarge(peer: PeerID, size: Int, maximum: Int)
    /// The peer's connection already holds `queuedBytes` the peer has not taken, and this
    /// frame would pass its budget (``ServerLimits/queuedBytesPerConnection``): the frame was
    /// not sent and the connection is being dropped.
    case peerQueueFull(peer: PeerID, queuedBytes: Int, budget: Int)
    /// A peer sent a ZeroMQ message with an unexpected number of parts; it was discarded
    /// and the transport is still usable.
    case malformedEnvelope(peer: PeerID?, partCount: Int)
    /// `zmq_send` failed for another reason.
    case sendFailed(peer: PeerID, reason: String)
    /// `zmq_msg_recv` or `zmq_poll` failed.
    case receiveFailed(endpoint: String, reason: String)
    /// A socket or context could not be created or configured.
    case setupFailed(what: String, reason: String)
    /// A CURVE key is not 40 characters of Z85 or does not decode.
    case invalidCurveKey(String)
    /// The transport was closed.
    case closed(endpoint: String)

    /// Whether the error concerns one peer's input or state and the transport can go on
    /// serving the others.
    public var isPeerFault: Bool {
        switch self {
        case .unknownPeer, .sendTimedOut, .messageTooLarge, .peerQueueFull, .malformedEnvelope:
            true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .invalidEndpoint(let endpoint, let reason):
            "invalid endpoint \"\(endpoint)\": \(reason)"
        case .addressInUse(let endpoint, let reason): "cannot bind \(endpoint): \(reason)"
        case .addressNotAvailable(let endpoint, let reason): "cannot bind \(endpoint): \(reason)"
        case .bindFailed(let endpoint, let reason): "cannot bind \(endpoint): \(reason)"
        case .connectFailed(let endpoint, let reason): "cannot connect to \(endpoint): \(reason)"
        case .unknownPeer(let peer): "no connected peer \(peer)"
        case .sendTimedOut(let peer, let timeout): "send to \(peer) blocked for \(timeout)"
        case .messageTooLarge(let peer, let size, let maximum):
            "frame of \(size) bytes for \(peer) exceeds the maximum of \(maximum) bytes"
        case .peerQueueFull(let peer, let queuedBytes, let budget):
            "\(peer) has not taken the \(queuedBytes) bytes queued for it (budget \(budget) bytes); dropped"
        case .malformedEnvelope(let peer, let partCount):
            "discarded a \(partCount)-part message from \(peer.map(\.description) ?? "unknown peer")"
        case .sendFailed(let peer, let reason): "send to \(peer) failed: \(reason)"
        case .receiveFailed(let endpoint, let reason): "receive on \(endpoint) failed: \(reason)"
        case .setupFailed(let what, let reason): "\(what) failed: \(reason)"
        case .invalidCurveKey(let reason): "invalid CURVE key: \(reason)"
        case .closed(let endpoint): "transport \(endpoint) is closed"
        }
    }
}
