// The dataset section for data read from files a user brings: CIFAR-10, CIFAR-100 and LEAF.
// `fashion-mnist` and `synthetic` are read by the validator's own `dataset`; every other name
// comes here, so an unknown name is reported with the whole list of names.

extension ScenarioValidator {
    /// Every `dataset.name`, in the order the messages list them.
    static let datasetNames = ["fashion-mnist", "synthetic", "cifar10", "cifar100", "leaf"]
    /// The keys of a dataset read from files.
    static let dataFileKeys = [
        "name", "directory", "labels", "train", "test", "shape", "classes", "partition",
        "samplesPerClient",
    ]
    /// The partition schemes of data read from files (`natural` for LEAF only).
    static let dataFilePartitionSchemes = ["iid", "dirichlet", "shards", "tiered", "natural"]
    /// FEMNIST's layout, the default of `shape` and `classes` for `name: leaf`.
    static let leafDefaultShape = [28, 28, 1]
    static let leafDefaultClasses = 62

    /// The dataset section when it names a data set read from files (or an unknown name, so
    /// that the message lists every name): `.some(nil)` when it is invalid, `nil` when it
    /// names `fashion-mnist` or `synthetic` (or has no name), which the validator's own
    /// `dataset` reads.
    mutating func dataFileSection(_ top: Fields, clients: Int?) -> Scenario.Dataset?? {
        guard let name = top.node("dataset")?["name"]?.text,
            name != "fashion-mnist" && name != "synthetic"
        else { return nil }
        return .some(dataFileDataset(top, clients: clients))
    }

    /// The dataset section of a CIFAR-10, CIFAR-100 or LEAF scenario.
    private mutating func dataFileDataset(_ top: Fields, clients: Int?) -> Scenario.Dataset? {
        guard let node = top.node("dataset"),
            let fields = self.fields(node, at: "dataset", known: Self.dataFileKeys)
        else { return nil }
        let name = required(fields, "name", .choice(Self.datasetNames))
        let partition = dataPartition(fields, name: name, clients: clients)
        if fields.has("synthetic") {
            report("dataset.synthetic", "only allowed with name: synthetic")
        }
        switch name {
        case "cifar10", "cifar100":
            rejectUnused(
                fields, ["train", "test", "shape", "classes"], because: "name: \(name ?? "")")
            if name == "cifar10" {
                rejectUnused(fields, ["labels"], because: "name: \(name ?? "")")
            }
            let directory = required(fields, "directory", .nonEmptyText)
            var labels: Scenario.Dataset.CIFAR100Labels? = .fine
            if let node = fields.node("labels") {
                labels = read(
                    node, at: "dataset.labels", .choice(Scenario.Dataset.CIFAR100Labels.self))
            }
            guard let directory, let labels, let partition else { return nil }
            return name == "cifar10"
                ? .cifar10(directory: directory, partition: partition)
                : .cifar100(directory: directory, labels: labels, partition: partition)
        case "leaf":
            rejectUnused(fields, ["directory", "labels"], because: "name: \(name ?? "")")
            let train = required(fields, "train", .nonEmptyText)
            let test = required(fields, "test", .nonEmptyText)
            var shape: [Int]? = Self.leafDefaultShape
            if let node = fields.node("shape") {
                shape = read(
                    node, at: "dataset.shape", .list(of: .integer(atLeast: 1, atMost: 1 << 16)))
                if let extents = shape,
                    extents.isEmpty || extents.count > 4
                        || extents.reduce(1, *) > 1 << 24
                {
                    report(
                        "dataset.shape",
                        "out of range: a sample shape has 1 to 4 axes and at most \(1 << 24) "
                            + "features, found \(extents)")
                    shape = nil
                }
            }
            var classes: Int? = Self.leafDefaultClasses
            if let node = fields.node("classes") {
                classes = read(
                    node, at: "dataset.classes", .integer(atLeast: 2, atMost: 1 << 16))
            }
            if let shape, top.node("model")?["architecture"]?.text == "lenet",
                shape.count != 3 || shape.prefix(2).contains(where: { $0 < 12 })
            {
                report(
                    "dataset.shape",
                    "model.architecture lenet needs images (height × width × channels, height and "
                        + "width at least 12 for its two 5 × 5 convolutions and poolings); found "
                        + "\(shape) (use mlp)")
            }
            guard let train, let test, let shape, let classes, let partition else { return nil }
            return .leaf(
                train: train, test: test, featureShape: shape, classCount: classes,
                partition: partition)
        default:
            return nil
        }
    }

    /// The partition of a dataset read from files; CIFAR's bound on clients is its 50 000
    /// training images, LEAF's is checked against its files when they are read.
    private mutating func dataPartition(
        _ fields: Fields, name: String?, clients: Int?
    ) -> Scenario.Partition? {
        let path = "dataset.partition"
        guard let node = fields.node("partition") else {
            report(path, "missing required key")
            return nil
        }
        let partition: Fields
        let scheme: String?
        let isShort: Bool
        if case .scalar = node {
            isShort = true
            partition = Fields(path: path, entries: [])
            scheme = read(node, at: path, .choice(Self.dataFilePartitionSchemes))
        } else {
            guard let mapping = self.fields(node, at: path, known: Self.partitionKeys) else {
                return nil
            }
            isShort = false
            partition = mapping
            scheme = required(partition, "scheme", .choice(Self.dataFilePartitionSchemes))
        }
        let isCIFAR = name == "cifar10" || name == "cifar100"
        let capacity = isCIFAR ? Scenario.Dataset.cifarTrainingCount : nil
        let because = "scheme \(scheme ?? "")"
        if scheme != "shards" { rejectUnused(partition, ["perClient"], because: because) }
        if scheme != "tiered" { rejectUnused(partition, ["tierAlpha"], because: because) }
        if scheme == "iid" || scheme == "shards" || scheme == "natural" {
            rejectUnused(partition, ["alpha"], because: because)
        }
        if let capacity, let clients, clients > capacity, scheme != "shards" {
            report(
                "clients",
                "out of range: \(clients) clients exceed the \(capacity) training images")
        }
        switch scheme {
        case "iid": return .iid
        case "dirichlet":
            return required(partition, "alpha", .number(.positive)).map { .dirichlet(alpha: $0) }
        case "tiered":
            let alpha = required(partition, "alpha", .number(.positive))
            let tierAlpha = required(partition, "tierAlpha", .number(.positive))
            guard let alpha, let tierAlpha else { return nil }
            return .tiered(alpha: alpha, tierAlpha: tierAlpha)
        case "shards":
            var perClient: Int? = 2
            if let node = partition.node("perClient") {
                perClient = read(
                    node, at: partition.keyPath("perClient"),
                    .integer(atLeast: 1, atMost: Scenario.maximumClients))
            }
            if let capacity, let clients, let count = perClient, clients * count > capacity {
                report(
                    partition.keyPath("perClient"),
                    "out of range: \(clients) clients × \(count) shards exceed the "
                        + "\(capacity) training images")
            }
            return perClient.map { .shards(perClient: $0) }
        case "natural":
            guard name == "leaf" else {
                report(
                    isShort ? path : partition.keyPath("scheme"),
                    "natural needs writers: only for name: leaf (\(name ?? "this data") has none)")
                return nil
            }
            return .natural
        default:
            return nil
        }
    }
}
