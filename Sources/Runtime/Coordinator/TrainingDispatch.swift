import Transport

/// Which worker trains which hosted client's TRAIN, and when: any admitted worker can train any
/// client of the fleet, so a round's tasks are handed out one at a time to whichever worker
/// is free, and both cores stay busy whatever the selection and however unequal the
/// clients' data.
///
/// The machine addresses client `c` at its home peer (the worker connection it registered
/// through, channel `c`); a TRAIN for a hosted client is queued here and sent to `(worker, c)`
/// when that worker has no task in hand. The machine accepts the round's UPDATE for `c` only
/// from the peer the TRAIN went to; the frame that answers it frees that worker.
struct TrainingDispatch<Ticket> {
    struct Task {
        let frame: [UInt8]
        let home: PeerID
        let ticket: Ticket
        /// The round the task belongs to: a task still queued when its round ended is dropped.
        let round: Int
    }

    /// Worker connections that can train (the holders of shares), in the order they joined.
    private(set) var workers: [PeerID] = []
    /// Tasks sent to each worker and not yet answered.
    private var inHand: [PeerID: Int] = [:]
    /// Client channel → (the worker training it, its task).
    private var routes: [[UInt8]: (worker: PeerID, task: Task)] = [:]
    private var queue: [Task] = []
    private var queueHead = 0

    /// Whether a TRAIN for `home` goes through the pool (a hosted client), rather than
    /// straight to a device.
    func dispatches(_ home: PeerID) -> Bool {
        guard let channel = home.channel, !channel.isEmpty else { return false }
        return workers.contains(home.connection)
    }

    /// A worker connection joined.
    mutating func add(worker connection: PeerID) {
        guard !workers.contains(connection) else { return }
        workers.append(connection)
        inHand[connection] = 0
    }

    /// A worker connection is gone: no task goes to it any more. Returns the home peers of the
    /// clients whose TRAIN it held.
    @discardableResult
    mutating func remove(worker connection: PeerID) -> [PeerID] {
        workers.removeAll { $0 == connection }
        inHand[connection] = nil
        let stranded = routes.filter { $0.value.worker == connection }
        for channel in stranded.keys { routes[channel] = nil }
        return stranded.values.map(\.task.home)
    }

    mutating func enqueue(_ task: Task) { queue.append(task) }

    /// The next task to send and where, if a worker is free; tasks of rounds before
    /// `currentRound` are dropped.
    mutating func next(currentRound: Int) -> (task: Task, target: PeerID)? {
        while queueHead < queue.count && queue[queueHead].round < currentRound { queueHead += 1 }
        guard queueHead < queue.count,
            let free = workers.first(where: { inHand[$0, default: 0] == 0 })
        else {
            if queueHead == queue.count { (queue, queueHead) = ([], 0) }
            return nil
        }
        let task = queue[queueHead]
        queueHead += 1
        let channel = task.home.channel ?? []
        if let previous = routes[channel] { inHand[previous.worker, default: 1] -= 1 }
        inHand[free, default: 0] += 1
        routes[channel] = (free, task)
        return (task, free.onChannel(channel))
    }

    /// The task in hand at `target` (a worker connection on a client's channel), if any.
    func task(routedTo target: PeerID) -> Task? {
        guard let channel = target.channel, let route = routes[channel],
            route.worker == target.connection
        else { return nil }
        return route.task
    }

    /// Puts `task` back at the front of the queue (its worker is gone).
    mutating func requeue(_ task: Task) {
        if queueHead > 0 {
            queueHead -= 1
            queue[queueHead] = task
        } else {
            queue.insert(task, at: 0)
        }
    }

    /// A frame arrived from `peer`: if it is on the channel of a task that worker holds, the
    /// task is answered and the worker free again.
    mutating func arrived(from peer: PeerID) {
        guard let channel = peer.channel, let route = routes[channel],
            route.worker == peer.connection
        else { return }
        routes[channel] = nil
        inHand[route.worker, default: 1] -= 1
    }
}

extension TrainingDispatch: Sendable where Ticket: Sendable {}
extension TrainingDispatch.Task: Sendable where Ticket: Sendable {}
