// The dataset section of a scenario: name, partition and synthetic parameters.

extension ScenarioValidator {
    // MARK: Dataset

    mutating func dataset(_ top: Fields, clients: Int?) -> Scenario.Dataset? {
        guard let node = requiredNode(top, "dataset"),
            let fields = fields(node, at: "dataset", known: Self.datasetKeys)
        else { return nil }
        let name = required(fields, "name", .choice(["fashion-mnist", "synthetic"]))
        switch name {
        case "fashion-mnist":
            let directory = optional(
                fields, "directory", .nonEmptyText,
                default: Scenario.Dataset.defaultFashionMNISTDirectory)
            if fields.has("synthetic") {
                report("dataset.synthetic", "only allowed with name: synthetic")
            }
            let partition = requiredNode(fields, "partition").flatMap {
                self.partition($0, at: "dataset.partition", clients: clients)
            }
            guard let directory, let partition else { return nil }
            return .fashionMNIST(directory: directory, partition: partition)
        case "synthetic":
            if let partition = fields.node("partition") {
                _ = self.partition(partition, at: "dataset.partition", clients: nil)
                report(
                    "dataset.partition",
                    "not allowed for synthetic data: each client is one generated device")
            }
            if fields.has("directory") {
                report("dataset.directory", "not allowed for synthetic data: it is generated")
            }
            return requiredNode(fields, "synthetic").flatMap { self.synthetic($0) }
        default:
            // Unknown name: still check what is inside, without cross-field rules.
            if let node = fields.node("partition") {
                _ = self.partition(node, at: "dataset.partition", clients: nil)
            }
            if let node = fields.node("synthetic") { _ = self.synthetic(node) }
            if let node = fields.node("directory") {
                _ = read(node, at: "dataset.directory", .nonEmptyText)
            }
            return nil
        }
    }

    mutating func partition(
        _ node: ScenarioNode, at path: String, clients: Int?
    ) -> Scenario.Partition? {
        // `partition: iid` is short for `partition: {scheme: iid}`.
        let schemes = ["iid", "dirichlet", "shards", "tiered"]
        let fields: Fields
        let scheme: String?
        if case .scalar = node {
            fields = Fields(path: path, entries: [])
            scheme = read(node, at: path, .choice(schemes))
        } else {
            guard let mapping = self.fields(node, at: path, known: Self.partitionKeys) else {
                return nil
            }
            fields = mapping
            scheme = required(fields, "scheme", .choice(schemes))
        }
        let capacity = Scenario.Dataset.fashionMNISTTrainingCount
        switch scheme {
        case "iid", "dirichlet", "tiered":
            rejectUnused(fields, ["perClient"], because: "scheme \(scheme ?? "")")
            if scheme != "tiered" {
                rejectUnused(fields, ["tierAlpha"], because: "scheme \(scheme ?? "")")
            }
            if let clients, clients > capacity {
                report(
                    "clients",
                    "out of range: \(clients) clients exceed the \(capacity) training images")
            }
            if scheme == "iid" {
                rejectUnused(fields, ["alpha"], because: "scheme iid")
                return .iid
            }
            if scheme == "tiered" {
                let alpha = required(fields, "alpha", .number(.positive))
                let tierAlpha = required(fields, "tierAlpha", .number(.positive))
                guard let alpha, let tierAlpha else { return nil }
                return .tiered(alpha: alpha, tierAlpha: tierAlpha)
            }
            return required(fields, "alpha", .number(.positive)).map { .dirichlet(alpha: $0) }
        case "shards":
            rejectUnused(fields, ["alpha", "tierAlpha"], because: "scheme shards")
            let perClient = optional(
                fields, "perClient", .integer(atLeast: 1, atMost: capacity), default: 2)
            if let clients, let perClient, clients * perClient > capacity {
                report(
                    fields.keyPath("perClient"),
                    "out of range: \(clients) clients × \(perClient) shards exceed the "
                        + "\(capacity) training images")
            }
            return perClient.map { .shards(perClient: $0) }
        default:
            if let node = fields.node("alpha") {
                _ = read(node, at: fields.keyPath("alpha"), .number(.positive))
            }
            if let node = fields.node("perClient") {
                _ = read(
                    node, at: fields.keyPath("perClient"), .integer(atLeast: 1, atMost: capacity))
            }
            if let node = fields.node("tierAlpha") {
                _ = read(node, at: fields.keyPath("tierAlpha"), .number(.positive))
            }
            return nil
        }
    }

    mutating func synthetic(_ node: ScenarioNode) -> Scenario.Dataset? {
        guard let fields = fields(node, at: "dataset.synthetic", known: Self.syntheticKeys) else {
            return nil
        }
        guard let isIID = optional(fields, "iid", .boolean, default: false) else { return nil }
        if isIID {
            rejectUnused(fields, ["alpha", "beta"], because: "iid: true")
            return .syntheticIID
        }
        let alpha = required(fields, "alpha", .number(.nonNegative))
        let beta = required(fields, "beta", .number(.nonNegative))
        guard let alpha, let beta else { return nil }
        return .synthetic(alpha: alpha, beta: beta)
    }
}
