import Transport

/// Which worker trains which hosted client's TRAIN, and when: any worker can train any client
/// of the fleet (each holds every client's rows), so a round's tasks are handed out one at a
/// time to whichever worker is free, and both cores stay busy whatever the selection and
/// however unequal the clients' data.
///
/// The coordinator's machine never sees this: it addresses client `c` at its home peer (the
/// worker connection it registered through, channel `c`) and checks every UPDATE against that
/// peer, as for a device. The driver queues the TRAIN here and sends it to `(worker, c)` when
/// that worker has no task in hand; for the frame that answers it from exactly that worker and
/// channel, the machine is handed the home peer. A frame from any other connection is passed
/// on unchanged, so it is refused as before. A task is reported delivered (its ledger row)
/// when it is actually sent.
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
    /// Client channel → (the worker training it, the client's home peer).
    private var routes: [[UInt8]: (worker: PeerID, home: PeerID)] = [:]
    private var queue: [Task] = []
    private var queueHead = 0

    /// Whether a TRAIN for `home` goes through the pool (a hosted client), rather than
    /// straight to a device.
    func dispatches(_ home: PeerID) -> Bool {
        guard let channel = home.channel, !channel.isEmpty else { return false }
        return workers.contains(home.connection)
    }

    /// A worker connection joined (or took a share over).
    mutating func add(worker connection: PeerID) {
        guard !workers.contains(connection) else { return }
        workers.append(connection)
        inHand[connection] = 0
    }

    /// A worker connection is gone (dead, or its share moved to another connection): no task
    /// goes to it any more. Returns the home peers of the clients whose TRAIN it held.
    @discardableResult
    mutating func remove(worker connection: PeerID) -> [PeerID] {
        workers.removeAll { $0 == connection }
        inHand[connection] = nil
        let stranded = routes.filter { $0.value.worker == connection }
        for channel in stranded.keys { routes[channel] = nil }
        return stranded.values.map(\.home)
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
        routes[channel] = (free, task.home)
        return (task, free.onChannel(channel))
    }

    /// Sending `task` to `target` failed: the worker is gone; the task goes back to the front.
    mutating func sendFailed(_ task: Task, target: PeerID) {
        remove(worker: target.connection)
        queueHead -= 1
        queue[queueHead] = task
    }

    /// The peer the machine should see for a frame from `peer`: the home peer for the answer
    /// to a dispatched TRAIN (the worker is then free again), `peer` itself otherwise.
    mutating func arrived(from peer: PeerID) -> PeerID {
        guard let channel = peer.channel, let route = routes[channel],
            route.worker == peer.connection
        else { return peer }
        routes[channel] = nil
        inHand[route.worker, default: 1] -= 1
        return route.home
    }
}
