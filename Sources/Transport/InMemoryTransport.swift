#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An in-process stand-in for a ZeroMQ deployment, for testing protocol logic without
/// sockets: servers bind names, clients connect to them, frames move between queues.
///
/// It keeps the ZeroMQ semantics the protocol code can observe: frames are delivered whole
/// and in order per peer; sending to a peer that is not connected throws `unknownPeer`; a
/// frame larger than the receiver's `maximumMessageSize` is counted as sent but dropped (as
/// `ZMQ_MAXMSGSIZE` does), and so is a client's frame while its server is closed. Byte
/// counters follow the ZeroMQ transports' rules. Delivery is immediate and deterministic.
///
/// `@unchecked Sendable`: all state is behind `condition`'s lock.
public final class InMemoryNetwork: @unchecked Sendable {
    private let condition = ConditionLock()
    private var servers: [String: ServerState] = [:]
    private var clients: [PeerID: ClientState] = [:]
    private var nextClientNumber = 1
    private var dropped = 0

    public init() {}

    /// Frames dropped so far (too large for their receiver, or sent to a closed server).
    public var droppedFrames: Int { locked { dropped } }

    /// Binds a server to `endpoint` (any name).
    public func bind(
        _ endpoint: String, maximumMessageSize: Int = 64 << 20
    ) throws(TransportError)
        -> InMemoryServer
    {
        try lockedThrowing { () throws(TransportError) in
            if let existing = servers[endpoint], existing.isOpen {
                throw .addressInUse(endpoint: endpoint, reason: "already bound in this network")
            }
            servers[endpoint] = ServerState(maximumMessageSize: maximumMessageSize)
        }
        return InMemoryServer(network: self, endpoint: endpoint)
    }

    /// Connects a client to a bound server.
    ///
    /// Its ``PeerID`` is `routingID` if given (taking
    /// over a live client with that identity, like `ZMQ_ROUTER_HANDOVER`), else `client-N`.
    public func connect(
        to endpoint: String, routingID: String? = nil, maximumMessageSize: Int = 64 << 20
    ) throws(TransportError) -> InMemoryClient {
        let peer = try lockedThrowing { () throws(TransportError) -> PeerID in
            guard servers[endpoint]?.isOpen == true else {
                throw .connectFailed(endpoint: endpoint, reason: "nothing bound there")
            }
            let peer = PeerID(bytes: Array((routingID ?? "client-\(nextClientNumber)").utf8))
            nextClientNumber += 1
            clients[peer] = ClientState(endpoint: endpoint, maximumMessageSize: maximumMessageSize)
            return peer
        }
        return InMemoryClient(network: self, peer: peer, endpoint: endpoint)
    }

    /// Makes a client vanish as if its process died: the server's sends to it throw
    /// `unknownPeer`, its own calls throw `closed`.
    public func disconnect(_ peer: PeerID) {
        locked { clients[peer]?.isOpen = false }
        condition.broadcast()
    }

    // MARK: Operations used by the endpoints

    func serverSend(_ bytes: [UInt8], to peer: PeerID, from endpoint: String) throws(TransportError)
    {
        try lockedThrowing { () throws(TransportError) in
            guard let server = servers[endpoint], server.isOpen else {
                throw .closed(endpoint: endpoint)
            }
            guard bytes.count <= server.maximumMessageSize else {
                throw .messageTooLarge(
                    peer: peer, size: bytes.count, maximum: server.maximumMessageSize)
            }
            guard var client = clients[peer], client.isOpen, client.endpoint == endpoint else {
                throw .unknownPeer(peer)
            }
            servers[endpoint]!.statistics.recordSent(bytes.count)
            if bytes.count > client.maximumMessageSize {
                dropped += 1
            } else {
                client.inbox.append(bytes)
                clients[peer] = client
            }
        }
        condition.broadcast()
    }

    func clientSend(_ bytes: [UInt8], from peer: PeerID) throws(TransportError) {
        try lockedThrowing { () throws(TransportError) in
            guard let client = clients[peer], client.isOpen else {
                throw .closed(endpoint: "\(peer)")
            }
            guard bytes.count <= client.maximumMessageSize else {
                throw .messageTooLarge(
                    peer: .coordinator, size: bytes.count, maximum: client.maximumMessageSize)
            }
            clients[peer]!.statistics.recordSent(bytes.count)
            if let server = servers[client.endpoint], server.isOpen,
                bytes.count <= server.maximumMessageSize
            {
                servers[client.endpoint]!.inbox.append(ReceivedFrame(peer: peer, bytes: bytes))
            } else {
                dropped += 1
            }
        }
        condition.broadcast()
    }

    func serverReceive(
        at endpoint: String, timeout: Duration
    ) throws(TransportError) -> ReceivedFrame? {
        try waitThrowing(timeout) { () throws(TransportError) -> ReceivedFrame? in
            guard let server = servers[endpoint], server.isOpen else {
                throw .closed(endpoint: endpoint)
            }
            guard !server.inbox.isEmpty else { return nil }
            let frame = servers[endpoint]!.inbox.removeFirst()
            servers[endpoint]!.statistics.recordReceived(frame.bytes.count)
            return frame
        }
    }

    func clientReceive(at peer: PeerID, timeout: Duration) throws(TransportError) -> ReceivedFrame?
    {
        try waitThrowing(timeout) { () throws(TransportError) -> ReceivedFrame? in
            guard let client = clients[peer], client.isOpen else {
                throw .closed(endpoint: "\(peer)")
            }
            guard !client.inbox.isEmpty else { return nil }
            let bytes = clients[peer]!.inbox.removeFirst()
            clients[peer]!.statistics.recordReceived(bytes.count)
            return ReceivedFrame(peer: .coordinator, bytes: bytes)
        }
    }

    func serverStatistics(_ endpoint: String) -> TransportStatistics {
        locked { servers[endpoint]?.statistics ?? TransportStatistics() }
    }

    func clientStatistics(_ peer: PeerID) -> TransportStatistics {
        locked { clients[peer]?.statistics ?? TransportStatistics() }
    }

    func closeServer(_ endpoint: String) {
        locked { servers[endpoint]?.isOpen = false }
        condition.broadcast()
    }

    // MARK: Locking

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    private func lockedThrowing<T>(
        _ body: () throws(TransportError) -> T
    ) throws(TransportError) -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Calls `attempt` under the lock until it returns a value or `timeout` passes.
    private func waitThrowing<T>(
        _ timeout: Duration, _ attempt: () throws(TransportError) -> T?
    ) throws(TransportError) -> T? {
        let deadline = ConditionLock.deadline(after: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let value = try attempt() { return value }
            if !condition.wait(until: deadline) { return try attempt() }
        }
    }

    private struct ServerState {
        var maximumMessageSize: Int
        var inbox: [ReceivedFrame] = []
        var statistics = TransportStatistics()
        var isOpen = true
    }

    private struct ClientState {
        var endpoint: String
        var maximumMessageSize: Int
        var inbox: [[UInt8]] = []
        var statistics = TransportStatistics()
        var isOpen = true
    }
}

/// The coordinator's end of an ``InMemoryNetwork``.
public final class InMemoryServer: MessageTransport, Sendable {
    public let network: InMemoryNetwork
    public let endpoint: String

    init(network: InMemoryNetwork, endpoint: String) {
        self.network = network
        self.endpoint = endpoint
    }

    public func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError) {
        try network.serverSend(bytes, to: peer, from: endpoint)
    }

    public func receive(timeout: Duration) throws(TransportError) -> ReceivedFrame? {
        try network.serverReceive(at: endpoint, timeout: timeout)
    }

    public var statistics: TransportStatistics { network.serverStatistics(endpoint) }

    public func close() { network.closeServer(endpoint) }
}

/// A client's end of an ``InMemoryNetwork``; its only peer is ``PeerID/coordinator``.
public final class InMemoryClient: MessageTransport, Sendable {
    public let network: InMemoryNetwork
    /// The identity the server sees.
    public let routingID: PeerID
    public let endpoint: String

    init(network: InMemoryNetwork, peer: PeerID, endpoint: String) {
        self.network = network
        self.routingID = peer
        self.endpoint = endpoint
    }

    /// Sends one frame to the coordinator.
    public func send(_ bytes: [UInt8]) throws(TransportError) {
        try network.clientSend(bytes, from: routingID)
    }

    public func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError) {
        guard peer == .coordinator else { throw .unknownPeer(peer) }
        try network.clientSend(bytes, from: routingID)
    }

    public func receive(timeout: Duration) throws(TransportError) -> ReceivedFrame? {
        try network.clientReceive(at: routingID, timeout: timeout)
    }

    public var statistics: TransportStatistics { network.clientStatistics(routingID) }

    public func close() { network.disconnect(routingID) }
}
