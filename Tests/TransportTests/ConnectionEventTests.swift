import Foundation
import Testing
import Transport

@Suite("Socket monitor: connection events")
struct ConnectionEventTests {
    /// Polls `body` every 20 ms for up to `seconds`, until it returns a value.
    private func eventually<T>(seconds: Double = 5, _ body: () throws -> T?) rethrows -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let value = try body() { return value }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }

    @Test("The server names the peer of a connection that closed, within a second")
    func serverSeesClosedConnection() throws {
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*")
        let staying = try ZeroMQClient(connectingTo: server.endpoint, routingID: Array("stay".utf8))
        let leaving = try ZeroMQClient(
            connectingTo: server.endpoint, routingID: Array("leave".utf8))
        try staying.send([1])
        try leaving.send([2])
        var senders: Set<PeerID> = []
        while senders.count < 2, let frame = try server.receive(timeout: .seconds(5)) {
            senders.insert(frame.peer)
        }
        #expect(senders.count == 2)
        #expect(server.takeConnectionEvents().isEmpty)
        let clock = ContinuousClock()
        let start = clock.now
        leaving.close()
        let closed = eventually { () -> [PeerID]? in
            _ = try? server.receive(timeout: .milliseconds(10))
            let events = server.takeConnectionEvents()
            return events.closed.isEmpty ? nil : events.closed
        }
        #expect(closed == [PeerID(bytes: Array("leave".utf8))])
        #expect(start.duration(to: clock.now) < .seconds(1))
        withExtendedLifetime(staying) {}
    }

    @Test("A client counts the connection re-established after its server restarts")
    func clientSeesRestartedServer() throws {
        var server: ZeroMQServer? = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*")
        let endpoint = server!.endpoint
        let client = try ZeroMQClient(connectingTo: endpoint)
        try client.send([1])
        #expect(try server!.receive(timeout: .seconds(5)) != nil)
        #expect(client.takeConnectionEvents().reestablished == 0)
        server!.close()
        server = nil
        Thread.sleep(forTimeInterval: 0.3)
        let restarted = try ZeroMQServer(bindingTo: endpoint)
        let again = eventually { () -> Int? in
            let count = client.takeConnectionEvents().reestablished
            return count > 0 ? count : nil
        }
        #expect(again == 1)
        try client.send([2])
        #expect(try restarted.receive(timeout: .seconds(5))?.bytes == [2])
    }
}
