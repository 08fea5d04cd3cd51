import Foundation
import Testing
import Transport

@Suite("Multiplexed connections (a worker hosting many clients)")
struct MultiplexingTests {
    @Test(
        "Each channel of one connection is its own peer; replies reach their channel; counters count frames only"
    )
    func channels() throws {
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*")
        defer { server.close() }
        let worker = try ZeroMQClient(connectingTo: server.endpoint, multiplexed: true)
        defer { worker.close() }
        let device = try ZeroMQClient(connectingTo: server.endpoint)
        defer { device.close() }

        let channels: [[UInt8]] = [[], Array("0".utf8), Array("17".utf8), Array("9999".utf8)]
        for (index, channel) in channels.enumerated() {
            try worker.send(
                pattern(10 + index, seed: UInt8(index)), to: .coordinator(channel: channel))
        }
        try device.send([1, 2, 3])
        let frames = try receiveFrames(server, count: 5)
        #expect(frames.count == 5)
        let fromWorker = frames.filter { $0.peer.bytes == worker.routingID.bytes }
        #expect(fromWorker.map(\.peer.channel) == channels.map { Optional($0) })
        #expect(Set(fromWorker.map(\.peer)).count == 4, "every channel is a distinct peer")
        #expect(fromWorker.map(\.bytes.count) == [10, 11, 12, 13])
        let direct = frames.first { $0.peer.bytes == device.routingID.bytes }
        #expect(direct?.peer.channel == nil && direct?.bytes == [1, 2, 3])
        #expect(direct?.peer == device.routingID)

        // Replies go back on the channel they are addressed to, in order.
        for frame in fromWorker.reversed() { try server.send(frame.bytes + [0xFF], to: frame.peer) }
        let replies = try receiveFrames(worker, count: 4)
        #expect(
            replies.map(\.peer)
                == fromWorker.reversed().map { .coordinator(channel: $0.peer.channel!) })
        #expect(replies.map(\.bytes.count) == [14, 13, 12, 11])
        // A direct client never sees a channel.
        try server.send([9], to: direct!.peer)
        #expect(try receiveFrames(device, count: 1).map(\.peer) == [.coordinator])

        // Counters add the frames, never the channel parts.
        #expect(server.statistics.bytesReceived == 10 + 11 + 12 + 13 + 3)
        #expect(worker.statistics.bytesSent == 10 + 11 + 12 + 13)
        #expect(server.statistics.bytesSent == 14 + 13 + 12 + 11 + 1)
        #expect(worker.statistics.bytesReceived == 14 + 13 + 12 + 11)
    }

    @Test("A multiplexed client refuses peers without a channel, a direct one peers with one")
    func wrongPeers() throws {
        let server = try ZeroMQServer(bindingTo: "tcp://127.0.0.1:*")
        defer { server.close() }
        let worker = try ZeroMQClient(connectingTo: server.endpoint, multiplexed: true)
        defer { worker.close() }
        let device = try ZeroMQClient(connectingTo: server.endpoint)
        defer { device.close() }
        #expect(
            transportError { try worker.send([1], to: .coordinator) } == .unknownPeer(.coordinator))
        let channelled = PeerID.coordinator(channel: [1])
        #expect(transportError { try device.send([1], to: channelled) } == .unknownPeer(channelled))
        let long = PeerID.coordinator(channel: Array(repeating: 65, count: 256))
        #expect(transportError { try worker.send([1], to: long) } == .unknownPeer(long))
        #expect(worker.statistics.framesSent == 0 && device.statistics.framesSent == 0)
    }
}
