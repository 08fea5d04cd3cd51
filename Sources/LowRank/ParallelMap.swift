import Dispatch

/// `(0..<count).map(body)`, with contiguous runs of indices on up to `threads` threads at
/// once: the same values in the same order, whatever the number of threads.
///
/// `body` must not depend on the order indices run in (evaluation batches, each computed
/// on its own); one thread, or a single index, runs on the calling thread.
func mapInParallel<T: Sendable>(
    _ count: Int, threads: Int, _ body: @Sendable (Int) -> T
) -> [T] {
    let threads = min(max(threads, 1), count)
    guard threads > 1 else { return (0..<count).map(body) }
    var results = [T?](repeating: nil, count: count)
    results.withUnsafeMutableBufferPointer { buffer in
        let slots = ResultSlots(base: buffer.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let start = count * thread / threads
            let end = count * (thread + 1) / threads
            for index in start..<end { (slots.base + index).pointee = body(index) }
        }
    }
    return results.map { $0! }
}

/// The result buffer the threads of `mapInParallel` write into.
///
/// Safe to share: thread `t` writes only slots `count·t/threads ..< count·(t+1)/threads`,
/// runs that do not overlap, and the buffer is read only after `concurrentPerform` has
/// returned.
private struct ResultSlots<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T?>
}
