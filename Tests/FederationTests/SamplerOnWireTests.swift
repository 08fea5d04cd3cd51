import Federation
import Testing
import Vocabulary

@Suite("The rank sampler in TRAIN")
struct SamplerOnWireTests {
    @Test("Sampler bytes: 0 perLayer, 1 acrossLayers, 2 sharedFraction, 3 fixed, 4 none")
    func codes() {
        #expect(RankSampler.Kind.allCases.map(\.wireCode) == [0, 1, 2, 3, 4])
        #expect(RankSampler.Kind.allCases.map(\.rawValue) == RankSampler.names)
        for code in UInt8(0)...4 { #expect(RankSampler.Kind(wireCode: code)?.wireCode == code) }
        for code in [UInt8(5), 9, 255] { #expect(RankSampler.Kind(wireCode: code) == nil) }
        // 5 is width dropout, which no rank sampler kind has.
        #expect(TrainingTask.widthDropoutCode == 5)
    }

    @Test("Width dropout travels as sampler byte 5 and comes back as itself, with no rank sampler")
    func widthDropout() throws {
        var task = TrainingTask(
            budgets: [], factors: [], shared: [], localEpochs: 1, batchSize: 1,
            learningRate: 0.1, sampler: .unsampled, groupLasso: 0, seed: 1,
            samplerFractions: [0.25, 1], widthDropout: true)
        let frame = WireCodec.encode(.train(task), round: 3, sender: 0)
        #expect(frame[WireLimits.headerSize + 20] == 5)
        let back = try WireCodec.decode(frame, maximumSize: frame.count)
        #expect(back.message == .train(task))
        // The same widths with the sharedFraction rank sampler: byte 2, not width dropout.
        task.widthDropout = false
        task.sampler = .sharedFraction
        let ranked = WireCodec.encode(.train(task), round: 3, sender: 0)
        #expect(ranked[WireLimits.headerSize + 20] == 2)
        guard
            case .train(let received) = try WireCodec.decode(ranked, maximumSize: ranked.count)
                .message
        else {
            Issue.record("not a TRAIN")
            return
        }
        #expect(!received.widthDropout)
        #expect(received.rankSampler == .sharedFraction(fractions: [0.25, 1]))
    }

    @Test("TRAIN carries the fractions of the client's budget, in 32 bits")
    func fractions() {
        let model = RankSampler.sharedFraction(fractions: [0.1, 0.3, 1], scope: .model)
        let wire = model.onWire(tierFraction: 0.3)
        #expect(wire.kind == .sharedFraction)
        #expect(wire.fractions == [Float(0.1 / 0.3), 1])
        #expect(model.onWire(tierFraction: 0.05).fractions == [1])
        #expect(
            RankSampler.sharedFraction(fractions: [0.2, 1]).onWire(tierFraction: 0.5).fractions
                == [0.2, 1])
        #expect(RankSampler.fixed(fraction: 0.3).onWire(tierFraction: 0.5).fractions == [0.3])
        for sampler: RankSampler in [.perLayer, .acrossLayers, .unsampled] {
            #expect(sampler.onWire(tierFraction: 0.5) == (sampler.kind, []))
        }
    }

    @Test("A client reads TRAIN's sampler back, defaults filled")
    func received() {
        func task(_ kind: RankSampler.Kind, _ fractions: [Float]) -> TrainingTask {
            TrainingTask(
                budgets: [], factors: [], shared: [], localEpochs: 1, batchSize: 1,
                learningRate: 0.1, sampler: kind, groupLasso: 0, seed: 1,
                samplerFractions: fractions)
        }
        #expect(task(.perLayer, []).rankSampler == .perLayer)
        #expect(task(.acrossLayers, []).rankSampler == .acrossLayers)
        #expect(task(.unsampled, []).rankSampler == .unsampled)
        #expect(
            task(.sharedFraction, [0.5, 1]).rankSampler == .sharedFraction(fractions: [0.5, 1]))
        #expect(
            task(.sharedFraction, []).rankSampler
                == .sharedFraction(fractions: RankSampler.defaultFractions))
        #expect(task(.fixed, [0.25]).rankSampler == .fixed(fraction: 0.25))
        #expect(task(.fixed, []).rankSampler == .fixed(fraction: 1))
        // What the coordinator sends is what the client trains, as 32-bit fractions.
        let sampler = RankSampler.sharedFraction(fractions: [0.125, 0.5, 1], scope: .model)
        let wire = sampler.onWire(tierFraction: 0.5)
        #expect(
            task(wire.kind, wire.fractions).rankSampler
                == .sharedFraction(fractions: [0.25, 1]))
    }
}
