import Testing
import Transport

@Suite("In-memory transport")
struct InMemoryTransportTests {
    @Test("Frames round-trip in order; counters match the ZeroMQ rules")
    func roundTrip() throws {
        let network = InMemoryNetwork()
        let server = try network.bind("coordinator")
        let clients = try (0..<3).map { _ in try network.connect(to: "coordinator") }
        for (index, client) in clients.enumerated() {
            try client.send(pattern(10 * index, seed: 1))
            try client.send(pattern(5, seed: UInt8(index)))
        }
        let frames = try receiveFrames(server, count: 6, timeout: .milliseconds(100))
        #expect(frames.count == 6)
        #expect(frames.map(\.peer) == clients.flatMap { [$0.routingID, $0.routingID] })
        for frame in frames { try server.send(frame.bytes.reversed(), to: frame.peer) }
        for client in clients {
            let replies = try receiveFrames(client, count: 2, timeout: .milliseconds(100))
            #expect(replies.count == 2)
            #expect(client.statistics.bytesSent == client.statistics.bytesReceived)
        }
        #expect(server.statistics.bytesReceived == UInt64(0 + 10 + 20 + 15))
        #expect(server.statistics.bytesSent == server.statistics.bytesReceived)
        #expect(server.statistics.framesSent == 6)
    }

    @Test("Unknown peers, oversize frames, timeouts and closing")
    func failures() throws {
        let network = InMemoryNetwork()
        let server = try network.bind("coordinator", maximumMessageSize: 100)
        #expect(transportError { _ = try network.bind("coordinator") } != nil)
        #expect(transportError { _ = try network.connect(to: "elsewhere") } != nil)
        let client = try network.connect(to: "coordinator", routingID: "alice")
        #expect(client.routingID.description == "alice")
        let stranger = PeerID(bytes: [9])
        #expect(transportError { try server.send([1], to: stranger) } == .unknownPeer(stranger))
        #expect(
            transportError { try server.send(pattern(101, seed: 0), to: client.routingID) }
                == .messageTooLarge(peer: client.routingID, size: 101, maximum: 100))
        try client.send(pattern(500, seed: 0))  // dropped by the receiver's limit
        #expect(network.droppedFrames == 1)
        #expect(client.statistics.bytesSent == 500)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try server.receive(timeout: .milliseconds(50)) == nil)
        #expect(start.duration(to: clock.now) < .seconds(1))
        network.disconnect(client.routingID)
        #expect(
            transportError { try server.send([1], to: client.routingID) }
                == .unknownPeer(client.routingID))
        #expect(transportError { _ = try client.receive(timeout: .zero) } != nil)
        server.close()
        #expect(
            transportError { _ = try server.receive(timeout: .zero) }
                == .closed(endpoint: "coordinator"))
    }
}
