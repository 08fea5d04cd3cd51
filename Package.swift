// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Maestro",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "maestro", targets: ["maestro"]),
        // The board client (tools/package-client installs it as `maestro`): `client` alone,
        // linked without scenarios, reports or the coordinator (docs/devices.md).
        .executable(name: "maestro-board", targets: ["MaestroBoard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System-library shims: a module map and a header, nothing else.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // CRC32C: SSE4.2 instruction chosen at run time, portable slicing-by-8 otherwise.
        .target(name: "CChecksum"),
        // Linux calls Swift cannot import directly (variadic prctl).
        .target(name: "CPlatform"),
        // Convolution-shaped matrix products: AVX2+FMA chosen at run time, portable otherwise.
        .target(name: "CKernels"),

        // Pure core: no I/O, no clock, no global random generator.
        // The shared terms (rank budget, model names, samplers, server optimisers): no dependencies.
        .target(name: "Vocabulary", exclude: ["README.md"]),
        .target(name: "Tensors", dependencies: ["CBLAS", "CChecksum", "CKernels"]),
        .target(name: "LowRank", dependencies: ["Tensors", "Vocabulary"]),
        .target(name: "Datasets", dependencies: ["CZlib", "Tensors"], exclude: ["README.md"]),
        .target(
            name: "Federation", dependencies: ["Tensors", "LowRank", "Vocabulary"],
            exclude: ["WIRE.md"]),

        // Effects at the edge.
        .target(
            name: "Transport", dependencies: ["CZeroMQ", "CPlatform"], exclude: ["README.md"]),
        .target(
            name: "Fleet", dependencies: ["Vocabulary", .product(name: "Yams", package: "Yams")],
            exclude: ["README.md"]),
        // What a run folder holds (summary, per-round metrics, ledger, truncation curve), its
        // JSON spelling and its atomic writer: files, no sockets, no data sets.
        .target(name: "RunRecords", exclude: ["README.md"]),
        // What a device runs: its side of the protocol, local training, the client process.
        // Nothing here reads scenarios (YAML) or needs more than FoundationEssentials.
        .target(
            name: "Device",
            dependencies: [
                "Vocabulary", "Tensors", "LowRank", "Datasets", "Federation", "Transport",
            ]),
        .target(
            name: "Runtime",
            dependencies: [
                "Vocabulary", "Tensors", "LowRank", "Datasets", "Federation", "Transport", "Fleet",
                "RunRecords", "Device",
            ]),
        // Running a federation on this host: hosting the coordinator, launching client and
        // worker processes, key files, the run folder (guard, resume, provenance).
        .target(
            name: "Launch",
            dependencies: [
                "Runtime", "RunRecords", "Device", "Fleet", "Transport", "Federation", "LowRank",
            ]),
        // Reports of finished run directories: pure rendering of their files (HTML, SVG, text).
        .target(name: "Report", dependencies: ["RunRecords", "Fleet", "LowRank"]),
        // The `client` command and its connection options, shared by both executables.
        .target(
            name: "DeviceCommands",
            dependencies: [
                "Device", "Datasets", "Transport", "CPlatform",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "maestro",
            dependencies: [
                "Vocabulary", "Tensors", "LowRank", "Datasets", "Federation", "Transport", "Fleet",
                "RunRecords", "Runtime", "Launch", "Report", "DeviceCommands",
                "CPlatform",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "MaestroBoard", dependencies: ["DeviceCommands", "Tensors", "CPlatform"]),

        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "VocabularyTests", dependencies: ["Vocabulary"]),
        .testTarget(
            name: "LowRankTests", dependencies: ["LowRank", "Tensors", "Vocabulary", "TestSupport"]),
        .testTarget(
            name: "DatasetsTests", dependencies: ["Datasets", "CZlib", "Tensors", "TestSupport"]),
        .testTarget(
            name: "FederationTests",
            dependencies: ["Federation", "LowRank", "Tensors", "Vocabulary", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "CZeroMQ", "TestSupport"]),
        .testTarget(name: "FleetTests", dependencies: ["Fleet", "Vocabulary", "TestSupport"]),
        // Runs the built `maestro` executable as a user would: real processes and sockets.
        .testTarget(
            name: "MaestroTests",
            dependencies: [
                "maestro", "LowRank", "Datasets", "CZlib", "Federation", "Transport", "TestSupport",
            ]),
        .testTarget(
            name: "LaunchTests",
            dependencies: ["Launch", "Runtime", "RunRecords", "Fleet", "TestSupport"]),
        .testTarget(
            name: "ReportTests", dependencies: ["Report", "RunRecords", "LowRank", "TestSupport"]),
        .testTarget(
            name: "RuntimeTests",
            dependencies: [
                "Runtime", "RunRecords", "Federation", "Fleet", "LowRank", "Transport", "Tensors",
                "Vocabulary", "TestSupport",
            ]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets exist only when tools/fuzz asks for them (MAESTRO_FUZZ=1): they have no
// `main` of their own, so ordinary builds must not link them.
if Context.environment["MAESTRO_FUZZ"] == "1" {
    package.targets += [
        .executableTarget(
            name: "WireFuzzer", dependencies: ["Federation"], path: "Fuzz/WireFuzzer"),
        .executableTarget(
            name: "ScenarioFuzzer", dependencies: ["Fleet"], path: "Fuzz/ScenarioFuzzer"),
        .executableTarget(
            name: "ProtocolFuzzer", dependencies: ["Runtime"], path: "Fuzz/ProtocolFuzzer"),
    ]
}
