import CZeroMQ
import Foundation
import Testing
import Transport

/// Receives until `count` frames arrived or `timeout` passed (a bounded loop).
func receiveFrames(
    _ transport: some MessageTransport, count: Int, timeout: Duration = .seconds(5)
) throws -> [ReceivedFrame] {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var frames = [ReceivedFrame]()
    while frames.count < count, clock.now < deadline {
        if let frame = try transport.receive(timeout: .milliseconds(100)) { frames.append(frame) }
    }
    return frames
}

/// The `TransportError` `body` throws, or nil.
func transportError(_ body: () throws -> Void) -> TransportError? {
    do {
        try body()
        return nil
    } catch let error as TransportError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

@Suite("ZeroMQ transport on loopback TCP")
struct ZeroMQTransportTests {
    static let loopback = "tcp://127.0.0.1:*"

    @Test("Frames round-trip between a server and three clients; byte counters agree")
    func roundTripThreeClients() throws {
        let server = try ZeroMQServer(bindingTo: Self.loopback)
        #expect(server.endpoint.hasPrefix("tcp://127.0.0.1:") && !server.endpoint.hasSuffix(":*"))
        let clients = try (0..<3).map { _ in try ZeroMQClient(connectingTo: server.endpoint) }
        let sizes = [0, 1, 100, 65_536, 1_000_003]
        var sentByClient = [PeerID: [[UInt8]]]()
        for (index, client) in clients.enumerated() {
            for size in sizes {
                let frame = pattern(size, seed: UInt8(index))
                try client.send(frame)
                sentByClient[client.routingID, default: []].append(frame)
            }
        }
        let received = try receiveFrames(server, count: 3 * sizes.count)
        #expect(received.count == 3 * sizes.count)
        var receivedByPeer = [PeerID: [[UInt8]]]()
        for frame in received { receivedByPeer[frame.peer, default: []].append(frame.bytes) }
        #expect(receivedByPeer == sentByClient, "per-peer order and content")

        // Replies addressed by the PeerID the frames came from.
        for (index, client) in clients.enumerated() {
            for size in sizes.reversed() {
                try server.send(pattern(size, seed: UInt8(100 + index)), to: client.routingID)
            }
        }
        for (index, client) in clients.enumerated() {
            let replies = try receiveFrames(client, count: sizes.count)
            #expect(
                replies.map(\.bytes)
                    == sizes.reversed().map { pattern($0, seed: UInt8(100 + index)) })
            #expect(replies.allSatisfy { $0.peer == .coordinator })
        }

        let total = UInt64(3 * sizes.reduce(0, +))
        let clientSent = clients.reduce(0) { $0 + $1.statistics.bytesSent }
        let clientReceived = clients.reduce(0) { $0 + $1.statistics.bytesReceived }
        #expect(server.statistics.bytesReceived == total && clientSent == total)
        #expect(server.statistics.bytesSent == total && clientReceived == total)
        #expect(server.statistics.framesReceived == 15 && server.statistics.framesSent == 15)
        #expect(
            clients.allSatisfy {
                $0.statistics.framesSent == 5 && $0.statistics.framesReceived == 5
            })
    }

    @Test("An oversized frame is dropped by ZMQ_MAXMSGSIZE; the server and the peer recover")
    func oversizedDropped() throws {
        var serverOptions = ZeroMQOptions()
        serverOptions.maximumMessageSize = 1024
        let server = try ZeroMQServer(bindingTo: Self.loopback, options: serverOptions)
        let client = try ZeroMQClient(connectingTo: server.endpoint)
        try client.send(pattern(4096, seed: 1))
        #expect(try server.receive(timeout: .milliseconds(300)) == nil)
        #expect(server.statistics.framesReceived == 0)
        // The DEALER reconnects; small frames get through again (bounded retries).
        var recovered: ReceivedFrame?
        for _ in 0..<50 where recovered == nil {
            try client.send(Array("small".utf8))
            recovered = try server.receive(timeout: .milliseconds(100))
        }
        #expect(recovered?.bytes == Array("small".utf8))
        #expect(recovered?.peer == client.routingID)
        try server.send(Array("reply".utf8), to: client.routingID)
        #expect(try receiveFrames(client, count: 1).first?.bytes == Array("reply".utf8))
        // The sender's own limit is checked before libzmq sees the frame.
        #expect(
            transportError { try server.send(pattern(2000, seed: 0), to: client.routingID) }
                == .messageTooLarge(peer: client.routingID, size: 2000, maximum: 1024))
    }

    @Test("receive(timeout:) returns nil in bounded time")
    func receiveTimesOut() throws {
        let server = try ZeroMQServer(bindingTo: Self.loopback)
        let client = try ZeroMQClient(connectingTo: server.endpoint)
        let clock = ContinuousClock()
        for timeout in [Duration.zero, .milliseconds(50), .milliseconds(200)] {
            let start = clock.now
            #expect(try server.receive(timeout: timeout) == nil)
            #expect(try client.receive(timeout: timeout) == nil)
            let elapsed = start.duration(to: clock.now)
            #expect(
                elapsed >= timeout * 2 - .milliseconds(5) && elapsed < timeout * 2 + .seconds(1))
        }
    }

    @Test("Sending to an unknown or departed peer is a typed error")
    func unknownPeer() throws {
        let server = try ZeroMQServer(bindingTo: Self.loopback)
        let stranger = PeerID(bytes: [1, 2, 3])
        #expect(transportError { try server.send([1], to: stranger) } == .unknownPeer(stranger))
        #expect(
            transportError { try server.send([1], to: .coordinator) } == .unknownPeer(.coordinator))
        let client = try ZeroMQClient(connectingTo: server.endpoint, routingID: Array("alice".utf8))
        #expect(transportError { try client.send([1], to: stranger) } == .unknownPeer(stranger))
        try client.send([42])
        let hello = try receiveFrames(server, count: 1)
        #expect(hello.first?.peer.description == "alice")
        try server.send([7], to: PeerID(bytes: Array("alice".utf8)))
        client.close()
        #expect(transportError { try client.send([1]) } == .closed(endpoint: server.endpoint))
        // The ROUTER notices the closed connection and refuses further sends (bounded wait).
        var error: TransportError?
        for _ in 0..<60 where error == nil {
            error = transportError { try server.send([1], to: PeerID(bytes: Array("alice".utf8))) }
            if error == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(error == .unknownPeer(PeerID(bytes: Array("alice".utf8))))
        #expect(error?.isPeerFault == true)
    }

    @Test("Bad endpoints and busy addresses name the endpoint and the reason")
    func endpointErrors() throws {
        for endpoint in ["nonsense", "tcp://127.0.0.1:notaport", "carrier-pigeon://nest"] {
            guard
                case .invalidEndpoint(let named, let reason)? = transportError({
                    _ = try ZeroMQServer(bindingTo: endpoint)
                })
            else {
                Issue.record("no invalidEndpoint for \(endpoint)")
                continue
            }
            #expect(named == endpoint && !reason.isEmpty)
        }
        let server = try ZeroMQServer(bindingTo: Self.loopback)
        guard
            case .addressInUse(let endpoint, let reason)? = transportError({
                _ = try ZeroMQServer(bindingTo: server.endpoint)
            })
        else {
            Issue.record("no addressInUse")
            return
        }
        #expect(endpoint == server.endpoint && reason.contains("in use"))
        #expect(
            transportError { _ = try ZeroMQClient(connectingTo: "tcp://") }
                == .invalidEndpoint(endpoint: "tcp://", reason: "Invalid argument (errno 22)"))
        #expect(
            transportError {
                _ = try ZeroMQClient(connectingTo: server.endpoint, routingID: [0, 1])
            }
                != nil)
        server.close()
        server.close()
        #expect(
            transportError { _ = try server.receive(timeout: .zero) }
                == .closed(endpoint: server.endpoint))
    }

    @Test("A message with the wrong number of parts is discarded with a typed error")
    func malformedEnvelope() throws {
        let server = try ZeroMQServer(bindingTo: Self.loopback)
        let context = zmq_ctx_new()
        defer { zmq_ctx_term(context) }
        let raw = zmq_socket(context, ZMQ_DEALER)
        var linger: Int32 = 0
        zmq_setsockopt(raw, ZMQ_LINGER, &linger, 4)
        zmq_setsockopt(raw, ZMQ_ROUTING_ID, "raw", 3)
        #expect(zmq_connect(raw, server.endpoint) == 0)
        zmq_send(raw, "a", 1, ZMQ_SNDMORE)
        zmq_send(raw, "b", 1, ZMQ_SNDMORE)
        zmq_send(raw, "c", 1, 0)
        zmq_send(raw, "ok", 2, 0)
        var envelopeError: TransportError?
        var frame: ReceivedFrame?
        for _ in 0..<50 where frame == nil {
            do {
                frame = try server.receive(timeout: .milliseconds(100))
            } catch let caught {
                envelopeError = envelopeError ?? caught
            }
        }
        zmq_close(raw)
        #expect(
            envelopeError
                == .malformedEnvelope(peer: PeerID(bytes: Array("raw".utf8)), partCount: 4))
        #expect(frame?.bytes == Array("ok".utf8))
        #expect(server.statistics.framesReceived == 1 && server.statistics.bytesReceived == 2)
    }
}
