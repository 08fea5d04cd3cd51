import CZeroMQ
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A ZeroMQ authentication handler (ZAP, RFC 27) that admits CURVE clients whose public
/// key is on an allow-list.
///
/// It binds a REP socket to `inproc://zeromq.zap.01` in the server's context (libzmq asks
/// that endpoint about every handshake on sockets of the context) and answers on a thread
/// of its own, which owns the socket from start to close.
final class ZAPAuthenticator {
    private let stopRequested = StopFlag()
    private let finished = DispatchSemaphore(value: 0)
    private var isRunning = true

    init(
        context: ZeroMQContext, allowedClientKeys: Set<String>,
        onRefusal: @escaping @Sendable (CurveRefusal) -> Void
    ) throws(TransportError) {
        let socket = try ZeroMQSocket(
            context: context, type: ZMQ_REP, endpoint: "inproc://zeromq.zap.01")
        try socket.set(ZMQ_LINGER, Int32(0), "ZMQ_LINGER")
        _ = try socket.bind("inproc://zeromq.zap.01")
        let handover = SocketHandover(socket: socket)
        let stopRequested = stopRequested
        let finished = finished
        let started = startDetachedThread(named: "maestro-zap") {
            Self.serve(handover.socket, allowedClientKeys, onRefusal, stopRequested)
            handover.socket.close()
            finished.signal()
        }
        guard started else {
            socket.close()
            throw .setupFailed(
                what: "the ZAP handler thread", reason: "the system refused a new thread")
        }
    }

    /// Stops the handler thread and waits for it to close its socket (at most one poll
    /// interval, 50 ms).
    func stop() {
        guard isRunning else { return }
        isRunning = false
        stopRequested.set()
        finished.wait()
    }

    deinit { stop() }

    private static func serve(
        _ socket: ZeroMQSocket, _ allowed: Set<String>,
        _ onRefusal: @Sendable (CurveRefusal) -> Void, _ stopRequested: StopFlag
    ) {
        var lastLogged = [String: ContinuousClock.Instant]()
        let clock = ContinuousClock()
        while !stopRequested.isSet {
            guard (try? socket.waitReadable(timeout: 50)) == true,
                let request = try? socket.receiveParts(limit: 8)
            else { continue }
            let parts = request.parts
            guard parts.count >= 6, request.count == parts.count else {
                // Not a ZAP request we can answer; REP still owes a reply.
                reply(
                    socket, requestID: parts.count > 1 ? parts[1] : [], status: "500",
                    text: "malformed request", user: "")
                continue
            }
            let address = String(decoding: parts[3], as: UTF8.self)
            let mechanism = String(decoding: parts[5], as: UTF8.self)
            var refusal: CurveRefusal?
            var key = ""
            if String(decoding: parts[0], as: UTF8.self) != "1.0" {
                refusal = CurveRefusal(
                    address: address, publicKey: "", reason: "ZAP version not 1.0")
            } else if mechanism != "CURVE" || parts.count < 7 || parts[6].count != 32 {
                refusal = CurveRefusal(
                    address: address, publicKey: "", reason: "mechanism \(mechanism)")
            } else {
                key = z85(parts[6])
                if !allowed.contains(key) {
                    refusal = CurveRefusal(
                        address: address, publicKey: key, reason: "key not in allow-list")
                }
            }
            if let refusal {
                reply(socket, requestID: parts[1], status: "400", text: refusal.reason, user: "")
                let logKey = refusal.address + " " + refusal.publicKey
                let now = clock.now
                if let last = lastLogged[logKey], last.duration(to: now) < .seconds(10) { continue }
                lastLogged[logKey] = now
                onRefusal(refusal)
            } else {
                reply(socket, requestID: parts[1], status: "200", text: "OK", user: key)
            }
        }
    }

    private static func reply(
        _ socket: ZeroMQSocket, requestID: [UInt8], status: String, text: String, user: String
    ) {
        let parts: [[UInt8]] = [
            Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(user.utf8),
            [],
        ]
        for (index, part) in parts.enumerated() {
            _ = try? socket.sendPart(part, more: index < parts.count - 1)
        }
    }
}

/// Carries the ZAP socket to its thread.
///
/// `@unchecked Sendable`: the creating thread builds and binds the socket, hands it over
/// before its thread starts (a full memory barrier, which libzmq requires for moving a socket
/// between threads) and never touches it again; only the handler thread uses it after.
private final class SocketHandover: @unchecked Sendable {
    let socket: ZeroMQSocket
    init(socket: ZeroMQSocket) { self.socket = socket }
}

/// A Boolean set once by the owner and polled by the handler thread.
///
/// `@unchecked Sendable`: every access holds the lock.
private final class StopFlag: @unchecked Sendable {
    private let lock = ConditionLock()
    private var value = false

    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
