import Federation
import Fleet
import Testing
import Transport

@testable import Runtime

/// A machine with a worker secret and made-up training rows (client `i`'s are `[100 + i]`),
/// driven with made-up frames: every send is recorded and delivered.
struct WorkerHarness {
    static let secret = "0123456789abcdef0123456789abcdef"
    var machine: CoordinatorMachine
    var sent: [(frame: [UInt8], to: PeerID, ticket: SendTicket)] = []
    var logs: [String] = []
    /// Every rejection, with the index of its line in `logs`.
    var rejections: [(line: Int, reason: RejectionReason)] = []

    init(slots: Int?, enrolment: Enrolment? = nil) throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: scenario.evaluationSamples(),
            expectedClients: nil, registrationTimeout: .seconds(10), roundTimeout: .seconds(5),
            maximumMessageSize: 1 << 22, enrolment: enrolment, workerSlots: slots,
            workerSecret: Self.secret, partitionRows: { (0..<8).map { [100 + $0] } },
            resumingFrom: nil)
    }

    mutating func perform(_ actions: [CoordinatorAction]) {
        for action in actions {
            switch action {
            case .send(let frame, let peer, let ticket):
                sent.append((frame, peer, ticket))
                perform(machine.delivered(ticket))
            case .log(let line): logs.append(line)
            case .rejected(let rejection):
                rejections.append((logs.count, rejection.reason))
                logs.append(rejection.description)
            default: break
            }
        }
    }

    /// Delivers `message` from `peer`; returns what was sent in answer.
    @discardableResult
    mutating func deliver(
        _ message: Message, from peer: PeerID, key: String? = nil, round: UInt32 = 0,
        sender: UInt32 = 0
    ) -> [(frame: [UInt8], to: PeerID, ticket: SendTicket)] {
        let before = sent.count
        perform(
            machine.received(
                ReceivedFrame(
                    peer: peer, bytes: WireCodec.encode(message, round: round, sender: sender),
                    authenticatedKey: key), at: .zero))
        return Array(sent[before...])
    }

    mutating func hello(
        from connection: PeerID, credential: String = secret, key: String? = nil,
        slot: UInt32? = nil, slots: UInt32? = nil
    ) -> [(frame: [UInt8], to: PeerID, ticket: SendTicket)] {
        deliver(
            .workerHello(
                WorkerHello(
                    slot: slot, slots: slots, instanceNonce: 1, host: "h",
                    credential: credential)), from: connection.onChannel([]), key: key)
    }

    /// Registers fleet client `index` on `connection`'s channel; returns the rejection reason,
    /// or `nil` when it registered.
    mutating func register(
        _ index: Int, on connection: PeerID, channel: Int? = nil, requested: UInt32? = nil,
        key: String? = nil
    ) -> RejectionReason? {
        let peer = channel.map { connection.onChannel(Array(String($0).utf8)) } ?? connection
        let before = logs.count
        deliver(
            .register(
                Registration(
                    tierName: index < 4 ? "small" : "large", capability: 1, sampleCount: 50,
                    instanceNonce: UInt64(1000 + index),
                    requestedClientID: requested ?? UInt32(index))), from: peer, key: key)
        return rejection(since: before)
    }

    /// The reason of the first rejection logged since log line `start`.
    func rejection(since start: Int) -> RejectionReason? {
        rejections.first { $0.line >= start }?.reason
    }

    static func message(_ frame: [UInt8]) -> Message? {
        try? WireCodec.decode(frame, maximumSize: 1 << 22).message
    }
}

@Suite("Workers as principals: admission, shares, rows and dispatch on the state machine")
struct WorkerAdmissionTests {
    let first = PeerID(bytes: [0x57, 1])
    let second = PeerID(bytes: [0x57, 2])
    let stranger = PeerID(bytes: [0x66])

    @Test("A HELLO without the secret learns nothing, fixes no split, and is answered with fewer bytes")
    func forgedHello() throws {
        var harness = try WorkerHarness(slots: nil)
        for credential in ["", "wrong", WorkerHarness.secret + "0"] {
            let helloBytes = WireCodec.encode(
                .workerHello(
                    WorkerHello(slot: 0, slots: 5, instanceNonce: 1, host: "h", credential: credential)),
                round: 0, sender: 0
            ).count
            let replies = harness.hello(from: stranger, credential: credential, slot: 0, slots: 5)
            #expect(replies.count == 1)
            #expect(replies.allSatisfy { $0.frame.count <= helloBytes })
            guard case .error(let report)? = replies.first.flatMap({ WorkerHarness.message($0.frame) })
            else {
                Issue.record("no error reply to a forged HELLO")
                continue
            }
            #expect(report.message == WorkerPool.notAWorker)
            #expect(harness.machine.workers.slots == nil, "a forged HELLO fixed the split")
        }
        // Garbage on a control channel gets no answer at all.
        harness.perform(
            harness.machine.received(
                ReceivedFrame(peer: stranger.onChannel([]), bytes: [1, 2, 3]), at: .zero))
        #expect(harness.sent.count == 3)
        // The real worker's split is taken; it gets its own clients' rows only.
        let replies = harness.hello(from: first, slot: 0, slots: 2)
        guard case .workerAssignment(let assignment)? = replies.first.flatMap({ WorkerHarness.message($0.frame) })
        else {
            Issue.record("the worker got no assignment")
            return
        }
        #expect(assignment.slot == 0 && assignment.slots == 2)
        #expect(assignment.rows == [[100], [102], [104], [106]])
        #expect(replies.first?.to == first.onChannel([]))
    }

    @Test("A share held by a live connection is refused to another; it is free once that connection closes")
    func noTakeover() throws {
        var harness = try WorkerHarness(slots: 2)
        #expect(harness.hello(from: first, slot: 0).count == 1)
        #expect(harness.machine.workers.holders[0]?.connection == first)
        let refused = harness.hello(from: second, slot: 0)
        guard case .error(let report)? = refused.first.flatMap({ WorkerHarness.message($0.frame) })
        else {
            Issue.record("a live share was handed over")
            return
        }
        #expect(report.message.contains("held by a live worker"))
        #expect(report.code == .retryLater, "the worker is to ask again, not give up")
        #expect(harness.machine.workers.holders[0]?.connection == first)
        // The same connection asking again keeps it and is answered again.
        guard case .workerAssignment? = harness.hello(from: first).first.flatMap({ WorkerHarness.message($0.frame) })
        else {
            Issue.record("the holder's repeated HELLO was not answered")
            return
        }
        harness.perform(harness.machine.disconnected([first], at: .zero))
        guard case .workerAssignment(let assignment)? = harness.hello(from: second, slot: 0).first.flatMap({ WorkerHarness.message($0.frame) })
        else {
            Issue.record("a freed share was not handed out")
            return
        }
        #expect(assignment.slot == 0)
    }

    @Test("Under an allow-list only a key enrolled as a worker is one; a device key never is")
    func workerKeys() throws {
        let deviceKey = String(repeating: "d", count: 40)
        let workerKey = String(repeating: "w", count: 40)
        var enrolment = Enrolment()
        #expect(enrolment.add(key: deviceKey, entry: .init(clientID: 0, tier: "small")) == nil)
        #expect(enrolment.add(key: workerKey, entry: .worker) == nil)
        var harness = try WorkerHarness(slots: 2, enrolment: enrolment)
        // A device key with the secret too: still no worker.
        guard case .error(let report)? = harness.hello(from: stranger, key: deviceKey).first.flatMap({ WorkerHarness.message($0.frame) })
        else {
            Issue.record("a device key was admitted as a worker")
            return
        }
        #expect(report.message == WorkerPool.notAWorker)
        guard case .workerAssignment? = harness.hello(from: first, credential: "", key: workerKey).first.flatMap({ WorkerHarness.message($0.frame) })
        else {
            Issue.record("a worker key was refused")
            return
        }
        // A worker key registers no device; its clients register on its channels.
        #expect(harness.register(2, on: first, key: workerKey) == .workerKey)
        #expect(harness.register(2, on: first, channel: 2, key: workerKey) == nil)
        // The device key's own ID on the worker's channel is bound to the device.
        #expect(harness.register(0, on: first, channel: 0, key: workerKey) == .idBoundToOtherKey)
    }

    @Test(
        "A client registers on a channel only through the admitted worker hosting it, under its index and in its tier"
    )
    func channelRegistration() throws {
        var harness = try WorkerHarness(slots: 2)
        #expect(harness.register(0, on: stranger, channel: 0) == .notHosted)
        _ = harness.hello(from: first, slot: 0)
        _ = harness.hello(from: second, slot: 1)
        #expect(harness.register(0, on: second, channel: 0) == .notHosted)
        #expect(harness.register(2, on: first, channel: 0, requested: 2) == .notHosted)
        // The worker does not choose its clients' tiers: the scenario does.
        #expect(harness.register(6, on: first, channel: 0, requested: 0) == .wrongTier)
        #expect(harness.register(0, on: first, channel: 0) == nil)
        #expect(harness.machine.clients[0]?.peer == first.onChannel(Array("0".utf8)))
    }

    @Test(
        "A guest TRAIN follows its client's rows; its update counts only from that worker, and nothing the home worker sends marks the client gone"
    )
    func dispatchedUpdates() throws {
        let keys = [String(repeating: "a", count: 40), String(repeating: "c", count: 40)]
        var enrolment = Enrolment()
        for key in keys { #expect(enrolment.add(key: key, entry: .worker) == nil) }
        var harness = try WorkerHarness(slots: 2, enrolment: enrolment)
        let workers = [first, second]
        for (slot, worker) in workers.enumerated() {
            _ = harness.hello(from: worker, credential: "", key: keys[slot])
        }
        for index in 0..<8 {
            #expect(harness.register(index, on: workers[index % 2], channel: index, key: keys[index % 2]) == nil)
        }
        // Round 1 has started: one TRAIN in each worker's hand, the rest queued.
        let trains = harness.sent.filter { if case .train = $0.ticket.purpose { true } else { false } }
        #expect(trains.count == 2)
        #expect(Set(trains.map(\.to.connection)) == Set(workers))
        var guest: (client: UInt32, at: PeerID, round: UInt32)?
        for (position, train) in harness.sent.enumerated() {
            guard case .train(let id) = train.ticket.purpose else { continue }
            let home = workers[Int(id) % 2]
            #expect(train.ticket.viaWorker)
            if train.to.connection != home {
                // A client of the other share: its rows came right before, to that worker.
                guard case .workerRows(let rows)? = WorkerHarness.message(harness.sent[position - 1].frame)
                else {
                    Issue.record("client \(id)'s TRAIN went to a guest worker without its rows")
                    continue
                }
                #expect(rows == WorkerRows(client: id, rows: [100 + id]))
                #expect(harness.sent[position - 1].to == train.to.connection.onChannel([]))
                guest = (id, train.to, 1)
            } else {
                // Its own worker has its rows from the assignment: none are sent.
                #expect(position == 0 || WorkerHarness.message(harness.sent[position - 1].frame).map { if case .workerRows = $0 { false } else { true } } ?? true)
            }
        }
        // Whether the first TRAINs went to guests depends on the selection; every client's
        // TRAIN reaches some worker as tasks are answered.
        var answered: Set<UInt32> = []
        var home = 0
        while let train = harness.sent.last(where: { sent in
            if case .train(let id) = sent.ticket.purpose { !answered.contains(id) } else { false }
        }), home < 16 {
            home += 1
            guard case .train(let id) = train.ticket.purpose,
                case .train(let task)? = WorkerHarness.message(train.frame)
            else { break }
            let owner = workers[Int(id) % 2].onChannel(Array(String(id).utf8))
            let update = Message.update(
                TrainingUpdate(
                    factors: task.factors, shared: task.shared, sampleCount: 50,
                    trainingLoss: 1, computeSeconds: 0.01))
            if train.to != owner {
                guest = (id, train.to, 1)
                // The home worker speaks for its client: refused, and the client stays.
                let start = harness.logs.count
                harness.deliver(.heartbeat, from: owner, key: keys[Int(id) % 2])
                harness.deliver(update, from: owner, key: keys[Int(id) % 2], round: 1, sender: id)
                #expect(harness.rejection(since: start) == .notDispatchedHere)
                #expect(harness.machine.isPending(id))
                // A device on the client's channel: not registered there, changes nothing.
                harness.deliver(.heartbeat, from: stranger.onChannel(Array(String(id).utf8)))
            }
            let start = harness.logs.count
            let guestKey = keys[workers.firstIndex(of: train.to.connection)!]
            harness.deliver(update, from: train.to, key: guestKey, round: 1, sender: id)
            #expect(harness.rejection(since: start) == nil, "\(harness.logs[start...])")
            #expect(harness.machine.clients[id]?.connected == true)
            answered.insert(id)
        }
        #expect(guest != nil, "no TRAIN went to a guest worker in round 1")
        #expect(harness.machine.completedRounds >= 0)
        #expect(answered.count == 4)
        #expect((0..<8).allSatisfy { harness.machine.clients[UInt32($0)]?.connected == true })
    }
}

extension WorkerAdmissionTests {
    @Test(
        "Another key on a connection, even only on its control channel, ends what that connection held: its clients and its share"
    )
    func keyTakeover() throws {
        let workerKey = String(repeating: "w", count: 40)
        let deviceKey = String(repeating: "d", count: 40)
        var enrolment = Enrolment()
        #expect(enrolment.add(key: workerKey, entry: .worker) == nil)
        #expect(enrolment.add(key: deviceKey, entry: .init(clientID: 1, tier: "small")) == nil)
        var harness = try WorkerHarness(slots: 2, enrolment: enrolment)
        _ = harness.hello(from: first, credential: "", key: workerKey)
        #expect(harness.register(0, on: first, channel: 0, key: workerKey) == nil)
        #expect(harness.machine.workers.isWorker(first))
        // The routing identity is taken over by a device key that only says HELLO.
        _ = harness.hello(from: first, credential: "", key: deviceKey)
        #expect(harness.machine.clients[0]?.connected == false)
        #expect(!harness.machine.workers.isWorker(first))
        #expect(harness.machine.workers.holders[0] == nil)
        #expect(harness.logs.contains { $0.contains("now carries another key") })
    }
}

extension WorkerAdmissionTests {
    @Test("A REGISTER on a worker's channel takes that channel's index, never another client's ID by its nonce")
    func channelIndexNotNonce() throws {
        var harness = try WorkerHarness(slots: 2)
        // A device registers as client 0 with nonce 1000, then its connection closes.
        #expect(harness.register(0, on: stranger) == nil)
        harness.perform(harness.machine.disconnected([stranger], at: .zero))
        _ = harness.hello(from: second, slot: 1)
        // The worker's client 3 replays client 0's nonce: it is still client 3.
        let start = harness.logs.count
        harness.deliver(
            .register(
                Registration(
                    tierName: "small", capability: 1, sampleCount: 50, instanceNonce: 1000,
                    requestedClientID: 3)), from: second.onChannel(Array("3".utf8)))
        #expect(harness.rejection(since: start) == nil)
        #expect(harness.machine.clients[3]?.peer == second.onChannel(Array("3".utf8)))
        #expect(harness.machine.clients[0]?.peer == stranger)
    }
}

@Suite("Worker shares of a fleet: the split, without a transport")
struct WorkerShareTests {
    func hello(slot: UInt32?, slots: UInt32?, nonce: UInt64) -> WorkerHello {
        WorkerHello(
            slot: slot, slots: slots, instanceNonce: nonce, host: "node\(nonce)",
            credential: WorkerHarness.secret)
    }

    func pool(slots: Int?, fleetSize: Int) -> WorkerPool {
        WorkerPool(
            slots: slots, fleetSize: fleetSize, secret: WorkerHarness.secret, enrolment: nil,
            partitionRows: { nil })
    }

    @Test("A coordinator's split: free shares in order, a named share, a full fleet refused")
    func coordinatorSplit() {
        var pool = pool(slots: 3, fleetSize: 10)
        let a = PeerID(bytes: [1], channel: [])
        #expect(
            pool.hello(hello(slot: nil, slots: nil, nonce: 1), from: a, key: nil)
                == .assigned(slot: 0, slots: 3, renewed: false))
        #expect(
            pool.hello(hello(slot: nil, slots: nil, nonce: 1), from: a, key: nil)
                == .assigned(slot: 0, slots: 3, renewed: true))
        #expect(
            pool.hello(hello(slot: 2, slots: 3, nonce: 2), from: PeerID(bytes: [2]), key: nil)
                == .assigned(slot: 2, slots: 3, renewed: false))
        #expect(
            pool.hello(hello(slot: nil, slots: nil, nonce: 3), from: PeerID(bytes: [3]), key: nil)
                == .assigned(slot: 1, slots: 3, renewed: false))
        guard
            case .refused(let full, true, false) = pool.hello(
                hello(slot: nil, slots: nil, nonce: 4), from: PeerID(bytes: [4]), key: nil)
        else {
            Issue.record("a fourth worker got a share")
            return
        }
        #expect(full.contains("all 3"))
        guard
            case .refused(let mismatch, true, false) = pool.hello(
                hello(slot: 0, slots: 2, nonce: 5), from: PeerID(bytes: [5]), key: nil)
        else {
            Issue.record("a worker with another split got a share")
            return
        }
        #expect(mismatch.contains("3 worker shares") && mismatch.contains("into 2"))
        #expect(Array(pool.clients(ofSlot: 1)) == [1, 4, 7])
        #expect(Array(pool.clients(ofSlot: 0)) == [0, 3, 6, 9])
        let held = a.connection
        #expect(pool.hosts(held, client: 9) && !pool.hosts(held, client: 10))
        #expect(!pool.hosts(held, client: 1))
    }

    @Test("Without a split the first admitted worker's declaration is adopted, within the fleet")
    func declaredSplit() {
        var pool = pool(slots: nil, fleetSize: 4)
        guard
            case .refused(let none, true, false) = pool.hello(
                hello(slot: nil, slots: nil, nonce: 1), from: PeerID(bytes: [1]), key: nil)
        else {
            Issue.record("a worker got a share of no split")
            return
        }
        #expect(none.contains("--slot I --slots N"))
        guard
            case .refused(_, true, false) = pool.hello(
                hello(slot: 0, slots: 5, nonce: 1), from: PeerID(bytes: [1]), key: nil)
        else {
            Issue.record("5 shares of 4 clients")
            return
        }
        #expect(pool.slots == nil)
        #expect(
            pool.hello(hello(slot: 1, slots: 2, nonce: 1), from: PeerID(bytes: [1]), key: nil)
                == .assigned(slot: 1, slots: 2, renewed: false))
        #expect(pool.slots == 2)
        #expect(pool.remove(PeerID(bytes: [1])).isEmpty)
        #expect(pool.holders.isEmpty && !pool.isWorker(PeerID(bytes: [1])))
    }

    @Test("Channel names: a fleet index in plain decimal, nothing else")
    func channels() {
        #expect(WorkerPool.client(ofChannel: Array("0".utf8)) == 0)
        #expect(WorkerPool.client(ofChannel: Array("4294967294".utf8)) == 4_294_967_294)
        for bad in ["", "01", "-1", "+1", "1a", "4294967295", "99999999999"] {
            #expect(WorkerPool.client(ofChannel: Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test("The secret compares in full: a prefix, a longer string and an empty one fail")
    func secretComparison() {
        #expect(constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("ab".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        let pool = pool(slots: 1, fleetSize: 1)
        #expect(!pool.admits(key: nil, credential: ""))
        #expect(!pool.admits(key: nil, credential: String(WorkerHarness.secret.dropLast())))
        #expect(pool.admits(key: nil, credential: WorkerHarness.secret))
        #expect(WorkerSecret.problem(with: WorkerSecret.generate()) == nil)
        #expect(WorkerSecret.problem(with: "short") != nil)
        #expect(WorkerSecret.problem(with: String(repeating: "a", count: 20) + " b") != nil)
    }
}
