import Fleet
import Foundation
import Testing

/// The repository's `Scenarios/` folder, found from this file's location.
let scenariosDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Scenarios")

func shipped(_ name: String) throws -> Scenario {
    try Scenario.load(path: scenariosDirectory.appendingPathComponent("\(name).yaml").path)
}

/// `scenario` as its dense FedAvg twin must be: renamed, dense, every LoD-only key off.
func denseTwin(of scenario: Scenario, named name: String) throws -> Scenario {
    try scenario.overriding(
        [
            ("name", name), ("model.strategy", "denseFedAvg"),
            ("model.factoredMinimumWeights", "0"), ("training.sampler", "none"),
            ("training.groupLasso", "0"), ("training.fullBudgetProbability", "0"),
            ("training.coverageDamping", "false"), ("shrinking.threshold", "0"),
            ("training.budgetGrowth", ""), ("evaluation.deploy", ""),
        ] + scenario.tiers.indices.map { ("tiers[\($0)].freezeConvolutions", "false") }
            + (scenario.evaluation.deploySignificance > 0
                ? [("evaluation.deploySignificance", "")] : []))
}

@Suite("Shipped scenario files")
struct ShippedScenarioTests {
    static let required = [
        "default", "dense-fedavg", "fjord-uniform5", "synthetic", "smoke", "smoke-dense",
        "deadline", "deadline-dense", "cnn", "cnn-dense",
    ]

    @Test("The required scenario files are shipped")
    func requiredFilesExist() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: scenariosDirectory.path)
        for name in Self.required { #expect(files.contains("\(name).yaml"), "\(name).yaml") }
        #expect(files.contains("README.md"))
    }

    @Test("Every file in Scenarios/ loads, names itself after its file and round-trips")
    func everyFileLoads() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: scenariosDirectory.path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= Self.required.count)
        for file in files {
            let path = scenariosDirectory.appendingPathComponent(file).path
            do {
                let scenario = try Scenario.load(path: path)
                #expect(scenario.name + ".yaml" == file)
                #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario, "\(file)")
                #expect(scenario.fleet().count == scenario.clients)
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("default.yaml: Fashion-MNIST, LeNet, 100 clients, Dirichlet 0.5, tiers 40/30/20/10 %")
    func defaultScenario() throws {
        let scenario = try shipped("default")
        #expect(scenario.seed == 1)
        #expect(scenario.clients == 100)
        #expect(scenario.clientsPerRound == 10)
        #expect(scenario.rounds == 200)
        #expect(
            scenario.dataset
                == .fashionMNIST(
                    directory: "/usr/share/datasets/fashion-mnist",
                    partition: .dirichlet(alpha: 0.5)))
        #expect(scenario.model.architecture == .preset(.leNet))
        #expect(scenario.model.strategy == .orderedLoD)
        #expect(
            scenario.training.sampler
                == .sharedFraction(fractions: [0.125, 0.25, 0.5, 1], scope: .model))
        #expect(scenario.training.fullBudgetProbability == 0)
        #expect(scenario.training.localEpochs == 2)
        #expect(scenario.training.learningRate == 0.05)
        #expect(
            scenario.training.server
                == .fedAdam(learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-3))
        #expect(scenario.training.learningRateSchedule == .cosine)
        // Growing budgets instead of shrinking: the 1/8 prefix alone for 100 rounds.
        #expect(scenario.training.budgetGrowth == .init(caps: [0.125], until: [100]))
        #expect(!scenario.shrinking.isEnabled)
        // Each tier deploys its best-validating budget, judged on 5 000 held-out images (a
        // larger one on 2 standard errors of paired evidence), of the moving average of the
        // server's model.
        #expect(
            scenario.evaluation
                == Scenario.Evaluation(
                    period: 10, validationSamples: 5000, deploy: .bestValidated,
                    averageDecay: 0.8, deploySignificance: 2))
        // The 1/8 devices train with their convolutions frozen.
        #expect(scenario.tiers.map(\.freezeConvolutions) == [true, false, false, false])
        #expect(scenario.deadlineSeconds == 600)
        #expect(scenario.tiers.map(\.name) == ["low", "mid", "high", "full"])
        #expect(scenario.tiers.map(\.rankFraction) == [0.125, 0.25, 0.5, 1.0])
        #expect(scenario.clientsPerTier == [40, 30, 20, 10])
        #expect(scenario.overSelection == 1)
        #expect(scenario.minimumUpdates == 1)
        #expect(scenario.roundFailurePolicy == .skip)
        #expect(scenario.security.requireCurve == false)
    }

    @Test("cnn.yaml: the cnn preset, every layer factored, default.yaml's fleet; its dense twin")
    func cnnPair() throws {
        let lod = try shipped("cnn")
        #expect(lod.model.architecture == .preset(.cnn))
        #expect(lod.model.strategy == .orderedLoD && lod.model.factoredMinimumWeights == 0)
        #expect(lod.clients == 100)
        #expect(lod.tiers.map(\.rankFraction) == (try shipped("default")).tiers.map(\.rankFraction))
        #expect(try shipped("cnn-dense") == denseTwin(of: lod, named: "cnn-dense"))
    }

    @Test("dense-fedavg.yaml equals default.yaml except name, strategy and the LoD-only keys")
    func denseBaselineMatchesDefault() throws {
        // Same fleet, data, rounds, client and server optimisers and schedule: the baseline
        // gets every improvement; only what acts on low-rank factors is off.
        let dense = try shipped("dense-fedavg")
        let expected = try denseTwin(of: shipped("default"), named: "dense-fedavg")
        #expect(dense == expected)
        #expect(dense.training.sampler == .unsampled)
    }

    @Test(
        "deadline.yaml: the default recipe (one epoch) on cited devices; the dense twin differs only in the LoD-only keys"
    )
    func deadlinePair() throws {
        let lod = try shipped("deadline")
        // One local epoch, not the default's two: with two, low-end phones holding the most
        // data miss the deadline even at 1/8 rank (0.6 drops a round, measured).
        let reference = try shipped("default").overriding([("training.localEpochs", "1")])
        #expect(lod.training.localEpochs == 1)
        #expect(lod.training == reference.training)
        #expect(lod.model == reference.model)
        #expect(lod.shrinking == reference.shrinking)
        #expect(lod.tiers.map(\.rankFraction) == reference.tiers.map(\.rankFraction))
        #expect(lod.tiers.map(\.uplinkMbps) == [1.3, 8.2, 21.08, 48.36])
        #expect(lod.deadlineSeconds == 1.8)
        #expect(lod.rounds == 300)
        // The low-end phones run the convolutions forward only.
        #expect(lod.tiers.map(\.freezeConvolutions) == [true, false, false, false])
        let dense = try shipped("deadline-dense")
        let expected = try denseTwin(of: lod, named: "deadline-dense")
        #expect(dense == expected)
        // The point of the pair: a dense round over the low tier's 3G link misses the
        // deadline on its transfers alone; the 1/8-rank LoD one makes it with room.
        // Dense LeNet-5 holds 61 706 parameters; at p = 1/8 LoD sends 13 670 (`maestro scenario
        // show`): float32, each way.
        let low = try #require(dense.tiers.first { $0.name == "low" })
        let denseLow = ClientRoundTime(
            tier: low, trainingFLOPs: 0, downloadBytes: 61_706 * 4, uploadBytes: 61_706 * 4)
        #expect(!dense.meetsDeadline(denseLow), "\(denseLow.totalSeconds) s")
        let lodLow = ClientRoundTime(
            tier: low, trainingFLOPs: 0, downloadBytes: 13_670 * 4, uploadBytes: 13_670 * 4)
        #expect(lodLow.totalSeconds < 0.5 * 1.8)
    }

    @Test("fjord-uniform5.yaml: five equal tiers p = 0.2 … 1.0")
    func fjordUniform5() throws {
        let scenario = try shipped("fjord-uniform5")
        #expect(scenario.tiers.map(\.rankFraction) == [0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(scenario.clientsPerTier == [20, 20, 20, 20, 20])
        // Only the fleet differs from the default scenario, and with it the tier fractions
        // FjORD's sampler draws from.
        #expect(
            scenario.training.sampler
                == .sharedFraction(fractions: [0.2, 0.4, 0.6, 0.8, 1], scope: .model))
        let reference = try shipped("default").overriding([
            (
                "training.sampler",
                "{kind: sharedFraction, fractions: [0.2, 0.4, 0.6, 0.8, 1], scope: model}"
            )
        ])
        #expect(scenario.dataset == reference.dataset)
        #expect(scenario.model == reference.model)
        #expect(scenario.training == reference.training)
        #expect(scenario.shrinking == reference.shrinking)
        #expect(scenario.evaluation == reference.evaluation)
    }

    @Test("synthetic.yaml: FedProx Synthetic(1, 1), logistic, 30 clients, 10 per round")
    func synthetic() throws {
        let scenario = try shipped("synthetic")
        #expect(scenario.dataset == .synthetic(alpha: 1, beta: 1))
        #expect(scenario.model.architecture == .preset(.logistic))
        #expect(scenario.clients == 30)
        #expect(scenario.clientsPerRound == 10)
        #expect(scenario.clientsPerTier.reduce(0, +) == 30)
    }

    @Test(
        "smoke.yaml: tiny IID MLP run, 6 clients of 1000 images, 3 per round, 12 rounds, evaluated every round"
    )
    func smoke() throws {
        let scenario = try shipped("smoke")
        #expect(
            scenario.dataset
                == .fashionMNIST(directory: "/usr/share/datasets/fashion-mnist", partition: .iid))
        #expect(scenario.model.architecture == .preset(.mlp))
        #expect(scenario.clients == 6)
        #expect(scenario.clientsPerRound == 3)
        #expect(scenario.rounds == 12)
        #expect(scenario.samplesPerClient == 1000)
        #expect(scenario.evaluation.period == 1)
        #expect(scenario.tiers.map(\.rankFraction) == [0.25, 1.0])
        #expect(scenario.training.localEpochs == 1)
    }

    @Test(
        "smoke-dense.yaml equals smoke.yaml except name, strategy and the LoD-only keys; both state the same report targets"
    )
    func smokeDensePair() throws {
        let smoke = try shipped("smoke")
        let dense = try shipped("smoke-dense")
        #expect(dense == (try denseTwin(of: smoke, named: "smoke-dense")))
        #expect(dense.model.strategy == .denseFedAvg)
        // Targets the smoke run reaches in its 12 rounds (docs/recipes.md), so that
        // `maestro compare` of the pair has a figure at every target.
        #expect(smoke.report == Scenario.ReportSettings(targets: [0.5, 0.6, 0.65]))
        #expect(dense.report == smoke.report)
    }
}
