import CZeroMQ
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes libzmq holds for one connection: frames handed to it and not yet released.
///
/// libzmq does not report per-peer queue sizes, but it releases a message's buffer through
/// the free function given to `zmq_msg_init_data` once nothing refers to it any more: when
/// the connection's encoder has written the last byte to the kernel, or the frame is dropped
/// with its connection. ``send(_:on:flags:)`` charges the counter when it hands a frame over
/// and that function credits it back, on libzmq's I/O thread: hence the atomic.
final class QueuedBytes: Sendable {
    private let bytes = Atomic<Int>(0)

    /// Bytes charged and not yet released.
    var current: Int { bytes.load(ordering: .acquiring) }

    /// Sends `payload` as the last part of a message on `socket` from a buffer libzmq
    /// releases through ``releaseQueuedFrame``, charged `payload.count + overhead` until
    /// then; returns 0 or the errno (a frame libzmq refused is released at once).
    func send(
        _ payload: [UInt8], overhead: Int, on handle: UnsafeMutableRawPointer, flags: Int32
    ) -> Int32 {
        let header = MemoryLayout<Int>.stride
        guard let base = malloc(header + max(payload.count, 1)) else { return ENOMEM }
        let charge = payload.count + overhead
        base.storeBytes(of: charge, as: Int.self)
        let data = base + header
        payload.withUnsafeBytes { buffer in
            if let source = buffer.baseAddress { memcpy(data, source, buffer.count) }
        }
        bytes.add(charge, ordering: .relaxed)
        var message = zmq_msg_t()
        let hint = Unmanaged.passRetained(self).toOpaque()
        guard zmq_msg_init_data(&message, data, payload.count, releaseQueuedFrame, hint) == 0
        else {
            releaseQueuedFrame(data, hint)
            return zmq_errno()
        }
        while true {
            if zmq_msg_send(&message, handle, flags) >= 0 { return 0 }
            let code = zmq_errno()
            if code != EINTR {
                zmq_msg_close(&message)  // releases the buffer: the charge is credited back
                return code
            }
        }
    }

    fileprivate func release(_ charge: Int) { bytes.subtract(charge, ordering: .releasing) }
}

/// libzmq's free function for ``QueuedBytes`` frames: credits the charge stored in front of
/// the payload to the counter passed as the hint (retained for the frame), and frees both.
private func releaseQueuedFrame(_ data: UnsafeMutableRawPointer?, _ hint: UnsafeMutableRawPointer?)
{
    guard let data, let hint else { return }
    let base = data - MemoryLayout<Int>.stride
    let counter = Unmanaged<QueuedBytes>.fromOpaque(hint).takeRetainedValue()
    counter.release(base.load(as: Int.self))
    free(base)
}
