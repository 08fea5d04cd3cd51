import CZeroMQ
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Connection events of one socket, read from libzmq's socket monitor (`zmq_socket_monitor`):
/// a PAIR socket on a private `inproc://` endpoint of the socket's context receives one
/// two-part message per event, `[u16 event, u32 value]` (native byte order) then the endpoint.
///
/// The value is the connection's file descriptor for `ACCEPTED`, `CONNECTED` and
/// `DISCONNECTED`, which is how a server maps an event to the peers that spoke on that
/// connection (`ZMQ_SRCFD` of their messages). Confined to the owner of the watched socket.
final class ZeroMQMonitor {
    struct Event: Equatable {
        var kind: Int32
        var value: UInt32
    }

    private let socket: ZeroMQSocket
    private let watched: ZeroMQSocket
    /// Makes each monitor endpoint of the process unique.
    private static let counter = Atomic<Int>(0)

    /// Starts monitoring `watched` for `events` (a mask of `ZMQ_EVENT_*`).
    init(watching watched: ZeroMQSocket, events: Int32) throws(TransportError) {
        let endpoint =
            "inproc://maestro-monitor-\(getpid())-\(Self.counter.add(1, ordering: .relaxed).newValue)"
        let handle = try watched.liveHandle()
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else {
            throw .setupFailed(what: "zmq_socket_monitor(\(watched.endpoint))", reason: zmqReason())
        }
        let socket = try ZeroMQSocket(context: watched.context, type: ZMQ_PAIR, endpoint: endpoint)
        try socket.set(ZMQ_LINGER, Int32(0), "ZMQ_LINGER")
        // No high-water mark on the inproc pipe (0 on either side makes it unbounded): a
        // flood of connections between two reads must not lose an event, or a server would
        // count a closed connection as open for ever.
        try socket.set(ZMQ_RCVHWM, Int32(0), "ZMQ_RCVHWM")
        try socket.connect(endpoint)
        self.socket = socket
        self.watched = watched
    }

    /// Every event queued so far, without blocking.
    func drain() -> [Event] {
        var events: [Event] = []
        while let received = try? socket.receiveParts(limit: 1), received.count >= 1 {
            let head = received.parts[0]
            guard head.count >= 6 else { continue }
            let kind = UInt16(head[0]) | UInt16(head[1]) << 8
            var value: UInt32 = 0
            for index in 0..<4 { value |= UInt32(head[2 + index]) << (8 * index) }
            // libzmq writes both fields in native order; every supported target is little-endian.
            events.append(Event(kind: Int32(kind), value: value))
        }
        return events
    }

    /// Stops the monitor and closes its socket (before the watched socket closes).
    func close() {
        if let handle = watched.handle { zmq_socket_monitor(handle, nil, 0) }
        socket.close()
    }
}
