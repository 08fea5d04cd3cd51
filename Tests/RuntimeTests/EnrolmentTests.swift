import Federation
import Fleet
import LowRank
import Tensors
import Testing
import Transport

@testable import Runtime

@Suite("Enrolment: who may register as whom")
struct EnrolmentTests {
    static let keyA = String(repeating: "A", count: 39) + "1"
    static let keyB = "#" + String(repeating: "B", count: 38) + "2"  // a key may start with '#'

    static let keyW = String(repeating: "W", count: 38) + "#3"  // Z85 has '#'; not a comment

    @Test("An allow-list file binds keys to client IDs and tiers; bad lines name file and line")
    func parse() throws {
        let text = """
            # devices
            #no-key comment
            \(Self.keyA) 3 small   # the lab's board
            \(Self.keyB) 4
            \(Self.keyW)

            """
        let enrolment = try Enrolment.parse(text, path: "allow")
        #expect(enrolment.keys.count == 3)
        #expect(enrolment.entry(forKey: Self.keyA) == .init(clientID: 3, tier: "small"))
        #expect(enrolment.entry(forKey: Self.keyW) == .init())
        #expect(enrolment.key(boundTo: 4) == Self.keyB)
        let bad: [(String, String)] = [
            ("short-key 1", "allow:1: 'short-key' is not a CURVE public key"),
            ("\(Self.keyA) x", "allow:1: 'x' is not a client ID"),
            ("\(Self.keyA) 4294967295", "is not a client ID"),
            ("\(Self.keyA) 1 small extra", "allow:1: expected 'KEY [ID [TIER]]'"),
            ("\(Self.keyA) 1\n\(Self.keyB) 1", "allow:2: client 1 is bound to key"),
            ("\(Self.keyA) 1\n\(Self.keyA) 2", "allow:2: key \(Self.keyA) is listed twice"),
        ]
        for (text, message) in bad {
            #expect(throws: Enrolment.Error.self) { try Enrolment.parse(text, path: "allow") }
            do {
                _ = try Enrolment.parse(text, path: "allow")
            } catch {
                #expect(error.description.contains(message), "\(error)")
            }
        }
    }

    @Test("Under CURVE a bound key registers only as its own ID and tier, and nobody else as it")
    func curveBinding() throws {
        var enrolment = Enrolment()
        _ = enrolment.add(key: Self.keyA, entry: .init(clientID: 3, tier: "small"))
        _ = enrolment.add(key: Self.keyW, entry: .init())
        var run = try MachineHarness([], enrolment: enrolment)
        run.perform(run.machine.start(at: .zero))
        let a = PeerID(bytes: [1])
        let w = PeerID(bytes: [2])
        #expect(
            run.registration(from: a, nonce: 1, requested: 4, key: Self.keyA)
                == .refused(.keyIDMismatch))
        #expect(
            run.registration(from: a, nonce: 1, requested: nil, tier: "large", key: Self.keyA)
                == .refused(.keyTierMismatch))
        #expect(
            run.registration(from: w, nonce: 2, requested: 3, key: Self.keyW)
                == .refused(.idBoundToOtherKey))
        #expect(
            run.registration(from: a, nonce: 1, requested: nil, key: Self.keyA) == .registered(3))
        // The unbound key registers any free ID; the bound key's device restarts (new nonce,
        // new connection, the old one not yet known dead) and takes its ID back.
        #expect(run.registration(from: w, nonce: 2, requested: 5, key: Self.keyW) == .registered(5))
        let restarted = PeerID(bytes: [9])
        #expect(
            run.registration(from: restarted, nonce: 77, requested: 3, key: Self.keyA)
                == .registered(3))
        #expect(run.machine.clients[3]?.peer == restarted)
    }

    @Test("In plaintext a live client's ID cannot be taken over; once its connection closes it can")
    func plaintextTakeover() throws {
        var run = try MachineHarness([])
        run.perform(run.machine.start(at: .zero))
        let first = PeerID(bytes: [1])
        let intruder = PeerID(bytes: [2])
        #expect(run.registration(from: first, nonce: 10, requested: 2) == .registered(2))
        #expect(
            run.registration(from: intruder, nonce: 11, requested: 2) == .refused(.idTaken))
        #expect(run.machine.clients[2]?.peer == first, "the intruder replaced the client")
        // The same process registering again (a reconnect) keeps its ID.
        #expect(run.registration(from: first, nonce: 10, requested: 2) == .registered(2))
        run.perform(run.machine.disconnected([first], at: .seconds(1)))
        #expect(run.registration(from: intruder, nonce: 11, requested: 2) == .registered(2))
    }

    @Test("Registrations stop at the population bound; --max-clients raises it")
    func populationBound() throws {
        var run = try MachineHarness([])
        run.perform(run.machine.start(at: .zero))
        let peer = { (index: Int) in PeerID(bytes: [1, UInt8(index)]) }
        for index in 0..<8 {
            // No room above the fleet without --max-clients: the lowest free fleet index.
            #expect(
                run.registration(from: peer(index), nonce: UInt64(index + 1), requested: nil)
                    == .registered(UInt32(index)))
        }
        #expect(
            run.registration(from: peer(8), nonce: 99, requested: nil)
                == .refused(.populationFull))
        #expect(run.machine.clients.count == 8)
        var open = try MachineHarness([], maximumClients: 9)
        open.perform(open.machine.start(at: .zero))
        for index in 0..<9 {
            #expect(
                open.registration(
                    from: peer(index), nonce: UInt64(index + 1), requested: 8 - UInt32(index))
                    == .registered(8 - UInt32(index)))
        }
        #expect(
            open.registration(from: peer(9), nonce: 99, requested: nil)
                == .refused(.populationFull))
        #expect(
            open.registration(from: peer(9), nonce: 99, requested: 7) == .refused(.idTaken)
        )
    }

    @Test(
        "An update weighs the sample count fixed at registration, capped; its own claim is ignored")
    func weights() throws {
        func finalModel(claimAtRegistration: UInt32, claimInUpdate: UInt32) throws -> [Tensor] {
            var run = try MachineHarness([
                ("rounds", "1"), ("clientsPerRound", "8"), ("dataset.samplesPerClient", "40"),
            ])
            run.perform(run.machine.start(at: .zero))
            for client in 0..<8 {
                _ = run.registration(
                    from: MachineHarness.peer(client), nonce: UInt64(client + 1),
                    requested: UInt32(client), tier: client < 4 ? "small" : "large",
                    samples: client == 0 ? claimAtRegistration : 40)
            }
            #expect(run.machine.clients[0]?.sampleCount == min(Int(claimAtRegistration), 40))
            for train in run.trains {
                // Client 0 sends its factors scaled: its weight decides how far they pull.
                var factors = train.task.factors
                if train.client == 0 {
                    factors = factors.map {
                        FactorPair(
                            up: Tensor(shape: $0.up.shape, scalars: $0.up.scalars.map { $0 * 2 }),
                            down: $0.down)
                    }
                }
                let update = TrainingUpdate(
                    factors: factors, shared: train.task.shared,
                    sampleCount: train.client == 0 ? claimInUpdate : 40, trainingLoss: 1,
                    computeSeconds: 0.01)
                let frame = WireCodec.encode(.update(update), round: 1, sender: train.client)
                run.perform(
                    run.machine.received(
                        ReceivedFrame(peer: MachineHarness.peer(Int(train.client)), bytes: frame),
                        at: .seconds(1)))
            }
            #expect(run.commits.count == 1)
            return run.machine.global.parameters
        }
        let honest = try finalModel(claimAtRegistration: 40, claimInUpdate: 40)
        #expect(try finalModel(claimAtRegistration: 40, claimInUpdate: 4_000_000_000) == honest)
        #expect(try finalModel(claimAtRegistration: 4_000_000_000, claimInUpdate: 40) == honest)
        #expect(try finalModel(claimAtRegistration: 10, claimInUpdate: 40) != honest)
    }
}
