import Federation
import Foundation
import Transport

/// What a link probe measured of the link to a coordinator.
public struct LinkFigures: Sendable, Equatable {
    /// Half the median round trip of small probes.
    public var latencyMilliseconds: Double
    /// `nil` when the transfer was too fast to tell from the round trip's noise.
    public var uplinkMbps: Double?
    public var downlinkMbps: Double?
    /// The size of the timed transfers.
    public var transferBytes: Int
}

/// Measures the link to a coordinator with link probes over the protocol's own connection
/// (DEALER, with CURVE when configured).
///
/// Three exchanges, repeated and interleaved: small up and small down (the round trip),
/// N bytes up and small down, N up and N down. The uplink carries N − small more bytes in
/// the second than in the first, the downlink as many more in the third than in the
/// second; the medians' differences give the rates. N doubles from 64 KiB until one exchange
/// takes 0.3 s (at most 8 MiB), so slow and fast links are both timed over enough bytes. A
/// coordinator never sends more than it was sent, so the downlink is measured by echoes.
///
/// A coordinator answers probes of at most ``InboundFrameLimit/largestProbeFrame`` bytes
/// (1 MiB), so an exchange of more is `k` probes of equal size in sequence, each sent when
/// the previous one is answered (never more than one reply queued for this device): the
/// uplink's time is then the N/small exchange less `k` round trips.
public enum LinkMeasurement {
    /// A failure, naming the coordinator's address.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func measure(
        to address: String, curve: CurveClientConfiguration?, wait: Duration,
        log: (String) -> Void
    ) throws(Failure) -> LinkFigures {
        let transport: ZeroMQClient
        do {
            transport = try ZeroMQClient(connectingTo: address, curve: curve)
        } catch {
            throw Failure(description: "\(address): \(error)")
        }
        defer { transport.close() }
        let small = WireLimits.headerSize + 8
        let chunk = InboundFrameLimit.largestProbeFrame
        /// Probes in sequence that move `up` bytes up and ask for `down` bytes back in all.
        func probes(up: Int, down: Int) -> Int { max(1, (max(up, down) + chunk - 1) / chunk) }
        /// The seconds `up` bytes up and `down` back take as ``probes(up:down:)`` probes.
        func exchange(up: Int, down: Int, timeout: Duration) throws(Failure) -> Double {
            let count = probes(up: up, down: down)
            var seconds = 0.0
            for _ in 0..<count {
                seconds += try probe(up: up / count, down: down / count, timeout: timeout)
            }
            return seconds
        }
        func probe(up: Int, down: Int, timeout: Duration) throws(Failure) -> Double {
            let frame = WireCodec.encode(
                .linkProbe(
                    LinkProbe(
                        replyFrameBytes: UInt32(down), paddingBytes: UInt32(max(0, up - small)))),
                round: 0, sender: 0)
            let start = ContinuousClock.now
            do {
                try transport.send(frame, to: .coordinator)
                while true {
                    let left = timeout - (ContinuousClock.now - start)
                    guard left > .zero, let reply = try transport.receive(timeout: left) else {
                        throw Failure(
                            description:
                                "no answer from the coordinator at \(address) within \(timeout) (is a maestro coordinator listening there, and with CURVE, are --server-key and --client-key right?)"
                        )
                    }
                    let envelope: Envelope
                    do {
                        envelope = try WireCodec.decode(reply.bytes, maximumSize: 16 << 20)
                    } catch {
                        throw Failure(
                            description:
                                "\(address): an unreadable answer to a link probe: \(error)")
                    }
                    switch envelope.message {
                    case .linkProbeReply:
                        return (ContinuousClock.now - start).seconds
                    case .error(let report):
                        throw Failure(
                            description:
                                "the coordinator at \(address) refused the link probe: \(report.message)"
                        )
                    default:
                        continue  // not ours (a heartbeat, a late answer)
                    }
                }
            } catch let error as Failure {
                throw error
            } catch {
                throw Failure(description: "\(address): \(error)")
            }
        }
        log("waiting for the coordinator at \(address) to answer a link probe (up to \(wait))")
        _ = try exchange(up: small, down: 0, timeout: wait)
        for _ in 0..<3 { _ = try exchange(up: small, down: 0, timeout: .seconds(10)) }
        var size = 64 << 10
        while size < 8 << 20, try exchange(up: size, down: size, timeout: .seconds(60)) < 0.3 {
            size *= 2
        }
        log("timing the link with \(size >> 10) KiB transfers")
        var roundTrips: [Double] = []
        var uplink: [Double] = []
        var both: [Double] = []
        for _ in 0..<5 {
            roundTrips.append(try exchange(up: small, down: 0, timeout: .seconds(60)))
            uplink.append(try exchange(up: size, down: 0, timeout: .seconds(60)))
            both.append(try exchange(up: size, down: size, timeout: .seconds(60)))
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let roundTrip = median(roundTrips)
        let extraBits = Double(size - small) * 8
        let upSeconds = median(uplink) - Double(probes(up: size, down: 0)) * roundTrip
        let downSeconds = median(both) - median(uplink)
        return LinkFigures(
            latencyMilliseconds: roundTrip / 2 * 1000,
            uplinkMbps: upSeconds > 0 ? extraBits / upSeconds / 1e6 : nil,
            downlinkMbps: downSeconds > 0 ? extraBits / downSeconds / 1e6 : nil,
            transferBytes: size)
    }
}
