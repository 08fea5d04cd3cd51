import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A ``ZeroMQServer`` read by a thread of its own, so that frames are taken, and some
/// answered, while the owner is busy (a coordinator aggregating or evaluating a round).
///
/// The I/O thread waits on the socket's `ZMQ_FD` and a wake-up pipe, takes every frame as it
/// arrives, and either answers it at once (when the `answering` function given to
/// ``start(answering:)`` returns a reply: a coordinator's link probes) or queues it for the
/// owner, together with connection news, in arrival order. The owner's ``receive(timeout:)``
/// and ``receiveArrival(timeout:)`` take from that queue; its ``send(_:to:)`` goes straight
/// to the socket and returns the same results as the server's (never blocking: the server's
/// sends do not wait). Both threads use the socket only while holding one mutex; the I/O
/// thread waits without it.
///
/// The queue holds at most ``queueBudget`` bytes of frames (each charged 128 bytes more):
/// beyond that, the I/O thread stops reading until the owner takes some, and frames wait in
/// libzmq and the kernel as they did without this thread, so what the server holds for the
/// owner stays bounded and no frame is lost.
public final class ServedServer: MessageTransport {
    /// Bytes of queued frames beyond which the I/O thread stops reading.
    public let queueBudget: Int
    /// What the owner took and sent (as ``ZeroMQServer/statistics`` counts them, but counted
    /// when the owner takes a frame, so that they add up to what the owner has seen).
    public private(set) var statistics = TransportStatistics()
    private let shared: Shared
    /// Connection news taken from the queue ahead of the frames the owner received since.
    private var pendingEvents = ConnectionEvents()

    /// Serves `server`.
    ///
    /// The I/O thread starts with ``start(answering:)``; until then, and after ``stop()``,
    /// calls go straight to `server`.
    public init(_ server: ZeroMQServer, queueBudget: Int = 16 << 20) throws(TransportError) {
        self.queueBudget = queueBudget
        shared = try Shared(server: server, budget: queueBudget)
    }

    deinit { stop() }

    /// Bytes of frames the I/O thread has queued and the owner not taken (each charged
    /// ``ServerLimits/frameOverhead`` more): less than ``queueBudget`` plus one frame.
    public var queuedBytes: Int { shared.lock.withLock { shared.queuedBytes } }

    /// The server's bound endpoint.
    public var endpoint: String { shared.withServer { $0.endpoint } }

    /// Starts the I/O thread.
    ///
    /// `answering` returns the reply to a frame the thread answers itself (its owner then
    /// receives an ``Arrival/answered(_:)`` in its place), or `nil` to pass the frame on. It
    /// runs on the I/O thread, holding the server's lock.
    public func start(
        answering: @escaping @Sendable (ReceivedFrame) -> [UInt8]?
    ) throws(TransportError) {
        let descriptor = try shared.withServer { (server) throws(TransportError) in
            try server.readinessDescriptor()
        }
        let shared = self.shared
        shared.lock.withLock { shared.running = true }
        let started = startDetachedThread(named: "maestro-io") {
            shared.serve(readiness: descriptor, answering: answering)
        }
        guard started else {
            shared.lock.withLock { shared.running = false }
            throw .setupFailed(what: "starting the I/O thread", reason: "pthread_create failed")
        }
    }

    /// Stops the I/O thread and waits for it; frames it had queued are still received.
    public func stop() {
        shared.lock.withLock {
            guard shared.running else { return }
            shared.stopping = true
            shared.wake()
            while shared.running {
                _ = shared.lock.wait(until: ConditionLock.deadline(after: .seconds(1)))
            }
            shared.stopping = false
        }
    }

    /// Sends through the server (see ``ZeroMQServer/send(_:to:)``); never blocks on a peer.
    public func send(_ bytes: [UInt8], to peer: PeerID) throws(TransportError) {
        try shared.withServer { (server) throws(TransportError) in
            try server.send(bytes, to: peer)
        }
        // The send may have used up the edge `ZMQ_FD` signalled for a frame that arrived:
        // the I/O thread looks again.
        shared.wake()
        statistics.recordSent(bytes.count)
    }

    public func receive(timeout: Duration) throws(TransportError) -> ReceivedFrame? {
        let deadline = ConditionLock.deadline(after: timeout)
        while true {
            switch try next(until: deadline, timeout: timeout) {
            case .frame(let frame)?: return frame
            case .answered?: continue  // a caller that takes only frames: counted, not shown
            case nil: return nil
            }
        }
    }

    public func receiveArrival(timeout: Duration) throws(TransportError) -> Arrival? {
        try next(until: ConditionLock.deadline(after: timeout), timeout: timeout)
    }

    /// Connection news in the order the I/O thread saw it: what came before the next queued
    /// frame, and what came while the frames received since the last call were read.
    public func takeConnectionEvents() -> ConnectionEvents {
        let (events, direct) = shared.lock.withLock { () -> (ConnectionEvents, Bool) in
            var events = ConnectionEvents()
            while case .events(let news)? = shared.peek() {
                events.append(news)
                shared.pop()
            }
            return (events, !shared.running)
        }
        pendingEvents.append(events)
        if direct { pendingEvents.append(shared.withServer { $0.takeConnectionEvents() }) }
        defer { pendingEvents = ConnectionEvents() }
        return pendingEvents
    }

    /// Stops the I/O thread and closes the server.
    public func close() {
        stop()
        shared.withServer { $0.close() }
    }

    /// The next frame or answer, waiting until `deadline`; connection news on the way is
    /// kept for ``takeConnectionEvents()``.
    private func next(
        until deadline: timespec, timeout: Duration
    ) throws(TransportError)
        -> Arrival?
    {
        let taken = shared.lock.withLock { () -> Shared.Item?? in
            while true {
                while let item = shared.peek() {
                    shared.pop()
                    if case .events(let news) = item {
                        pendingEvents.append(news)
                        continue
                    }
                    return item
                }
                guard shared.running else { return .some(nil) }  // read the server directly
                if !shared.lock.wait(until: deadline), shared.peek() == nil { return nil }
            }
        }
        switch taken {
        case nil: return nil
        case .some(nil):
            let frame = try shared.withServer { (server) throws(TransportError) in
                try server.receive(timeout: timeout)
            }
            if let frame { statistics.recordReceived(frame.bytes.count) }
            return frame.map(Arrival.frame)
        case .some(.frame(let frame))?:
            statistics.recordReceived(frame.bytes.count)
            return .frame(frame)
        case .some(.answered(let answer))?:
            statistics.recordReceived(answer.frameBytes)
            if answer.error == nil { statistics.recordSent(answer.replyBytes) }
            return .answered(answer)
        case .some(.failure(let error))?:
            throw error
        case .some(.events)?:
            return nil  // never returned by the loop above
        }
    }
}

/// The state both threads share.
///
/// `@unchecked Sendable`: every stored property but the constants (the pipe's descriptors,
/// the budget, the atomic `wakePending`) is read and written only with `lock` held (the I/O
/// thread waits in `poll` without it), and the server, which libzmq allows to move between
/// threads given a full memory barrier, is used only by the thread holding the lock: the
/// mutex is that barrier.
private final class Shared: @unchecked Sendable {
    enum Item {
        case frame(ReceivedFrame)
        case answered(AnsweredFrame)
        case events(ConnectionEvents)
        case failure(TransportError)

        /// What the item costs the queue's budget.
        var cost: Int {
            if case .frame(let frame) = self {
                return frame.bytes.count + ServerLimits.frameOverhead
            }
            return ServerLimits.frameOverhead
        }
    }

    let lock = ConditionLock()
    private let server: ZeroMQServer
    private let budget: Int
    /// The wake-up pipe: the owner writes a byte, the I/O thread's `poll` returns.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// Whether a wake-up byte is in the pipe already (so that a burst of sends writes one).
    private let wakePending = Atomic<Bool>(false)

    private var items: [Item] = []
    private var head = 0
    private(set) var queuedBytes = 0
    var running = false
    var stopping = false

    init(server: ZeroMQServer, budget: Int) throws(TransportError) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw .setupFailed(what: "pipe", reason: String(cString: strerror(errno)))
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        (wakeRead, wakeWrite) = (descriptors[0], descriptors[1])
        self.server = server
        self.budget = budget
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func withServer<T, E: Error>(_ body: (ZeroMQServer) throws(E) -> T) throws(E) -> T {
        try lock.withLock { () throws(E) -> T in try body(server) }
    }

    /// Wakes the I/O thread from its `poll` (at most one byte waits in the pipe).
    func wake() {
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // The queue (with `lock` held).

    func peek() -> Item? { head < items.count ? items[head] : nil }

    func pop() {
        let wasFull = queuedBytes >= budget
        queuedBytes -= items[head].cost
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.count < 4096)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        if wasFull && queuedBytes < budget { wake() }
    }

    private func push(_ item: Item) {
        items.append(item)
        queuedBytes += item.cost
    }

    /// The I/O thread: read, answer or queue, wait; until ``stopping``.
    func serve(readiness: Int32, answering: @Sendable (ReceivedFrame) -> [UInt8]?) {
        while true {
            let (finished, moreNow) = lock.withLock { () -> (Bool, Bool) in
                if stopping { return (true, false) }
                let failed = takeArrivals(answering: answering)
                if failed || stopping { return (true, false) }
                let more = queuedBytes < budget && ((try? server.hasInput()) ?? false)
                return (false, more)
            }
            if finished { break }
            if moreNow { continue }
            var descriptors = [
                pollfd(fd: readiness, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            // The interval bounds how late connection news (read with the frames) can be.
            _ = poll(&descriptors, 2, 25)
            var sink = [UInt8](repeating: 0, count: 64)
            while read(wakeRead, &sink, sink.count) > 0 {}
            wakePending.store(false, ordering: .releasing)
        }
        lock.withLock {
            running = false
            lock.broadcast()
        }
    }

    /// Takes up to 256 frames while the queue has room, answering those `answering` answers;
    /// returns whether the server failed (the failure is queued for the owner).
    private func takeArrivals(answering: @Sendable (ReceivedFrame) -> [UInt8]?) -> Bool {
        let before = items.count - head
        defer { if items.count - head != before { lock.broadcast() } }
        var taken = 0
        while queuedBytes < budget && taken < 256 {
            queueEvents()
            let frame: ReceivedFrame?
            do {
                frame = try server.receive(timeout: .zero)
            } catch {
                push(.failure(error))
                if !error.isPeerFault { return true }
                continue
            }
            guard let frame else { break }
            taken += 1
            guard let reply = answering(frame) else {
                push(.frame(frame))
                continue
            }
            var failure: TransportError?
            do {
                try server.send(reply, to: frame.peer)
            } catch {
                failure = error
            }
            push(
                .answered(
                    AnsweredFrame(
                        peer: frame.peer, authenticatedKey: frame.authenticatedKey,
                        frameBytes: frame.bytes.count, replyBytes: reply.count, error: failure)))
        }
        queueEvents()
        return false
    }

    private func queueEvents() {
        let events = server.takeConnectionEvents()
        if !events.isEmpty { push(.events(events)) }
    }
}
