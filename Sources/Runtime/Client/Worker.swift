import Datasets
import Federation
import Fleet
import Foundation
import LowRank
import Tensors
import Transport

/// Why a worker cannot go on.
public enum WorkerError: Error, CustomStringConvertible {
    case transport(TransportError)
    /// The coordinator answered the worker's HELLO with an error.
    case refused(coordinator: String, reason: String)
    /// The assignment cannot be hosted (bad scenario, rows that do not fit the data).
    case badAssignment(coordinator: String, reason: String)
    /// A hosted client cannot go on (a model description this client cannot use).
    case client(index: Int, ClientError)

    public var description: String {
        switch self {
        case .transport(let error): "\(error)"
        case .refused(let coordinator, let reason):
            "coordinator \(coordinator) refused this worker: \(reason)"
        case .badAssignment(let coordinator, let reason):
            "cannot host the clients coordinator \(coordinator) assigned: \(reason)"
        case .client(let index, let error): "client \(index): \(error)"
        }
    }
}

/// A process that hosts many virtual clients of a simulated fleet over one multiplexed
/// connection to the coordinator.
///
/// The worker says HELLO on its control channel (with the run's worker secret, or over a
/// CURVE connection whose key is enrolled as a worker's) and is assigned a share of the fleet
/// (every `slots`-th client from `slot`), with the scenario as run and its clients' training
/// rows.
/// Each hosted client then runs the device protocol (``ClientSession``) on a channel of its
/// own, named by its fleet index: it registers under its index with its tier and sample
/// count, and trains each TRAIN it receives. The coordinator may also hand the worker the TRAIN
/// of a client another worker hosts (to keep every worker busy), after that client's rows;
/// the worker trains it as that client, on its channel, with those rows. A client's samples are read and its training
/// state built only while it trains, so memory follows the clients training at once, not the
/// population. Registrations go out in a window, so a worker of 10 000 clients never queues
/// more frames than the connection's high-water mark.
///
/// Used from one thread (the transport is not thread-safe); training is single-threaded.
public final class Worker {
    public struct Options: Sendable {
        public var coordinator: String
        /// The share asked for (`nil`: any free one) and the split it belongs to.
        public var slot: UInt32?
        public var slots: UInt32?
        /// The worker secret the coordinator issued (plaintext; under CURVE the worker's
        /// enrolled key admits it and this may stay empty).
        public var secret = ""
        /// Read the scenario's data files from this folder instead of the one it names.
        public var dataDirectory: String?
        public var idleTimeout: Duration = .seconds(600)
        /// How often an unanswered HELLO or REGISTER is repeated.
        public var retry: Duration = .seconds(3)
        /// Registrations in flight at once.
        public var registrationWindow = 256
        public var maximumMessageSize: Int = 64 << 20
        public var log: @Sendable (String) -> Void = { _ in }
        /// Polled between frames; returning true stops the worker.
        public var shouldStop: @Sendable () -> Bool = { false }

        public init(coordinator: String, slot: UInt32?, slots: UInt32?) {
            self.coordinator = coordinator
            self.slot = slot
            self.slots = slots
        }
    }

    /// One hosted client: its identity and protocol state, never its samples.
    struct Hosted {
        let index: Int
        let rows: [UInt32]
        var session: ClientSession
        var registrationSent = false
    }

    /// The share of the fleet this worker hosts.
    struct Share {
        let slot: Int
        let slots: Int
        let runID: UInt64
        let scenario: Scenario
        var clients: [Hosted]
        /// Rows of other shares' clients this worker has been sent (for their TRAINs).
        var guestRows: [Int: [UInt32]] = [:]
        /// The run's model, once a hosted client has registered (for other clients' tasks).
        var architecture: Architecture?
        /// Clients `0..<registrationCursor` have had a REGISTER sent.
        var registrationCursor = 0
        var awaitingRegistration = 0
        var finished = 0

        /// The fleet index a channel names, if it is one of the fleet's clients.
        func index(ofChannel channel: [UInt8]) -> Int? {
            guard channel.count <= 10, let index = Int(String(decoding: channel, as: UTF8.self)),
                (0..<scenario.clients).contains(index), String(index).utf8.count == channel.count
            else { return nil }
            return index
        }

        /// The position in `clients` of fleet client `index`, if this share hosts it.
        func position(ofClient index: Int) -> Int? {
            guard index >= slot, (index - slot) % slots == 0 else { return nil }
            let position = (index - slot) / slots
            return position < clients.count ? position : nil
        }

        /// Whether the scenario's data is generated per client (no rows travel).
        var isGenerated: Bool { scenario.dataDirectory.isEmpty }
    }

    private let transport: any MessageTransport
    private let options: Options
    private let nonce: UInt64
    private var share: Share?
    private var architectures = ModelDescriptions()
    private var lastReason = "run complete"

    public init(transport: any MessageTransport, options: Options) {
        self.transport = transport
        self.options = options
        var generator = SystemRandomNumberGenerator()
        nonce = generator.next()
    }

    /// The channel of fleet client `index`: its index in decimal ASCII.
    static func channel(ofClient index: Int) -> [UInt8] { Array(String(index).utf8) }

    /// Runs until every hosted client is told to stop, or the idle timeout.
    public func run() throws(WorkerError) -> ClientOutcome {
        var lastHeard = ContinuousClock.now
        var lastAttempt = ContinuousClock.now
        try sendHello()
        while true {
            if options.shouldStop() { return .shutdown(reason: "stopped") }
            let frame: ReceivedFrame?
            do {
                frame = try transport.receive(timeout: .milliseconds(500))
            } catch {
                if error.isPeerFault { continue }
                throw .transport(error)
            }
            let now = ContinuousClock.now
            if transport.takeConnectionEvents().reestablished > 0, share != nil {
                // The coordinator restarted (or the link came back): it may know neither this
                // worker nor its clients. Ask for the share again; its clients register anew.
                options.log(
                    "the connection to the coordinator at \(options.coordinator) was re-established; asking for the share again"
                )
                share = nil
                try sendHello()
                lastAttempt = now
            }
            if let frame {
                lastHeard = now
                if try handle(frame) { lastAttempt = now }
            } else if now - lastHeard > options.idleTimeout {
                return .idle
            }
            if now - lastAttempt > options.retry {
                // Nothing moved for a while: repeat what is unanswered (HELLO, REGISTERs).
                lastAttempt = now
                if share == nil { try sendHello() } else { try repeatRegistrations() }
            }
            try topUpRegistrations()
            if let share, !share.clients.isEmpty, share.finished == share.clients.count {
                return .shutdown(reason: lastReason)
            }
        }
    }

    private func sendHello() throws(WorkerError) {
        let host = ProcessInfo.processInfo.hostName
        try send(
            .workerHello(
                WorkerHello(
                    slot: options.slot, slots: options.slots, instanceNonce: nonce, host: host,
                    credential: options.secret)),
            round: 0, sender: 0, channel: [])
    }

    /// Handles one frame; returns whether it moved registration on.
    private func handle(_ frame: ReceivedFrame) throws(WorkerError) -> Bool {
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame.bytes, maximumSize: options.maximumMessageSize)
        } catch {
            options.log("discarded a malformed frame from the coordinator: \(error)")
            return false
        }
        let channel = frame.peer.channel ?? []
        if channel.isEmpty { return try handleControl(envelope) }
        guard var current = share, let index = current.index(ofChannel: channel) else {
            options.log("discarded a \(envelope.type) for channel \(frame.peer): no such client")
            return false
        }
        guard let position = current.position(ofClient: index) else {
            try train(guest: index, envelope, share: current)
            return false
        }
        // Own the share while changing it: a mutated copy would copy every hosted client's
        // state on every frame (O(population) per frame).
        share = nil
        let wasRegistered = current.clients[position].session.isRegistered
        let decision = current.clients[position].session.received(
            envelope, architectures: &architectures)
        let client = current.clients[position]
        if !wasRegistered && client.session.isRegistered {
            current.awaitingRegistration -= 1
            if case .registered(_, let architecture) = client.session.state {
                current.architecture = architecture
            }
        }
        if client.session.isFinished { current.finished += 1 }
        share = current
        try perform(decision, for: client, scenario: current.scenario)
        return !wasRegistered && client.session.isRegistered
    }

    /// A TRAIN (or EVALUATE) for a client another worker hosts: trained as that client, whose
    /// ID is its fleet index; anything else for it is not this worker's to answer.
    private func train(guest index: Int, _ envelope: Envelope, share: Share) throws(WorkerError) {
        guard envelope.type == .train || envelope.type == .evaluate,
            let architecture = share.architecture
        else {
            options.log("discarded a \(envelope.type) for client \(index), hosted elsewhere")
            return
        }
        guard share.isGenerated || share.guestRows[index] != nil else {
            options.log("discarded a TRAIN for client \(index): the coordinator sent no rows for it")
            return
        }
        let rows = share.guestRows[index] ?? []
        let ranges = share.scenario.tierRanges
        let tier = share.scenario.tiers[ranges.firstIndex { $0.contains(index) } ?? 0]
        var session = ClientSession(
            tierName: tier.name, gflops: Float(tier.gflops),
            sampleCount: share.scenario.clientSampleCount(index: index, rows: rows),
            featureCount: share.scenario.inputShape.reduce(1, *),
            requestedClientID: UInt32(index), nonce: 0, coordinator: options.coordinator,
            registeredAs: UInt32(index), architecture: architecture)
        let decision = session.received(envelope, architectures: &architectures)
        try perform(
            decision, for: Hosted(index: index, rows: rows, session: session),
            scenario: share.scenario)
    }

    private func handleControl(_ envelope: Envelope) throws(WorkerError) -> Bool {
        switch envelope.message {
        case .workerAssignment(let assignment):
            if let share, share.runID == assignment.runID, share.slot == Int(assignment.slot),
                share.slots == Int(assignment.slots)
            {
                return false  // a repeated answer to a repeated HELLO
            }
            try host(assignment)
            return true
        case .workerRows(let rows):
            guard var current = share, (0..<current.scenario.clients).contains(Int(rows.client))
            else {
                options.log("ignored rows for client \(rows.client): no such client")
                return false
            }
            share = nil  // owned while changed (see handle)
            current.guestRows[Int(rows.client)] = rows.rows
            share = current
            return false
        case .error(let report) where report.code == .retryLater && share == nil:
            // Its share's last holder is not yet known gone: the HELLO is repeated.
            options.log("the coordinator says: \(PeerText.escaped(report.message)); asking again")
            return false
        case .error(let report):
            throw .refused(coordinator: options.coordinator, reason: report.message)
        case .shutdown(let shutdown):
            lastReason = shutdown.reason
            throw .refused(coordinator: options.coordinator, reason: shutdown.reason)
        default:
            options.log("ignored a \(envelope.type) on the control channel")
            return false
        }
    }

    /// Builds the hosted clients of an assignment (identities only).
    private func host(_ assignment: WorkerAssignment) throws(WorkerError) {
        var scenario: Scenario
        do {
            scenario = try Scenario.parse(yaml: assignment.scenario, path: "the assigned scenario")
            if let directory = options.dataDirectory, scenario.dataset.name != "synthetic",
                scenario.dataset.name != "leaf"
            {
                scenario = try scenario.overriding(
                    [("dataset.directory", directory)], source: "--data-dir")
            }
        } catch {
            throw .badAssignment(coordinator: options.coordinator, reason: "\(error)")
        }
        let slot = Int(assignment.slot)
        let slots = Int(assignment.slots)
        let indices = Array(stride(from: slot, to: scenario.clients, by: slots))
        let generated = scenario.dataDirectory.isEmpty
        guard generated ? assignment.rows.isEmpty : assignment.rows.count == indices.count
        else {
            throw .badAssignment(
                coordinator: options.coordinator,
                reason:
                    "\(assignment.rows.count) row lists for a share of \(indices.count) clients")
        }
        if case .fashionMNIST(let directory, _) = scenario.dataset {
            // Fail now, naming the file, rather than at every TRAIN: the data must be here.
            let labels: Int
            do {
                labels = try FashionMNIST.labels(split: .train, directory: directory).count
            } catch {
                throw .badAssignment(coordinator: options.coordinator, reason: "\(error)")
            }
            if let bad = assignment.rows.firstIndex(where: { $0.contains { Int($0) >= labels } }) {
                throw .badAssignment(
                    coordinator: options.coordinator,
                    reason:
                        "client \(indices[bad])'s rows reach past the \(labels) training images in \(directory)"
                )
            }
        }
        let tiers = scenario.fleet()
        let features = scenario.inputShape.reduce(1, *)
        var clients: [Hosted] = []
        clients.reserveCapacity(indices.count)
        for (position, index) in indices.enumerated() {
            let rows = generated ? [] : assignment.rows[position]
            let tier = tiers[index].tier
            let session = ClientSession(
                tierName: tier.name, gflops: Float(tier.gflops),
                sampleCount: scenario.clientSampleCount(index: index, rows: rows),
                featureCount: features, requestedClientID: UInt32(index),
                nonce: SeededGenerator.value(seed: nonce, stream: UInt64(index)),
                coordinator: options.coordinator)
            clients.append(Hosted(index: index, rows: rows, session: session))
        }
        share = Share(
            slot: slot, slots: slots, runID: assignment.runID, scenario: scenario, clients: clients)
        options.log(
            "hosting \(clients.count) clients (share \(slot) of \(slots)) of \(scenario.name)")
    }

    /// Sends REGISTERs until `registrationWindow` are in flight.
    private func topUpRegistrations() throws(WorkerError) {
        guard var current = share else { return }
        share = nil  // owned while changed (see handle)
        defer { share = current }
        while current.registrationCursor < current.clients.count
            && current.awaitingRegistration < options.registrationWindow
        {
            let client = current.clients[current.registrationCursor]
            current.clients[current.registrationCursor].registrationSent = true
            current.registrationCursor += 1
            current.awaitingRegistration += 1
            try send(client.session.registration, round: 0, sender: 0, to: client)
        }
    }

    /// Repeats the REGISTERs still unanswered (the coordinator was not up, a frame was lost).
    private func repeatRegistrations() throws(WorkerError) {
        guard let current = share, current.awaitingRegistration > 0 else { return }
        for client in current.clients[..<current.registrationCursor]
        where client.registrationSent && !client.session.isRegistered && !client.session.isFinished
        {
            try send(client.session.registration, round: 0, sender: 0, to: client)
        }
    }

    private func perform(
        _ decision: ClientSession.Decision, for client: Hosted, scenario: Scenario
    ) throws(WorkerError) {
        let label = "client \(client.index)"
        switch decision {
        case .none: break
        case .log(let line): options.log("\(label): \(line)")
        case .registered: break
        case .reregister(let line):
            // A guest's session (hosted elsewhere) has nothing to register; its host's does.
            options.log("\(label): \(line)")
            if share?.position(ofClient: client.index) != nil {
                try send(client.session.registration, round: 0, sender: 0, to: client)
            }
        case .reply(let message, let round, let line):
            if let line { options.log("\(label): \(line)") }
            try send(message, round: round, sender: client.session.clientID, to: client)
        case .train, .evaluate:
            // A simulated attacker (testing only) tampers with what it trained.
            let attacker = scenario.adversaries.flatMap { adversaries in
                adversaries.attackers(clients: scenario.clients, seed: scenario.seed)
                    .contains(client.index) ? adversaries : nil
            }
            guard
                let answer = client.session.answer(
                    to: decision, clock: .threadCPU,
                    samples: { samples(of: client, scenario: scenario, round: $0) },
                    tamper: attacker.map { adversaries in { adversaries.tampered($0, sent: $1) } })
            else { return }
            try send(
                answer.message, round: answer.round, sender: client.session.clientID, to: client)
        case .stop(.shutdown(let reason)): lastReason = reason
        case .stop(.idle): break
        case .fail(let error): throw .client(index: client.index, error)
        }
    }

    /// The client's samples, read now and dropped after its task; `nil` (logged) if its
    /// data cannot be read, in which case it does not answer and the round's deadline drops it.
    private func samples(of client: Hosted, scenario: Scenario, round: UInt32) -> TrainingSamples? {
        do {
            return try scenario.clientSamples(index: client.index, rows: client.rows)
        } catch {
            options.log("client \(client.index): cannot read its data for round \(round): \(error)")
            return nil
        }
    }

    private func send(
        _ message: Message, round: UInt32, sender: UInt32, to client: Hosted
    ) throws(WorkerError) {
        try send(
            message, round: round, sender: sender, channel: Self.channel(ofClient: client.index))
    }

    private func send(
        _ message: Message, round: UInt32, sender: UInt32, channel: [UInt8]
    ) throws(WorkerError) {
        do {
            try transport.send(
                WireCodec.encode(message, round: round, sender: sender),
                to: .coordinator(channel: channel))
        } catch {
            throw .transport(error)
        }
    }
}
