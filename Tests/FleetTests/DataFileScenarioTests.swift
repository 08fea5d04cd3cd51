import Fleet
import Testing

/// `minimalYAML` with its dataset section replaced by `dataset` (indented two spaces) and its
/// model by `model`.
func scenarioYAML(dataset: String, model: String = "mlp", clients: Int = 10) -> String {
    minimalYAML
        .replacingOccurrences(
            of: "dataset:\n  name: fashion-mnist\n  partition: {scheme: iid}\n",
            with: "dataset:\n" + dataset.split(separator: "\n").map { "  \($0)\n" }.joined()
        )
        .replacingOccurrences(of: "architecture: mlp", with: "architecture: \(model)")
        .replacingOccurrences(of: "clients: 10", with: "clients: \(clients)")
}

@Suite("Scenario data sets read from files: CIFAR-10, CIFAR-100, LEAF")
struct DataFileScenarioTests {
    @Test("Each data set reads into its case, defaults filled in, and writes back as it reads")
    func valid() throws {
        let cases: [(String, Scenario.Dataset)] = [
            (
                "name: cifar10\ndirectory: /data/cifar\npartition: {scheme: dirichlet, alpha: 0.5}",
                .cifar10(directory: "/data/cifar", partition: .dirichlet(alpha: 0.5))
            ),
            (
                "name: cifar100\ndirectory: /data/c100\npartition: iid",
                .cifar100(directory: "/data/c100", labels: .fine, partition: .iid)
            ),
            (
                "name: cifar100\ndirectory: d\nlabels: coarse\npartition: {scheme: shards}",
                .cifar100(directory: "d", labels: .coarse, partition: .shards(perClient: 2))
            ),
            (
                "name: leaf\ntrain: /leaf/train\ntest: /leaf/test\npartition: natural",
                .leaf(
                    train: "/leaf/train", test: "/leaf/test", featureShape: [28, 28, 1],
                    classCount: 62, partition: .natural)
            ),
            (
                "name: leaf\ntrain: a.json\ntest: b.json\nshape: [60]\nclasses: 10\n"
                    + "partition: {scheme: natural}",
                .leaf(
                    train: "a.json", test: "b.json", featureShape: [60], classCount: 10,
                    partition: .natural)
            ),
        ]
        for (section, expected) in cases {
            let scenario = try Scenario.parse(yaml: scenarioYAML(dataset: section))
            #expect(scenario.dataset == expected)
            #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario)
        }
        let leaf = try Scenario.parse(
            yaml: scenarioYAML(
                dataset: "name: leaf\ntrain: t\ntest: e\npartition: natural", model: "lenet"))
        #expect(leaf.dataset.partition == .natural)
        // LeNet's smallest image: 12 → conv 12 → pool 6 → conv 2 → pool 1.
        let smallest = "name: leaf\ntrain: t\ntest: e\nshape: [12, 12, 2]\npartition: iid"
        #expect(throws: Never.self) {
            try Scenario.parse(yaml: scenarioYAML(dataset: smallest, model: "lenet"))
        }
        let tooSmall = smallest.replacingOccurrences(of: "[12, 12, 2]", with: "[12, 11, 2]")
        #expect(
            problems(in: scenarioYAML(dataset: tooSmall, model: "lenet")).map(\.keyPath)
                == ["dataset.shape"])
    }

    @Test("Mistakes are reported at their key, with the reason")
    func invalid() {
        let cases: [(String, String, [ScenarioProblem])] = [
            (
                "name: cifar10\ndirectory: d\npartition: natural", "mlp",
                [
                    .init(
                        keyPath: "dataset.partition",
                        reason: "natural needs writers: only for name: leaf (cifar10 has none)")
                ]
            ),
            (
                "name: cifar10\nlabels: fine\npartition: iid", "mlp",
                [
                    .init(keyPath: "dataset.labels", reason: "not used by name: cifar10"),
                    .init(keyPath: "dataset.directory", reason: "missing required key"),
                ]
            ),
            (
                "name: cifar100\ndirectory: d\nlabels: superclass\npartition: iid", "mlp",
                [
                    .init(
                        keyPath: "dataset.labels",
                        reason: "unknown value 'superclass'; expected one of fine, coarse")
                ]
            ),
            (
                "name: leaf\ntrain: t\npartition: {scheme: natural, alpha: 1}\nshape: [0, 3]",
                "mlp",
                [
                    .init(keyPath: "dataset.partition.alpha", reason: "not used by scheme natural"),
                    .init(keyPath: "dataset.test", reason: "missing required key"),
                    .init(
                        keyPath: "dataset.shape",
                        reason: "element 0: out of range: must be at least 1, found 0"),
                ]
            ),
            (
                "name: leaf\ntrain: t\ntest: e\nshape: [60]\npartition: natural", "lenet",
                [
                    .init(
                        keyPath: "dataset.shape",
                        reason:
                            "model.architecture lenet needs images (height × width × channels, "
                            + "height and width at least 12 for its two 5 × 5 convolutions and "
                            + "poolings); found [60] (use mlp)")
                ]
            ),
            (
                "name: leaf\ndirectory: d\ntrain: t\ntest: e\nclasses: 1\npartition: iid", "mlp",
                [
                    .init(keyPath: "dataset.directory", reason: "not used by name: leaf"),
                    .init(
                        keyPath: "dataset.classes",
                        reason: "out of range: must be at least 2, found 1"),
                ]
            ),
            (
                "name: cifar\ndirectory: d\npartition: iid", "mlp",
                [
                    .init(
                        keyPath: "dataset.name",
                        reason:
                            "unknown value 'cifar'; expected one of fashion-mnist, synthetic, "
                            + "cifar10, cifar100, leaf (did you mean 'cifar10'?)")
                ]
            ),
            (
                "name: cifar10\ndirectory: d\npartition: {scheme: shards, perClient: 3}\nfolder: x",
                "mlp",
                [
                    .init(
                        keyPath: "dataset.partition.perClient",
                        reason:
                            "out of range: 20000 clients × 3 shards exceed the 50000 training images"
                    ),
                    .init(
                        keyPath: "dataset.folder",
                        reason:
                            "unknown key; expected one of name, directory, labels, train, test, "
                            + "shape, classes, partition, samplesPerClient"),
                ]
            ),
        ]
        for (index, (section, model, expected)) in cases.enumerated() {
            let yaml = scenarioYAML(
                dataset: section, model: model, clients: index == 7 ? 20_000 : 10)
            let found = problems(in: yaml)
            #expect(Set(found) == Set(expected), "case \(index): \(found)")
        }
    }
}
