import Foundation
import Testing
import Transport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain TCP connection to a server's endpoint that never speaks ZMTP.
private final class RawConnection {
    let descriptor: Int32

    init(to endpoint: String) throws {
        let port = UInt16(endpoint.split(separator: ":").last.flatMap { Int($0) } ?? 0)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    /// Whether the server has closed the connection: reads what it sent (its ZMTP greeting)
    /// until the end of the stream, waiting at most `milliseconds` for each read.
    func isClosed(waiting milliseconds: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var item = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&item, 1, milliseconds) == 1 else { return false }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { return true }  // end of stream, or reset
        }
    }

    deinit { close(descriptor) }
}

@Suite("Per-peer bounds: queued bytes, connection caps, handshakes", .serialized)
struct PeerLimitTests {
    /// Polls `body` every 20 ms for up to `seconds`, until it returns a value.
    private func eventually<T>(seconds: Double = 10, _ body: () throws -> T?) rethrows -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let value = try body() { return value }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }

    @Test(
        "A peer that never reads is cut at its byte budget, never above it, and its connection dropped; an honest peer is still answered"
    )
    func nonReadingPeer() throws {
        var limits = ServerLimits()
        limits.queuedBytesPerConnection = 1 << 20
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", limits: limits)
        var stalled = ZeroMQOptions()
        stalled.highWaterMark = 1  // its libzmq stops reading the socket after one frame
        let hostile = try ZeroMQClient(
            connectingTo: server.endpoint, options: stalled, routingID: Array("hostile".utf8))
        let honest = try ZeroMQClient(
            connectingTo: server.endpoint, routingID: Array("honest".utf8))
        try hostile.send([1])
        let first = try #require(try server.receive(timeout: .seconds(5)))
        #expect(first.peer == PeerID(bytes: Array("hostile".utf8)))
        // 256 KiB replies until one is refused: the kernel's socket buffers take some MiB
        // first, then libzmq holds the rest, up to the budget. 400 frames are 100 MiB.
        let reply = [UInt8](repeating: 7, count: 256 << 10)
        var refusal: TransportError?
        var sent = 0
        for _ in 0..<400 {
            do {
                try server.send(reply, to: first.peer)
                sent += 1
            } catch {
                refusal = error
                break
            }
            #expect(server.queuedBytes(for: first.peer) <= limits.queuedBytesPerConnection)
        }
        guard case .peerQueueFull(let peer, let queued, let budget) = refusal else {
            Issue.record(
                "expected peerQueueFull after \(sent) frames, got \(String(describing: refusal))")
            return
        }
        #expect(peer == first.peer && budget == 1 << 20)
        #expect(queued > 0 && queued <= budget)
        #expect(refusal?.isPeerFault == true)
        // The connection is dropped, and with it the frames libzmq held.
        let closed = eventually { () -> [PeerID]? in
            _ = try? server.receive(timeout: .milliseconds(10))
            let events = server.takeConnectionEvents()
            return events.closed.isEmpty ? nil : events.closed
        }
        #expect(closed == [first.peer])
        #expect(eventually { server.queuedBytes(for: first.peer) == 0 ? true : nil } == true)
        // The honest peer is served as before.
        try honest.send([2])
        let question = try #require(try server.receive(timeout: .seconds(5)))
        #expect(question.peer == PeerID(bytes: Array("honest".utf8)))
        try server.send([3], to: question.peer)
        #expect(try honest.receive(timeout: .seconds(5))?.bytes == [3])
        withExtendedLifetime(hostile) {}
    }

    @Test("A peer that reads takes frame after frame far beyond its budget")
    func readingPeer() throws {
        var limits = ServerLimits()
        limits.queuedBytesPerConnection = 1 << 20
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", limits: limits)
        let client = try ZeroMQClient(connectingTo: server.endpoint)
        try client.send([1])
        let peer = try #require(try server.receive(timeout: .seconds(5))).peer
        let frame = [UInt8](repeating: 9, count: 768 << 10)
        for index in 0..<64 {  // 48 MiB in all, one frame queued at a time
            try server.send(frame, to: peer)
            #expect(
                try client.receive(timeout: .seconds(5))?.bytes.count == frame.count, "\(index)")
            // libzmq's I/O thread releases a frame a moment after its last byte is written.
            #expect(eventually { server.queuedBytes(for: peer) == 0 ? true : nil } == true)
        }
    }

    @Test("Connections over the per-address cap are closed on arrival; those before them stay")
    func perAddressCap() throws {
        var limits = ServerLimits()
        limits.maximumConnectionsPerAddress = 3
        limits.handshakeInterval = .seconds(60)  // only the cap closes anything here
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", limits: limits)
        let honest = try ZeroMQClient(connectingTo: server.endpoint)
        try honest.send([1])
        let peer = try #require(try server.receive(timeout: .seconds(5))).peer
        let idle = try (0..<7).map { _ in try RawConnection(to: server.endpoint) }
        var refused: [String] = []
        _ = eventually { () -> Bool? in
            _ = try? server.receive(timeout: .milliseconds(10))
            refused += server.takeConnectionEvents().refused
            return refused.count >= 5 ? true : nil
        }
        #expect(refused == Array(repeating: "127.0.0.1", count: 5))
        // Two idle connections fit under the cap with the honest one; the other five are shut.
        let closed = idle.filter { $0.isClosed(waiting: 2000) }.count
        #expect(closed == 5)
        try server.send([2], to: peer)
        #expect(try honest.receive(timeout: .seconds(5))?.bytes == [2])
    }

    @Test("Connections over the total cap are closed on arrival; closed ones free their slots")
    func totalCap() throws {
        var limits = ServerLimits()
        limits.maximumConnections = 4
        limits.maximumConnectionsPerAddress = 4
        limits.handshakeInterval = .seconds(60)
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", limits: limits)
        var idle = try (0..<4).map { _ in try RawConnection(to: server.endpoint) }
        _ = eventually { () -> Bool? in
            _ = try? server.receive(timeout: .milliseconds(10))
            return server.openConnections == 4 ? true : nil
        }
        #expect(server.openConnections == 4)
        let extra = try RawConnection(to: server.endpoint)
        let refused = eventually { () -> [String]? in
            _ = try? server.receive(timeout: .milliseconds(10))
            let refused = server.takeConnectionEvents().refused
            return refused.isEmpty ? nil : refused
        }
        #expect(refused == ["127.0.0.1"])
        #expect(extra.isClosed(waiting: 2000))
        #expect(idle.allSatisfy { !$0.isClosed(waiting: 10) })
        idle.removeAll()  // closes them
        let freed = eventually { () -> Bool? in
            _ = try? server.receive(timeout: .milliseconds(10))
            return server.openConnections == 0 ? true : nil
        }
        #expect(freed == true)
        let client = try ZeroMQClient(connectingTo: server.endpoint)
        try client.send([5])
        #expect(try server.receive(timeout: .seconds(5))?.bytes == [5])
    }

    @Test("A connection that never finishes its handshake is closed after the handshake interval")
    func handshakeInterval() throws {
        var limits = ServerLimits()
        limits.handshakeInterval = .milliseconds(300)
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", limits: limits)
        let silent = try RawConnection(to: server.endpoint)
        // libzmq's default (30 s) would keep it past this bound.
        #expect(silent.isClosed(waiting: 5000))
        withExtendedLifetime(server) {}
    }

    @Test(
        "A frame above the inbound limit drops its connection, one at the limit arrives, and what the server sends is not bound by it"
    )
    func inboundFrameLimit() throws {
        var limits = ServerLimits()
        limits.maximumInboundFrameBytes = 4096
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", limits: limits)
        let client = try ZeroMQClient(connectingTo: server.endpoint)
        try client.send([UInt8](repeating: 1, count: 4096))
        let atLimit = try eventually { try server.receive(timeout: .milliseconds(50)) }
        #expect(atLimit?.bytes.count == 4096)
        try client.send([UInt8](repeating: 2, count: 4097))
        #expect(try server.receive(timeout: .milliseconds(300)) == nil)
        // The connection was dropped and the DEALER reconnects; its small frames arrive again
        // (bounded retries), and the oversize frame never does.
        var recovered: ReceivedFrame?
        for _ in 0..<50 where recovered == nil {
            try client.send([3])
            recovered = try server.receive(timeout: .milliseconds(100))
        }
        #expect(recovered?.bytes == [3])
        #expect(server.statistics.framesReceived >= 2)
        #expect(server.statistics.bytesReceived < 4096 + 4097)
        // The server still sends frames far larger than it accepts.
        let large = [UInt8](repeating: 4, count: 1 << 20)
        try server.send(large, to: client.routingID)
        let reply = try eventually { try client.receive(timeout: .milliseconds(50)) }
        #expect(reply?.bytes == large)
    }
}
