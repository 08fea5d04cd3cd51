import CZeroMQ
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A CURVE (Curve25519) key pair in Z85 text, as ZeroMQ exchanges them.
///
/// `description` shows the public key only.
public struct CurveKeyPair: Sendable, Equatable, CustomStringConvertible {
    /// 40 characters of Z85.
    public let publicKey: String
    /// 40 characters of Z85; keep it out of logs.
    public let secretKey: String

    /// Whether this libzmq was built with CURVE (`zmq_has("curve")`).
    public static var isAvailable: Bool { zmq_has("curve") == 1 }

    /// A fresh key pair from `zmq_curve_keypair`.
    public static func generate() throws(TransportError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw .setupFailed(what: "zmq_curve_keypair", reason: zmqReason())
        }
        return CurveKeyPair(
            checkedPublicKey: string(fromNulTerminated: publicKey),
            checkedSecretKey: string(fromNulTerminated: secretKey))
    }

    /// The key pair of a secret key (the public key is derived with `zmq_curve_public`).
    public init(secretKey: String) throws(TransportError) {
        _ = try curveKeyBytes(secretKey)
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else {
            throw .invalidCurveKey("zmq_curve_public: \(zmqReason())")
        }
        self.init(
            checkedPublicKey: string(fromNulTerminated: publicKey), checkedSecretKey: secretKey)
    }

    private init(checkedPublicKey: String, checkedSecretKey: String) {
        self.publicKey = checkedPublicKey
        self.secretKey = checkedSecretKey
    }

    public var description: String { "CurveKeyPair(public: \(publicKey))" }

    func publicKeyBytes() throws(TransportError) -> [UInt8] { try curveKeyBytes(publicKey) }
    func secretKeyBytes() throws(TransportError) -> [UInt8] { try curveKeyBytes(secretKey) }
}

/// CURVE settings of a coordinator: its key pair and the client public keys it accepts.
public struct CurveServerConfiguration: Sendable {
    public var keyPair: CurveKeyPair
    /// Z85 public keys of the clients allowed to connect.
    public var allowedClientKeys: Set<String>
    /// Called (on the ZAP handler's thread) when a client is refused; by default one line
    /// on standard error, at most once per 10 s for the same key and address.
    public var onRefusal: @Sendable (CurveRefusal) -> Void

    public init(
        keyPair: CurveKeyPair, allowedClientKeys: Set<String>,
        onRefusal: @escaping @Sendable (CurveRefusal) -> Void = CurveRefusal.logToStandardError
    ) {
        self.keyPair = keyPair
        self.allowedClientKeys = allowedClientKeys
        self.onRefusal = onRefusal
    }
}

/// CURVE settings of a client: the coordinator's public key and the client's own pair.
public struct CurveClientConfiguration: Sendable {
    /// Z85 public key of the coordinator.
    public var serverPublicKey: String
    public var keyPair: CurveKeyPair

    public init(serverPublicKey: String, keyPair: CurveKeyPair) {
        self.serverPublicKey = serverPublicKey
        self.keyPair = keyPair
    }

    func serverPublicKeyBytes() throws(TransportError) -> [UInt8] {
        try curveKeyBytes(serverPublicKey)
    }
}

/// A client the ZAP handler turned away.
public struct CurveRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The client's IP address as libzmq reports it.
    public var address: String
    /// The client's Z85 public key (empty for a mechanism other than CURVE).
    public var publicKey: String
    /// Why ("key not in allow-list", "mechanism NULL").
    public var reason: String

    public var description: String {
        "refused client \(publicKey.isEmpty ? "(no key)" : publicKey) from \(address): \(reason)"
    }

    /// Writes `maestro: <description>` to standard error.
    public static let logToStandardError: @Sendable (CurveRefusal) -> Void = { refusal in
        writeToStandardError("maestro: \(refusal)")
    }
}

/// The 32 bytes of a Z85 key, or `invalidCurveKey`.
func curveKeyBytes(_ key: String) throws(TransportError) -> [UInt8] {
    guard key.utf8.count == 40 else {
        throw .invalidCurveKey("expected 40 Z85 characters, got \(key.utf8.count)")
    }
    var bytes = [UInt8](repeating: 0, count: 32)
    guard zmq_z85_decode(&bytes, key) != nil else {
        throw .invalidCurveKey("not Z85 text")
    }
    return bytes
}

func z85(_ bytes: [UInt8]) -> String {
    guard bytes.count % 4 == 0 else { return "" }
    var text = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
    guard zmq_z85_encode(&text, bytes, bytes.count) != nil else { return "" }
    return string(fromNulTerminated: text)
}

func string(fromNulTerminated characters: [CChar]) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
