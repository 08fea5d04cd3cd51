import Fleet
import Testing

@Suite("The scenario's report key")
struct ReportSettingsTests {
    static let base = """
        name: r
        seed: 1
        clients: 2
        rounds: 1
        clientsPerRound: 1
        dataset: {name: synthetic, synthetic: {alpha: 1, beta: 1}}
        model: {architecture: logistic, strategy: orderedLoD}
        training: {localEpochs: 1, batchSize: 10, learningRate: 0.01}
        tiers:
          - {name: a, count: 2, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}

        """

    func problems(_ report: String) -> [String] {
        do {
            _ = try Scenario.parse(yaml: Self.base + report, path: "r.yaml")
            return []
        } catch {
            guard case .invalid(_, let problems) = error else { return ["\(error)"] }
            return problems.map(\.description)
        }
    }

    @Test("Absent: no settings, and the scenario as run writes no report key")
    func absent() throws {
        let scenario = try Scenario.parse(yaml: Self.base)
        #expect(scenario.report == nil)
        #expect(!scenario.yaml().contains("report"))
        #expect(Scenario.defaultReportTargets == [0.80, 0.85, 0.87])
    }

    @Test("Targets are read, written into the scenario as run and read back the same")
    func roundTrip() throws {
        let scenario = try Scenario.parse(yaml: Self.base + "report: {targets: [0.5, 0.6, 0.65]}\n")
        #expect(scenario.report?.targets == [0.5, 0.6, 0.65])
        #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario)
        let overridden = try scenario.overriding([("report.targets", "[0.7]")])
        #expect(overridden.report?.targets == [0.7])
    }

    @Test("Each bad value is reported at its key path with the reason, with the other problems")
    func invalid() {
        #expect(problems("report: 3\n") == ["report: wrong type: expected a mapping, found '3'"])
        #expect(problems("report: {}\n") == ["report.targets: missing required key"])
        #expect(
            problems("report: {targets: [0.5, 1.5]}\n")
                == ["report.targets: element 1: out of range: must be in (0, 1], found 1.5"])
        #expect(
            problems("report: {targets: [0.6, 0.6]}\n")
                == ["report.targets: must increase: element 1 (0.6) is not above element 0 (0.6)"])
        #expect(
            problems("report: {targets: []}\n") == [
                "report.targets: must list at least one target accuracy"
            ])
        #expect(
            problems("report: {target: [0.5]}\n") == [
                "report.target: unknown key; did you mean 'targets'?",
                "report.targets: missing required key",
            ])
        // Reported together with a problem elsewhere in the file.
        let both = problems("report: {targets: [80]}\noverSelection: 0.5\n")
        #expect(both.contains { $0.hasPrefix("report.targets: element 0: out of range") })
        #expect(both.count == 2, "\(both)")
    }
}
