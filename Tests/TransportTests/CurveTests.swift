import Foundation
import Testing
import Transport

/// Collects refusals reported by the ZAP handler's thread.
///
/// `@unchecked Sendable`: every access holds the lock.
final class RefusalLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries = [CurveRefusal]()

    func append(_ refusal: CurveRefusal) { lock.withLock { entries.append(refusal) } }
    var all: [CurveRefusal] { lock.withLock { entries } }
}

@Suite("CURVE encryption with a ZAP allow-list", .enabled(if: CurveKeyPair.isAvailable))
struct CurveTests {
    @Test("Key pairs are 40-character Z85; the public key derives from the secret")
    func keyPairs() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.utf8.count == 40 && pair.secretKey.utf8.count == 40)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        #expect(!pair.description.contains(pair.secretKey))
        #expect(try CurveKeyPair.generate() != pair)
        #expect(transportError { _ = try CurveKeyPair(secretKey: "short") } != nil)
    }

    @Test("An allowed key connects; an unknown key and a plaintext client are refused")
    func allowList() throws {
        let serverKeys = try CurveKeyPair.generate()
        let allowedKeys = try CurveKeyPair.generate()
        let unknownKeys = try CurveKeyPair.generate()
        let log = RefusalLog()
        let server = try ZeroMQServer(
            bindingTo: "tcp://127.0.0.1:*",
            curve: CurveServerConfiguration(
                keyPair: serverKeys, allowedClientKeys: [allowedKeys.publicKey],
                onRefusal: { log.append($0) }))

        let allowed = try ZeroMQClient(
            connectingTo: server.endpoint,
            curve: CurveClientConfiguration(
                serverPublicKey: serverKeys.publicKey, keyPair: allowedKeys))
        try allowed.send(Array("allowed".utf8))
        let first = try receiveFrames(server, count: 1)
        #expect(first.first?.bytes == Array("allowed".utf8))
        try server.send(Array("welcome".utf8), to: allowed.routingID)
        #expect(try receiveFrames(allowed, count: 1).first?.bytes == Array("welcome".utf8))

        let unknown = try ZeroMQClient(
            connectingTo: server.endpoint,
            curve: CurveClientConfiguration(
                serverPublicKey: serverKeys.publicKey, keyPair: unknownKeys))
        try unknown.send(Array("unknown".utf8))
        let plaintext = try ZeroMQClient(connectingTo: server.endpoint)
        try plaintext.send(Array("plaintext".utf8))
        #expect(try receiveFrames(server, count: 1, timeout: .milliseconds(1500)).isEmpty)
        let refusals = log.all
        #expect(
            refusals.contains { $0.publicKey == unknownKeys.publicKey && $0.address == "127.0.0.1" }
        )
        #expect(!refusals.contains { $0.publicKey == allowedKeys.publicKey })
        #expect(server.statistics.framesReceived == 1)
        unknown.close()
        plaintext.close()
        allowed.close()
        server.close()
    }
}
