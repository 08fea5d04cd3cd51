import CPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` on a new detached POSIX thread named `name` (at most 15 bytes show), as
/// Foundation's `Thread` would, without linking all of Foundation into the board client.
/// Starting the thread is a full memory barrier: what the caller wrote before is visible to
/// `body`. Returns `false` (and runs nothing) when the system refuses a thread.
@discardableResult
func startDetachedThread(named name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    #if canImport(Glibc)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let created = pthread_create(
        &thread, nil,
        { argument in
            guard let argument else { return nil }
            let start = Unmanaged<Start>.fromOpaque(argument).takeRetainedValue()
            maestro_set_thread_name(start.name)
            start.body()
            return nil
        }, start)
    guard created == 0 else {
        Unmanaged<AnyObject>.fromOpaque(start).release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// Writes `line` and a newline to standard error, unbuffered, as one `write` (short of a
/// signal): what `FileHandle.standardError.write` does, without linking all of Foundation.
public func writeToStandardError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes {
            write(2, $0.baseAddress! + offset, $0.count - offset)
        }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}
