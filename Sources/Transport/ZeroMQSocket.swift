import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A ZeroMQ context: the I/O threads behind a set of sockets, and the scope of `inproc://`
/// endpoints (the ZAP handler must share its server's context).
///
/// `@unchecked Sendable`: libzmq documents contexts as thread-safe, and the only mutable
/// state, the handle, is written once in `init` and read-only afterwards. `zmq_ctx_term`
/// runs in `deinit`, after every socket (each holds a strong reference) has been closed.
public final class ZeroMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// Makes a context with `ioThreads` I/O threads (1 is plenty below ~1 GB/s).
    public init(ioThreads: Int32 = 1) throws(TransportError) {
        guard let handle = zmq_ctx_new() else {
            throw .setupFailed(what: "zmq_ctx_new", reason: zmqReason())
        }
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 {
            let reason = zmqReason()
            zmq_ctx_term(handle)
            throw .setupFailed(what: "zmq_ctx_set(ZMQ_IO_THREADS)", reason: reason)
        }
        self.handle = handle
    }

    /// `context`, or a new one when it is `nil`.
    static func existing(_ context: ZeroMQContext?) throws(TransportError) -> ZeroMQContext {
        if let context { return context }
        return try ZeroMQContext()
    }

    deinit {
        // Sockets are closed with a small linger, so this returns promptly.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// The reason libzmq gives for its last error on this thread, with the errno.
func zmqReason(_ code: Int32 = zmq_errno()) -> String {
    "\(String(cString: zmq_strerror(code))) (errno \(code))"
}

/// Milliseconds in a duration, rounded up, clamped to `Int32`.
func milliseconds(_ duration: Duration) -> Int32 {
    let (seconds, attoseconds) = duration.components
    if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
    let total = seconds.multipliedReportingOverflow(by: 1000)
    if total.overflow || total.partialValue > Int64(Int32.max) { return Int32.max }
    let fraction = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    return Int32(min(Int64(Int32.max), total.partialValue + fraction))
}

/// One ZeroMQ socket, confined to its owner (not `Sendable`): option setters, bind and
/// connect with typed errors, multipart send and receive with byte copies.
final class ZeroMQSocket {
    let context: ZeroMQContext
    private(set) var handle: UnsafeMutableRawPointer?
    /// The endpoint for error messages ("tcp://127.0.0.1:5555").
    var endpoint: String

    init(context: ZeroMQContext, type: Int32, endpoint: String) throws(TransportError) {
        guard let handle = zmq_socket(context.handle, type) else {
            throw .setupFailed(what: "zmq_socket", reason: zmqReason())
        }
        self.context = context
        self.handle = handle
        self.endpoint = endpoint
    }

    deinit { close() }

    func close() {
        if let handle { zmq_close(handle) }
        handle = nil
    }

    func liveHandle() throws(TransportError) -> UnsafeMutableRawPointer {
        guard let handle else { throw .closed(endpoint: endpoint) }
        return handle
    }

    func set(_ option: Int32, _ value: Int32, _ name: String) throws(TransportError) {
        var value = value
        let handle = try liveHandle()
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) != 0 {
            throw .setupFailed(what: "zmq_setsockopt(\(name), \(value))", reason: zmqReason())
        }
    }

    func set(_ option: Int32, _ value: Int64, _ name: String) throws(TransportError) {
        var value = value
        let handle = try liveHandle()
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) != 0 {
            throw .setupFailed(what: "zmq_setsockopt(\(name), \(value))", reason: zmqReason())
        }
    }

    func set(_ option: Int32, _ bytes: [UInt8], _ name: String) throws(TransportError) {
        let handle = try liveHandle()
        let result = bytes.withUnsafeBytes {
            zmq_setsockopt(handle, option, $0.baseAddress, $0.count)
        }
        if result != 0 {
            throw .setupFailed(what: "zmq_setsockopt(\(name))", reason: zmqReason())
        }
    }

    func string(_ option: Int32, _ name: String) throws(TransportError) -> String {
        let handle = try liveHandle()
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        if zmq_getsockopt(handle, option, &buffer, &size) != 0 {
            throw .setupFailed(what: "zmq_getsockopt(\(name))", reason: zmqReason())
        }
        return String(
            decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Binds and returns the bound endpoint (`ZMQ_LAST_ENDPOINT`, with the real port for
    /// `tcp://host:*`).
    func bind(_ address: String) throws(TransportError) -> String {
        let handle = try liveHandle()
        if zmq_bind(handle, address) != 0 {
            let code = zmq_errno()
            let reason = zmqReason(code)
            switch code {
            case EADDRINUSE: throw .addressInUse(endpoint: address, reason: reason)
            case EADDRNOTAVAIL: throw .addressNotAvailable(endpoint: address, reason: reason)
            case EINVAL, EPROTONOSUPPORT, ENOCOMPATPROTO, ENODEV:
                throw .invalidEndpoint(endpoint: address, reason: reason)
            default: throw .bindFailed(endpoint: address, reason: reason)
            }
        }
        endpoint = try string(ZMQ_LAST_ENDPOINT, "ZMQ_LAST_ENDPOINT")
        return endpoint
    }

    func connect(_ address: String) throws(TransportError) {
        let handle = try liveHandle()
        if zmq_connect(handle, address) != 0 {
            let code = zmq_errno()
            let reason = zmqReason(code)
            switch code {
            case EINVAL, EPROTONOSUPPORT, ENOCOMPATPROTO, ENODEV:
                throw .invalidEndpoint(endpoint: address, reason: reason)
            default: throw .connectFailed(endpoint: address, reason: reason)
            }
        }
        endpoint = address
    }

    /// Sends one part and returns 0 or the errno (retrying on EINTR); with `dontWait`, a full
    /// queue returns EAGAIN at once instead of blocking for `ZMQ_SNDTIMEO`.
    func sendPart(
        _ bytes: [UInt8], more: Bool, dontWait: Bool = false
    ) throws(TransportError) -> Int32 {
        let handle = try liveHandle()
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        return bytes.withUnsafeBytes { buffer in
            while true {
                if zmq_send(handle, buffer.baseAddress, buffer.count, flags) >= 0 {
                    return 0
                }
                let code = zmq_errno()
                if code != EINTR { return code }
            }
        }
    }

    /// `ZMQ_FD`: a descriptor that becomes readable when the socket's state may have
    /// changed. It signals edges, not levels: after any use of the socket, check
    /// ``hasInput()`` before waiting on it.
    func readinessDescriptor() throws(TransportError) -> Int32 {
        let handle = try liveHandle()
        var descriptor: Int32 = -1
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(handle, ZMQ_FD, &descriptor, &size) != 0 {
            throw .setupFailed(what: "zmq_getsockopt(ZMQ_FD)", reason: zmqReason())
        }
        return descriptor
    }

    /// Whether a message can be read now (`ZMQ_EVENTS` has `ZMQ_POLLIN`), without waiting.
    func hasInput() throws(TransportError) -> Bool {
        let handle = try liveHandle()
        var events: Int32 = 0
        var size = MemoryLayout<Int32>.size
        while zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size) != 0 {
            let code = zmq_errno()
            if code == EINTR { continue }
            if code == ETERM { throw .closed(endpoint: endpoint) }
            throw .receiveFailed(endpoint: endpoint, reason: zmqReason(code))
        }
        return events & Int32(ZMQ_POLLIN) != 0
    }

    /// Waits until a message can be read or the timeout passes.
    func waitReadable(timeout: Int32) throws(TransportError) -> Bool {
        let handle = try liveHandle()
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let result = zmq_poll(&item, 1, Int(timeout))
        if result < 0 {
            let code = zmq_errno()
            if code == EINTR { return false }
            if code == ETERM { throw .closed(endpoint: endpoint) }
            throw .receiveFailed(endpoint: endpoint, reason: zmqReason(code))
        }
        return result > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0
    }

    /// Reads every part of the next message without blocking; `nil` if none is ready.
    ///
    /// Stops copying parts after `limit` of them (the rest are read and dropped) but
    /// reports the true part count.
    func receiveParts(limit: Int) throws(TransportError) -> (parts: [[UInt8]], count: Int)? {
        try receiveParts(limit: limit, metadata: nil)
    }

    /// What libzmq knows of the connection a message came in on.
    struct Metadata {
        /// The connection's file descriptor (`ZMQ_SRCFD`; -1 if unknown).
        var sourceFD: Int32 = -1
        /// The ZAP handler's user ID for the connection (the client's CURVE key), if any.
        var userID: String?
    }

    /// ``receiveParts(limit:)`` that also reads the message's connection metadata.
    func receiveParts(
        limit: Int, metadata: UnsafeMutablePointer<Metadata>?
    ) throws(TransportError) -> (parts: [[UInt8]], count: Int)? {
        let handle = try liveHandle()
        var parts = [[UInt8]]()
        var count = 0
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let flags = count == 0 ? ZMQ_DONTWAIT : 0
            if zmq_msg_recv(&message, handle, flags) < 0 {
                let code = zmq_errno()
                if code == EINTR { continue }
                if code == EAGAIN && count == 0 { return nil }
                if code == ETERM { throw .closed(endpoint: endpoint) }
                throw .receiveFailed(endpoint: endpoint, reason: zmqReason(code))
            }
            count += 1
            // A ROUTER's identity part, made up by libzmq after a poll, may carry neither:
            // take them from any part that has them (the payload does).
            if let metadata {
                let fd = zmq_msg_get(&message, ZMQ_SRCFD)
                if fd >= 0 { metadata.pointee.sourceFD = fd }
                if metadata.pointee.userID == nil, let user = zmq_msg_gets(&message, "User-Id") {
                    let text = String(cString: user)
                    metadata.pointee.userID = text.isEmpty ? nil : text
                }
            }
            if parts.count < limit {
                let size = zmq_msg_size(&message)
                let data = zmq_msg_data(&message)
                parts.append(
                    [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                        if size > 0 { memcpy(buffer.baseAddress!, data!, size) }
                        initialized = size
                    })
            }
            if zmq_msg_more(&message) == 0 { return (parts, count) }
        }
    }
}

/// Socket options shared by the coordinator's and the clients' sockets.
public struct ZeroMQOptions: Sendable, Equatable {
    /// `ZMQ_MAXMSGSIZE`, and the limit `send` checks outbound.
    ///
    /// An inbound frame larger than this makes libzmq drop the connection: the sender
    /// reconnects, the frame is lost.
    public var maximumMessageSize: Int = 64 << 20
    /// `ZMQ_LINGER`: how long `close` keeps trying to deliver queued frames.
    public var linger: Duration = .milliseconds(200)
    /// `ZMQ_SNDTIMEO`: how long `send` blocks on a full queue before `sendTimedOut`.
    public var sendTimeout: Duration = .seconds(2)
    /// `ZMQ_SNDHWM` and `ZMQ_RCVHWM`, in frames, per connection.
    public var highWaterMark: Int32 = 1000
    /// `ZMQ_HEARTBEAT_IVL`: ZMTP PING interval on every connection.
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// `ZMQ_HEARTBEAT_TIMEOUT`: a connection with no traffic for this long after a PING is
    /// dropped.
    public var heartbeatTimeout: Duration = .seconds(2)
    /// `ZMQ_HEARTBEAT_TTL`: asks the remote side to drop us after this long without traffic
    /// (libzmq rounds it to tenths of a second).
    public var heartbeatTimeToLive: Duration = .seconds(2)
    /// `ZMQ_TCP_KEEPALIVE_IDLE` in seconds (keepalive is always on).
    ///
    /// Catches half-open TCP connections that ZMTP heartbeats cannot reach, such as those
    /// that never finished the handshake.
    public var tcpKeepaliveIdleSeconds: Int32 = 30
    /// `ZMQ_RECONNECT_IVL` and `ZMQ_RECONNECT_IVL_MAX` (clients): first retry and back-off cap.
    public var reconnectInterval: Duration = .milliseconds(100)
    public var reconnectIntervalMaximum: Duration = .seconds(1)
    /// `ZMQ_CONNECT_TIMEOUT` (clients): a TCP connect that hangs, its SYNs lost on a cut
    /// link, is abandoned after this long and retried at the reconnect interval, so a client
    /// is back within about a second of the link returning instead of waiting out the
    /// kernel's SYN back-off (1, 2, 4, 8 s …).
    public var connectTimeout: Duration = .seconds(1)

    public init() {}

    func apply(to socket: ZeroMQSocket) throws(TransportError) {
        try socket.set(ZMQ_LINGER, milliseconds(linger), "ZMQ_LINGER")
        try socket.set(ZMQ_MAXMSGSIZE, Int64(maximumMessageSize), "ZMQ_MAXMSGSIZE")
        try socket.set(ZMQ_SNDTIMEO, milliseconds(sendTimeout), "ZMQ_SNDTIMEO")
        try socket.set(ZMQ_SNDHWM, highWaterMark, "ZMQ_SNDHWM")
        try socket.set(ZMQ_RCVHWM, highWaterMark, "ZMQ_RCVHWM")
        try socket.set(ZMQ_HEARTBEAT_IVL, milliseconds(heartbeatInterval), "ZMQ_HEARTBEAT_IVL")
        try socket.set(
            ZMQ_HEARTBEAT_TIMEOUT, milliseconds(heartbeatTimeout), "ZMQ_HEARTBEAT_TIMEOUT")
        try socket.set(ZMQ_HEARTBEAT_TTL, milliseconds(heartbeatTimeToLive), "ZMQ_HEARTBEAT_TTL")
        try socket.set(ZMQ_TCP_KEEPALIVE, Int32(1), "ZMQ_TCP_KEEPALIVE")
        try socket.set(ZMQ_TCP_KEEPALIVE_IDLE, tcpKeepaliveIdleSeconds, "ZMQ_TCP_KEEPALIVE_IDLE")
        try socket.set(ZMQ_TCP_KEEPALIVE_INTVL, Int32(5), "ZMQ_TCP_KEEPALIVE_INTVL")
        try socket.set(ZMQ_TCP_KEEPALIVE_CNT, Int32(3), "ZMQ_TCP_KEEPALIVE_CNT")
        try socket.set(ZMQ_RECONNECT_IVL, milliseconds(reconnectInterval), "ZMQ_RECONNECT_IVL")
        try socket.set(
            ZMQ_RECONNECT_IVL_MAX, milliseconds(reconnectIntervalMaximum), "ZMQ_RECONNECT_IVL_MAX")
        try socket.set(ZMQ_CONNECT_TIMEOUT, milliseconds(connectTimeout), "ZMQ_CONNECT_TIMEOUT")
    }
}

/// Repeats `attempt` until it returns a value or `timeout` has passed.
///
/// The ZeroMQ receive loop: a readable socket can still yield nothing, as after a dropped
/// oversize frame.
func untilDeadline<T>(
    _ timeout: Duration, _ attempt: (_ remaining: Int32) throws(TransportError) -> T?
) throws(TransportError) -> T? {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        let remaining = milliseconds(clock.now.duration(to: deadline))
        if let value = try attempt(remaining) { return value }
        if clock.now >= deadline { return nil }
    }
}
