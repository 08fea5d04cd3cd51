import Foundation
import Testing
import Transport

#if canImport(Glibc)
import Glibc
#endif

/// A TCP peer that completes the ZMTP 3.1 NULL handshake as a DEALER named `identity`,
/// then never reads or writes again: a frozen process, as ZMTP heartbeats see it.
final class FrozenPeer {
    let descriptor: Int32

    init?(port: UInt16, identity: String) {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        // Greeting: signature, version 3.1, mechanism "NULL" (20 bytes), as-server 0, filler.
        var greeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 1]
        greeting += Array("NULL".utf8) + [UInt8](repeating: 0, count: 16) + [0]
        greeting += [UInt8](repeating: 0, count: 31)
        func property(_ name: String, _ value: String) -> [UInt8] {
            let count = UInt32(value.utf8.count)
            return [UInt8(name.utf8.count)] + Array(name.utf8)
                + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: count >> $0) } + Array(value.utf8)
        }
        let body =
            [5] + Array("READY".utf8) + property("Socket-Type", "DEALER")
            + property("Identity", identity)
        let ready = [0x04, UInt8(body.count)] + body
        let handshake = greeting + ready
        guard
            handshake.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) })
                == handshake.count
        else {
            close(descriptor)
            return nil
        }
    }

    deinit { close(descriptor) }
}

@Suite("ZMTP heartbeats")
struct HeartbeatTests {
    @Test("A frozen peer is dropped within the heartbeat timeout")
    func frozenPeerDropped() throws {
        var options = ZeroMQOptions()
        options.heartbeatInterval = .milliseconds(100)
        options.heartbeatTimeout = .milliseconds(300)
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*", options: options)
        let port = try #require(server.endpoint.split(separator: ":").last.flatMap { UInt16($0) })
        let peer = PeerID(bytes: Array("frozen".utf8))
        let frozen = try #require(FrozenPeer(port: port, identity: "frozen"))
        // Wait (bounded) until the handshake attached the peer, then until it is dropped.
        let clock = ContinuousClock()
        var attachedAt: ContinuousClock.Instant?
        var droppedAt: ContinuousClock.Instant?
        for _ in 0..<100 where droppedAt == nil {
            let error = transportError { try server.send([1], to: peer) }
            if error == nil, attachedAt == nil { attachedAt = clock.now }
            if error == .unknownPeer(peer), attachedAt != nil { droppedAt = clock.now }
            Thread.sleep(forTimeInterval: 0.03)
        }
        let attached = try #require(attachedAt, "the raw peer never completed the handshake")
        let dropped = try #require(droppedAt, "the frozen peer was never dropped")
        // Not before the heartbeat timeout (so the handshake itself was fine), well before 1 s.
        let lifetime = attached.duration(to: dropped)
        #expect(lifetime >= .milliseconds(250) && lifetime < .seconds(1))
        withExtendedLifetime(frozen) {}
    }
}
