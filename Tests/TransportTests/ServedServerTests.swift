import Foundation
import Testing
import Transport

/// Polls `body` every 10 ms for up to 10 s, until it returns a value (a bounded loop).
private func eventually<T>(_ body: () throws -> T?) rethrows -> T? {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if let value = try body() { return value }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return nil
}

/// Arrivals until `count` came or 10 s passed.
private func arrivals(_ served: ServedServer, count: Int) throws -> [Arrival] {
    var taken: [Arrival] = []
    let deadline = Date().addingTimeInterval(10)
    while taken.count < count, Date() < deadline {
        if let arrival = try served.receiveArrival(timeout: .milliseconds(100)) {
            taken.append(arrival)
        }
    }
    return taken
}

@Suite("A server read by a thread of its own", .serialized)
struct ServedServerTests {
    static let ping = Array("ping".utf8)
    static let pong = Array("pong!".utf8)

    @Test(
        "A frame the thread answers is answered while the owner reads nothing; the owner then gets every arrival in order, the answered one as news"
    )
    func answersWhileOwnerIsBusy() throws {
        let served = try ServedServer(ZeroMQServer(bindingTo: "tcp://127.0.0.1:*"))
        try served.start { $0.bytes == Self.ping ? Self.pong : nil }
        let client = try ZeroMQClient(connectingTo: served.endpoint)
        try client.send([1])
        try client.send(Self.ping)
        try client.send([2])
        // The owner has not called receive: the answer comes from the I/O thread alone.
        let reply = try eventually { try client.receive(timeout: .milliseconds(50)) }
        #expect(reply?.bytes == Self.pong)
        let taken = try arrivals(served, count: 3)
        let peer = client.routingID
        #expect(
            taken == [
                .frame(ReceivedFrame(peer: peer, bytes: [1])),
                .answered(
                    AnsweredFrame(
                        peer: peer, authenticatedKey: nil, frameBytes: 4, replyBytes: 5,
                        error: nil)),
                .frame(ReceivedFrame(peer: peer, bytes: [2])),
            ])
        // Counted as the owner saw them: three frames in, the answer out.
        #expect(
            served.statistics
                == TransportStatistics(
                    framesSent: 1, bytesSent: 5, framesReceived: 3, bytesReceived: 6))
        served.close()
    }

    @Test(
        "With its queue full the thread stops reading: the queue stays within its budget and no frame is lost"
    )
    func boundedQueue() throws {
        let served = try ServedServer(
            ZeroMQServer(bindingTo: "tcp://127.0.0.1:*"), queueBudget: 2048)
        try served.start { _ in nil }
        let client = try ZeroMQClient(connectingTo: served.endpoint)
        let frames = (0..<60).map { pattern(500, seed: UInt8($0)) }
        for frame in frames { try client.send(frame) }
        // Whenever looked at, the queue holds less than its budget plus one frame.
        let ceiling = 2048 + 500 + ServerLimits.frameOverhead
        var received: [[UInt8]] = []
        let deadline = Date().addingTimeInterval(10)
        while received.count < frames.count, Date() < deadline {
            #expect(served.queuedBytes < ceiling)
            if let frame = try served.receive(timeout: .milliseconds(100)) {
                received.append(frame.bytes)
            }
        }
        #expect(received == frames)
        served.close()
    }

    @Test("The owner's sends go out while the thread runs; after stop the server is read directly")
    func sendsAndStop() throws {
        let served = try ServedServer(ZeroMQServer(bindingTo: "tcp://127.0.0.1:*"))
        try served.start { _ in nil }
        let client = try ZeroMQClient(connectingTo: served.endpoint)
        try client.send([7])
        #expect(try receiveFrames(served, count: 1).map(\.bytes) == [[7]])
        for index in 0..<100 { try served.send([UInt8(index)], to: client.routingID) }
        #expect(try receiveFrames(client, count: 100).map(\.bytes) == (0..<100).map { [UInt8($0)] })
        served.stop()
        try client.send([8])
        #expect(try receiveFrames(served, count: 1).map(\.bytes) == [[8]])
        try served.start { _ in nil }  // and again
        try client.send([9])
        #expect(try receiveFrames(served, count: 1).map(\.bytes) == [[9]])
        served.close()
    }

    @Test("A closed connection is reported after the frames that came before it")
    func connectionNews() throws {
        let served = try ServedServer(ZeroMQServer(bindingTo: "tcp://127.0.0.1:*"))
        try served.start { _ in nil }
        let client = try ZeroMQClient(connectingTo: served.endpoint)
        try client.send([5])
        #expect(try receiveFrames(served, count: 1).map(\.bytes) == [[5]])
        client.close()
        let closed = eventually { () -> [PeerID]? in
            let events = served.takeConnectionEvents()
            if events.closed.isEmpty {
                _ = try? served.receive(timeout: .milliseconds(20))
                return nil
            }
            return events.closed
        }
        #expect(closed == [client.routingID])
        served.close()
    }
}
