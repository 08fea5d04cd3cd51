import Federation
import Fleet
import Foundation
import RunRecords
import Synchronization
import Testing
import Transport

@testable import Runtime

/// Delays a `WriteRetries` was asked to wait, recorded instead of slept.
private final class SleepLog: Sendable {
    let delays = Mutex<[Duration]>([])
}

@Suite("Writes that retry: the checkpoint survives a moment without descriptors or space")
struct WriteRetriesTests {
    private func retries(_ log: SleepLog) -> WriteRetries {
        var retries = WriteRetries()
        retries.sleep = { delay in log.delays.withLock { $0.append(delay) } }
        return retries
    }

    @Test("Back-off: 0.1, 0.2, 0.4, 0.8, 1.6, 2, 2 s between the 8 attempts")
    func delays() {
        #expect(
            WriteRetries().delays
                == [100, 200, 400, 800, 1600, 2000, 2000].map { Duration.milliseconds($0) })
    }

    @Test(
        "A write that fails twice for real (its folder is missing) succeeds on the third attempt, with a log line per failure"
    )
    func recovers() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-retries-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: base) }
        let target = base.appendingPathComponent("checkpoint.bin").path
        let sleeps = SleepLog()
        var retries = retries(sleeps)
        retries.sleep = { delay in
            let count = sleeps.delays.withLock {
                $0.append(delay)
                return $0.count
            }
            // The second wait ends the shortage: the folder appears.
            if count == 2 {
                try? FileManager.default.createDirectory(
                    at: base, withIntermediateDirectories: true)
            }
        }
        var lines: [String] = []
        let log = { (line: String) in lines.append(line) }
        try retries.run("writing checkpoint.bin", log: log) {
            () throws(RunRecorder.Error) in
            try RunRecorder.writeAtomically([1, 2, 3], to: target)
        }
        #expect(sleeps.delays.withLock { $0 } == [.milliseconds(100), .milliseconds(200)])
        #expect(
            lines.count == 2 && lines.allSatisfy { $0.contains("writing checkpoint.bin failed") })
        #expect(FileManager.default.contents(atPath: target) == Data([1, 2, 3]))
    }

    @Test(
        "A write that keeps failing gives up after 8 attempts with the last error; the old file is whole"
    )
    func givesUp() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-retries-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let target = base.appendingPathComponent("checkpoint.bin").path
        try RunRecorder.writeAtomically([9, 9], to: target)
        let sleeps = SleepLog()
        var attempts = 0
        var lines: [String] = []
        let log = { (line: String) in lines.append(line) }
        #expect(throws: RunRecorder.Error.self) {
            try retries(sleeps).run("writing checkpoint.bin", log: log) {
                () throws(RunRecorder.Error) in
                attempts += 1
                // Out of descriptors: the temporary file cannot be opened.
                throw .cannotWrite(path: target, reason: "Too many open files")
            }
        }
        #expect(attempts == 8 && sleeps.delays.withLock { $0.count } == 7)
        #expect(lines.last?.contains("giving up") == true)
        #expect(FileManager.default.contents(atPath: target) == Data([9, 9]))
    }
}

@Suite("Link probes are capped")
struct ProbeCapTests {
    @Test(
        "A probe that asks for a reply above 1 MiB is refused as probe_too_large; 1 MiB is answered"
    )
    func cap() throws {
        var run = try MachineHarness([])
        // Frames above the cap must decode, so that the cap, not the size limit, refuses them.
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        run.machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: scenario.evaluationSamples(),
            expectedClients: nil, registrationTimeout: .seconds(10), roundTimeout: .seconds(5),
            maximumMessageSize: 32 << 20, resumingFrom: nil)
        run.perform(run.machine.start(at: .zero))
        func replies(asking reply: Int) -> [Int] {
            let frame = WireCodec.encode(
                .linkProbe(LinkProbe(replyFrameBytes: UInt32(reply), paddingBytes: UInt32(reply))),
                round: 0, sender: 0)
            return run.machine.received(
                ReceivedFrame(peer: PeerID(bytes: [0x55]), bytes: frame), at: .seconds(1)
            ).compactMap { action -> Int? in
                if case .send(let bytes, _, let ticket) = action, ticket.purpose == .linkProbeReply
                {
                    return bytes.count
                }
                return nil
            }
        }
        #expect(InboundFrameLimit.largestProbeFrame == 1 << 20)
        #expect(replies(asking: 1 << 20) == [1 << 20])
        #expect(replies(asking: (1 << 20) + 1) == [])
        #expect(replies(asking: 8 << 20) == [])
        let summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 0)
        #expect(summary.rejectedMessages["probe_too_large"] == 2)
    }
}
