#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one peer may cost the coordinator's server: bytes queued for it, connections per
/// source address and in all, and the time a connection gets to finish its handshake.
///
/// ZeroMQ bounds queues in messages (`ZMQ_SNDHWM`), not bytes, and a ROUTER has no
/// per-address connection limit (libzmq 4.3.4, no DRAFT API), so ``ZeroMQServer`` enforces
/// these itself: see its documentation and `docs/security.md`, "Bounded per peer".
public struct ServerLimits: Sendable, Equatable {
    /// Bytes handed to ZeroMQ for one connection that ZeroMQ still holds (not yet written to
    /// the kernel's socket buffer), charged with ``frameOverhead`` per frame. A send that
    /// would pass it, while anything is queued, fails at once and the connection is dropped;
    /// one frame of any allowed size always goes to a connection with nothing queued.
    public var queuedBytesPerConnection: Int = 4 << 20
    /// Open TCP connections at most; those accepted beyond it are closed at once.
    public var maximumConnections: Int = ServerLimits.defaultMaximumConnections
    /// Open TCP connections from one source address at most (default: half of
    /// ``maximumConnections``, so that one address cannot take every slot).
    public var maximumConnectionsPerAddress: Int = ServerLimits.defaultMaximumConnections / 2
    /// `ZMQ_HANDSHAKE_IVL`: a connection that has not finished the ZMTP (and CURVE)
    /// handshake by then is closed (libzmq's default is 30 s).
    public var handshakeInterval: Duration = .seconds(5)
    /// `ZMQ_MAXMSGSIZE` on the server: a peer that announces a larger frame is disconnected
    /// before anything is allocated for it. libzmq allocates each incoming frame whole as its
    /// header arrives, so this bounds what one connection can make the server hold while a
    /// frame is read. A coordinator sets it from its scenario (its largest UPDATE, see
    /// `InboundFrameLimit`); sending is bounded by the transport options instead.
    public var maximumInboundFrameBytes: Int = 64 << 20

    /// What a queued frame costs beyond its payload in the budget: libzmq's message and
    /// content records and the allocator's rounding, so that many tiny frames are bounded
    /// too.
    public static let frameOverhead = 128

    /// The soft limit on open files less 256 descriptors for the run's files, libzmq's own
    /// and the launcher's pipes, and at least 64.
    public static var defaultMaximumConnections: Int {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < rlim_t(Int32.max) else {
            return 4096
        }
        return max(64, Int(clamping: limit.rlim_cur) - 256)
    }

    public init() {}
}

/// The numeric address (IPv4 or IPv6, without the port) of the peer of a TCP descriptor.
func peerAddress(of descriptor: Int32) -> String? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getpeername(descriptor, $0, &length)
        }
    }
    guard result == 0 else { return nil }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = Int32(storage.ss_family)
    let converted: UnsafePointer<CChar>? = withUnsafePointer(to: &storage) { pointer in
        switch family {
        case AF_INET:
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                var address = $0.pointee.sin_addr
                return inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
            }
        case AF_INET6:
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                var address = $0.pointee.sin6_addr
                return inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
            }
        default: nil
        }
    }
    guard converted != nil else { return nil }
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
