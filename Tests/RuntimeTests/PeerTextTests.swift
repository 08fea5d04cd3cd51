import Federation
import Foundation
import Testing
import Transport

@testable import Runtime

/// Text from peers reaches the logs as one escaped, capped line.
@Suite("Peer text in logs")
struct PeerTextTests {
    /// A forged log line, a terminal escape that clears the screen, a right-to-left override
    /// and 10 KB of padding.
    static let hostile =
        "evil\nround 5: forged line\r\u{1B}[2J\u{202E}txt.exe\u{7F}\u{85}\\"
        + String(repeating: "x", count: 10_240)

    @Test("Control characters, escapes and bidirectional overrides become visible escapes")
    func escapes() {
        #expect(
            PeerText.escaped("a\nb\r\tc\u{1B}[2J\u{202E}d\u{0}\u{7F}\u{9B}\u{2028}\u{FFFD}e\\")
                == #"a\nb\r\tc\u{1B}[2J\u{202E}d\u{0}\u{7F}\u{9B}\u{2028}\u{FFFD}e\\"#)
        #expect(PeerText.escaped("node-7.cluster (Zürich) 東京") == "node-7.cluster (Zürich) 東京")
    }

    @Test("Long text is cut at 256 characters with an ellipsis and its length, never mid-escape")
    func capped() {
        let line = PeerText.escaped(Self.hostile)
        #expect(line.unicodeScalars.count <= PeerText.maximumLength + 20)
        #expect(line.hasSuffix("… (\(Self.hostile.utf8.count) bytes)"))
        #expect(
            !line.unicodeScalars.contains { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) })
        #expect(
            line.hasPrefix(
                #"evil\nround 5: forged line\r\u{1B}[2J\u{202E}txt.exe\u{7F}\u{85}\\xxx"#))
        let cut = PeerText.escaped(String(repeating: "x", count: 255) + "\n")
        #expect(cut == String(repeating: "x", count: 255) + "… (256 bytes)")
    }

    /// Every log line the machine emitted is one line with no control character, whose
    /// peer text is capped.
    static func expectSafe(_ actions: [CoordinatorAction]) -> [String] {
        let lines = actions.compactMap { action -> String? in
            switch action {
            case .log(let line): line
            case .rejected(let rejection): rejection.description
            default: nil
            }
        }
        for line in lines {
            #expect(
                !line.unicodeScalars.contains {
                    $0.value < 0x20 || (0x7F..<0xA0).contains($0.value)
                }, "\(line)")
            #expect(line.utf8.count < 1_000, "\(line.prefix(100))")
        }
        return lines
    }

    @Test("A REGISTER's hostile tier name is logged (and answered) escaped and capped")
    func tierName() throws {
        var harness = try MachineHarness([])
        let outcome = harness.registration(
            from: MachineHarness.peer(1), nonce: 1, requested: nil, tier: Self.hostile)
        #expect(outcome == .refused(.unknownTier))
        let lines = Self.expectSafe(harness.actions)
        #expect(
            lines.contains { $0.contains(#"unknown tier 'evil\nround 5: forged line\r\u{1B}[2J"#) })
    }

    @Test("A client's hostile error message is logged as one escaped, capped line")
    func errorMessage() throws {
        var harness = try MachineHarness([])
        harness.register(0, at: .zero)
        let frame = WireCodec.encode(
            .error(ErrorReport(code: .unexpected, message: Self.hostile)), round: 0, sender: 0)
        harness.perform(
            harness.machine.received(
                ReceivedFrame(peer: MachineHarness.peer(0), bytes: frame), at: .zero))
        let lines = Self.expectSafe(harness.actions)
        let reported = lines.filter { $0.contains("reported: ") }
        #expect(reported.count == 1)
        #expect(
            reported.first?.contains(#"reported: evil\nround 5: forged line\r\u{1B}[2J\u{202E}"#)
                == true)
        // The wire clips the message to 4096 bytes; the log keeps 256 characters of them.
        #expect(reported.first?.hasSuffix("… (4096 bytes)") == true, "\(reported)")
    }
}
