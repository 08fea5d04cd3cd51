import Federation
import Fleet
import LowRank
import Testing

@testable import Runtime

@Suite("A client's protocol, without a transport")
struct ClientSessionTests {
    /// A registered session of the synthetic test scenario and a TRAIN that fits it.
    func registered() throws -> (ClientSession, TrainingTask) {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let global = scenario.initialNetwork()
        let budgets = RoundLogic.budgets(
            fraction: scenario.tiers[1].rankFraction, keptRanks: global.keptRanks,
            lowRank: scenario.isLowRank)
        let task = CoordinatorMachine.task(
            for: global.slice(budgets: budgets), scenario: scenario, round: 1, client: 3)
        let session = ClientSession(
            tierName: "large", gflops: 1, sampleCount: 10,
            featureCount: scenario.inputShape.reduce(1, *), requestedClientID: 3, nonce: 1,
            coordinator: "test", registeredAs: 3, architecture: global.architecture)
        return (session, task)
    }

    @Test("A TRAIN with settings no training can use is refused with an error reply, never run")
    func untrustedSettings() throws {
        let (session, good) = try registered()
        var architectures = ModelDescriptions()
        func decision(_ change: (inout TrainingTask) -> Void) -> ClientSession.Decision {
            var task = good
            change(&task)
            var copy = session
            return copy.received(
                Envelope(round: 1, sender: 0, message: .train(task)), architectures: &architectures)
        }
        if case .train = decision({ _ in }) {} else { Issue.record("a good TRAIN was refused") }
        let bad: [(String, (inout TrainingTask) -> Void)] = [
            ("batchSize is 0", { $0.batchSize = 0 }),
            ("localEpochs is 0", { $0.localEpochs = 0 }),
            ("learningRate is nan", { $0.learningRate = .nan }),
            ("sampler fraction nan", { $0.samplerFractions = [0.5, .nan] }),
            ("sampler fraction 0.0", { $0.samplerFractions = [0] }),
            ("fullBudgetProbability", { $0.fullBudgetProbability = 2 }),
            ("momentum", { $0.momentum = 1 }),
            ("weightDecay", { $0.weightDecay = -1 }),
            (
                "width dropout needs the widths",
                { ($0.widthDropout, $0.samplerFractions) = (true, []) }
            ),
            (
                "width dropout applies to a dense model",
                { ($0.widthDropout, $0.samplerFractions) = (true, [0.5]) }
            ),
        ]
        for (reason, change) in bad {
            guard case .reply(.error(let report), _, _) = decision(change) else {
                Issue.record("a TRAIN with \(reason) was not refused")
                continue
            }
            #expect(report.code == .malformed && report.message.contains(reason), "\(report)")
        }
    }

    @Test(
        "An unknownClient error makes a registered client register again; other errors are logged")
    func unknownClientReregisters() throws {
        var (session, _) = try registered()
        var architectures = ModelDescriptions()
        let unknown = Envelope(
            round: 3, sender: 0,
            message: .error(
                ErrorReport(code: .unknownClient, message: "client 3 is not registered")))
        guard case .reregister = session.received(unknown, architectures: &architectures) else {
            Issue.record("a restarted coordinator's unknownClient did not start a new registration")
            return
        }
        #expect(session.isRegistered, "the session keeps its model while it registers again")
        let other = Envelope(
            round: 3, sender: 0, message: .error(ErrorReport(code: .unexpected, message: "late")))
        guard case .log = session.received(other, architectures: &architectures) else {
            Issue.record("an ordinary error report was not just logged")
            return
        }
    }
}
