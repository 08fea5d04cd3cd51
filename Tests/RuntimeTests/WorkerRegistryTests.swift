import Federation
import Testing
import Transport

@testable import Runtime

@Suite("Worker shares of a fleet, without a transport")
struct WorkerRegistryTests {
    func hello(slot: UInt32?, slots: UInt32?, nonce: UInt64) -> WorkerHello {
        WorkerHello(slot: slot, slots: slots, instanceNonce: nonce, host: "node\(nonce)")
    }

    @Test("A coordinator's split: free shares in order, a named share, a full fleet refused")
    func coordinatorSplit() {
        var registry = WorkerRegistry(slots: 3, fleetSize: 10)
        let a = PeerID(bytes: [1], channel: [])
        #expect(
            registry.hello(hello(slot: nil, slots: nil, nonce: 1), from: a)
                == .assigned(slot: 0, slots: 3, takeover: nil))
        // The same process again keeps its share (a repeated HELLO).
        #expect(
            registry.hello(hello(slot: nil, slots: nil, nonce: 1), from: a)
                == .assigned(slot: 0, slots: 3, takeover: nil))
        #expect(
            registry.hello(hello(slot: 2, slots: 3, nonce: 2), from: PeerID(bytes: [2]))
                == .assigned(slot: 2, slots: 3, takeover: nil))
        #expect(
            registry.hello(hello(slot: nil, slots: nil, nonce: 3), from: PeerID(bytes: [3]))
                == .assigned(slot: 1, slots: 3, takeover: nil))
        guard
            case .refused(let full) = registry.hello(
                hello(slot: nil, slots: nil, nonce: 4), from: PeerID(bytes: [4]))
        else {
            Issue.record("a fourth worker got a share")
            return
        }
        #expect(full.contains("all 3"))
        guard
            case .refused(let mismatch) = registry.hello(
                hello(slot: 0, slots: 2, nonce: 5), from: PeerID(bytes: [5]))
        else {
            Issue.record("a worker with another split got a share")
            return
        }
        #expect(mismatch.contains("3 worker shares") && mismatch.contains("into 2"))
        #expect(Array(registry.clients(ofSlot: 1)) == [1, 4, 7])
        #expect(Array(registry.clients(ofSlot: 0)) == [0, 3, 6, 9])
    }

    @Test(
        "Without a split the first worker's declaration is adopted; a restarted worker takes its share back"
    )
    func declaredSplit() {
        var registry = WorkerRegistry(slots: nil, fleetSize: 4)
        guard
            case .refused(let none) = registry.hello(
                hello(slot: nil, slots: nil, nonce: 1), from: PeerID(bytes: [1]))
        else {
            Issue.record("a worker got a share of no split")
            return
        }
        #expect(none.contains("--slots"))
        guard
            case .refused = registry.hello(
                hello(slot: 0, slots: 5, nonce: 1), from: PeerID(bytes: [1]))
        else {
            Issue.record("5 shares of 4 clients")
            return
        }
        #expect(registry.slots == nil)
        #expect(
            registry.hello(hello(slot: 1, slots: 2, nonce: 1), from: PeerID(bytes: [1]))
                == .assigned(slot: 1, slots: 2, takeover: nil))
        #expect(registry.slots == 2)
        guard
            case .refused = registry.hello(
                hello(slot: 2, slots: 2, nonce: 2), from: PeerID(bytes: [2]))
        else {
            Issue.record("share 2 of 2")
            return
        }
        // Share 1's worker restarts (new nonce, new connection): it takes its share back.
        let previous = WorkerRegistry.Holder(peer: PeerID(bytes: [1]), nonce: 1, host: "node1")
        #expect(
            registry.hello(hello(slot: 1, slots: 2, nonce: 7), from: PeerID(bytes: [9]))
                == .assigned(slot: 1, slots: 2, takeover: previous))
        #expect(registry.holders[1]?.nonce == 7)
    }
}
