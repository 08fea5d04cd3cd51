import Federation
import Foundation
import LowRank
import RunRecords
import Tensors
import Testing

@testable import Runtime

/// Checkpoints whose checksum was recomputed after a header field was changed to one no
/// coordinator writes: each is refused naming the file and the field, never trapped on when
/// `--resume` hands it to the coordinator.
@Suite("Crafted checkpoints")
struct CraftedCheckpointTests {
    /// A valid checkpoint of a small low-rank MLP (LoD layers of max ranks 6, 100 and 3).
    static func valid() -> CoordinatorCheckpoint {
        var generator = SeededGenerator(seed: 3)
        let network = Network(
            architecture: .make(.mlp, lowRank: true, inputShape: [6], classCount: 3),
            using: &generator)
        let totals = RunTotals(
            bytesUp: 1000, bytesDown: 2000, denseEquivalentBytes: 3000, virtualSeconds: 4,
            tierBytes: ["low": RoundMetrics.TierBytes(down: 1, up: 2, denseEquivalent: 3)],
            participations: ["low": 3], rejected: ["bad_crc": 1], lateUpdates: 0,
            clientComputeSeconds: 6, earlierWallSeconds: 5, earlierTransportBytesSent: 7,
            earlierTransportBytesReceived: 8)
        let header = CoordinatorCheckpoint.Header(
            round: 4, architecture: network.architecture, keptRanks: network.keptRanks,
            totals: totals, lastAccuracy: ["low": 0.5],
            standing: ClientStanding(cooldownUntil: [2: 6]))
        return CoordinatorCheckpoint(
            header: header, parameters: network.parameters,
            serverState: ServerOptimizerState(for: network.parameters))
    }

    /// The valid checkpoint's bytes with its JSON header edited (or its tensors), and the
    /// header length and CRC-32C recomputed so that only the edited field is wrong.
    static func crafted(
        header edit: (inout [String: Any]) -> Void = { _ in },
        tensors editTensors: (inout [UInt8]) -> Void = { _ in }
    ) throws -> [UInt8] {
        let bytes = valid().encoded()
        let headerLength = Int(bytes.readLittleEndianUInt32(at: 12))
        var header = try #require(
            try JSONSerialization.jsonObject(with: Data(bytes[16..<(16 + headerLength)]))
                as? [String: Any])
        edit(&header)
        let json = Array(try JSONSerialization.data(withJSONObject: header, options: .sortedKeys))
        var tensors = Array(bytes[(16 + headerLength)..<(bytes.count - 4)])
        editTensors(&tensors)
        var result = Array(bytes[0..<12])
        result.appendLittleEndian(UInt32(json.count))
        result += json + tensors
        result.appendLittleEndian(CRC32C.checksum(result))
        return result
    }

    /// The field a crafted checkpoint is refused for, checking that the message names the
    /// file and the field.
    static func refusedField(_ bytes: [UInt8]) -> String? {
        do {
            _ = try CoordinatorCheckpoint(bytes: bytes, path: "run/checkpoint.bin")
            Issue.record("a crafted checkpoint was accepted")
            return nil
        } catch {
            guard case .invalidField(let path, let field, _, _) = error else {
                Issue.record("expected invalidField, got \(error)")
                return nil
            }
            #expect(path == "run/checkpoint.bin")
            #expect("\(error)".hasPrefix("run/checkpoint.bin: corrupt checkpoint (\(field) is "))
            return field
        }
    }

    @Test("The untouched crafted bytes read back as the checkpoint (the crafting is faithful)")
    func faithful() throws {
        let bytes = try Self.crafted()
        #expect(try CoordinatorCheckpoint(bytes: bytes, path: "c") == Self.valid())
    }

    @Test("Kept ranks beyond a layer's max rank, negative, or for the wrong number of layers")
    func keptRanks() throws {
        let maxRanks = Self.valid().header.keptRanks
        #expect(
            Self.refusedField(
                try Self.crafted { $0["keptRanks"] = [maxRanks[0] + 1] + maxRanks.dropFirst() })
                == "keptRanks[0]")
        #expect(
            Self.refusedField(
                try Self.crafted { $0["keptRanks"] = [maxRanks[0], -1, maxRanks[2]] })
                == "keptRanks[1]")
        #expect(
            Self.refusedField(try Self.crafted { $0["keptRanks"] = [1_000_000_000_000] })
                == "keptRanks")
    }

    @Test("A negative round, or one beyond any scenario, is refused")
    func rounds() throws {
        #expect(Self.refusedField(try Self.crafted { $0["round"] = -1 }) == "round")
        #expect(Self.refusedField(try Self.crafted { $0["round"] = Int.min }) == "round")
        #expect(Self.refusedField(try Self.crafted { $0["round"] = 1_000_001 }) == "round")
    }

    @Test("Counters that a resumed run would overflow by adding to are refused, each by name")
    func counters() throws {
        for field in [
            "bytesUp", "bytesDown", "denseEquivalentBytes", "transportBytesSent",
            "transportBytesReceived", "lateUpdates",
        ] {
            #expect(Self.refusedField(try Self.crafted { $0[field] = Int.max }) == field)
            #expect(Self.refusedField(try Self.crafted { $0[field] = -1 }) == field)
        }
        #expect(
            Self.refusedField(
                try Self.crafted {
                    $0["tierBytes"] = ["low": ["down": 1, "up": Int.max, "denseEquivalent": 3]]
                })
                == "tierBytes.low.up")
        #expect(
            Self.refusedField(try Self.crafted { $0["participations"] = ["low": Int.max] })
                == "participations.low")
        // A name from the file is escaped in the message, like peer text.
        #expect(
            Self.refusedField(try Self.crafted { $0["participations"] = ["a\n\u{1B}[2J": -1] })
                == #"participations.a\n\u{1B}[2J"#)
        #expect(
            Self.refusedField(try Self.crafted { $0["rejected"] = ["bad_crc": -5] })
                == "rejected.bad_crc")
        #expect(
            Self.refusedField(try Self.crafted { $0["cooldownUntil"] = [2, Int.max] })
                == "cooldownUntil.2")
    }

    @Test("Times and accuracies out of range are refused")
    func timesAndAccuracies() throws {
        #expect(
            Self.refusedField(try Self.crafted { $0["virtualSeconds"] = 1e300 })
                == "virtualSeconds")
        #expect(
            Self.refusedField(try Self.crafted { $0["wallSeconds"] = -1.0 }) == "wallSeconds")
        #expect(
            Self.refusedField(try Self.crafted { $0["lastAccuracy"] = ["low": 1.5] })
                == "lastAccuracy.low")
    }

    @Test("Non-finite weights or server moments are refused")
    func nonFiniteTensors() throws {
        let nan = Float.nan.bitPattern
        let bytes = try Self.crafted(tensors: { tensors in
            withUnsafeBytes(of: nan.littleEndian) { tensors.replaceSubrange(0..<4, with: $0) }
        })
        #expect(Self.refusedField(bytes) == "parameters")
        let floats = Self.valid().parameters.map(\.count).reduce(0, +)
        let moment = try Self.crafted(tensors: { tensors in
            let offset = 4 * (floats + 1)
            withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) {
                tensors.replaceSubrange(offset..<(offset + 4), with: $0)
            }
        })
        #expect(Self.refusedField(moment) == "serverFirstMoments")
    }

    @Test("A header longer than 1 MiB is refused before it is decoded")
    func headerLength() throws {
        var bytes = Self.valid().encoded()
        let length = UInt32(CoordinatorCheckpoint.maximumHeaderLength + 1)
        withUnsafeBytes(of: length.littleEndian) { bytes.replaceSubrange(12..<16, with: $0) }
        bytes += [UInt8](repeating: 0x20, count: Int(length))
        bytes.removeLast(4)
        bytes.appendLittleEndian(CRC32C.checksum(Array(bytes)))
        #expect(throws: CoordinatorCheckpoint.Error.corrupt(path: "c", reason: "header length")) {
            try CoordinatorCheckpoint(bytes: bytes, path: "c")
        }
    }

    @Test("A crafted checkpoint in a run directory fails --resume's load with the file's path")
    func loadNamesTheFile() throws {
        let folder = NSTemporaryDirectory() + "maestro-crafted-checkpoint-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try RunRecorder.writeAtomically(
            try Self.crafted { $0["bytesUp"] = Int.max },
            to: "\(folder)/\(CoordinatorCheckpoint.fileName)")
        do {
            _ = try CoordinatorCheckpoint.load(directory: folder)
            Issue.record("a crafted checkpoint loaded")
        } catch {
            #expect(
                "\(error)"
                    == "\(folder)/checkpoint.bin: corrupt checkpoint (bytesUp is \(Int.max), expected in [0, 2^53])"
            )
        }
    }
}
