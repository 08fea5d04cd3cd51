import Datasets
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A CPU quota for the processes moved into it: cgroup v2 (`cpu.max`) or v1 (`cpu` controller).
struct CPUQuota {
    let folder: String
    let procs: String

    /// A new group allowing `percent` of one CPU, or `nil` where cgroups cannot be written.
    init?(name: String, percent: Int) {
        let fileManager = FileManager.default
        let period = 100_000
        let quota = period * percent / 100
        if fileManager.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") {
            folder = "/sys/fs/cgroup/\(name)"
            guard
                (try? fileManager.createDirectory(
                    atPath: folder, withIntermediateDirectories: false)) != nil,
                (try? "\(quota) \(period)".write(
                    toFile: "\(folder)/cpu.max", atomically: false, encoding: .utf8)) != nil
            else { return nil }
        } else {
            folder = "/sys/fs/cgroup/cpu/\(name)"
            guard
                (try? fileManager.createDirectory(
                    atPath: folder, withIntermediateDirectories: false)) != nil,
                (try? "\(period)".write(
                    toFile: "\(folder)/cpu.cfs_period_us", atomically: false, encoding: .utf8))
                    != nil,
                (try? "\(quota)".write(
                    toFile: "\(folder)/cpu.cfs_quota_us", atomically: false, encoding: .utf8))
                    != nil
            else { return nil }
        }
        procs = "\(folder)/cgroup.procs"
    }

    /// Removes the group (its processes must have exited).
    func remove() { rmdir(folder) }
}

/// The board's `cblas_sgemm` (Maestro's kernels in place of OpenBLAS, tools/board/blas.c),
/// checked against plain loops by the program tools/package-client runs before linking it.
@Suite("The board client's sgemm")
struct BoardBLASTests {
    @Test("agrees with plain loops on every transposition, alpha and beta, odd shapes and strides")
    func sgemm() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = repositoryRoot.path
        let compiled = try run([
            "/usr/bin/env", "clang", "-O2", "-I", "\(root)/Sources/CKernels/include", "-I",
            "\(root)/Sources/CBLAS",
            "-o", "\(directory)/blas-check", "\(root)/tools/board/blas-check.c",
            "\(root)/tools/board/blas.c", "\(root)/Sources/CKernels/kernels.c", "-lm", "-lpthread",
        ])
        try #require(compiled.status == 0, "clang failed: \(compiled.output)")
        let checked = try run(["\(directory)/blas-check"])
        #expect(checked.status == 0, "\(checked.output)")
        #expect(checked.output.contains("128 cases agree"), "\(checked.output)")
    }
}

/// Runs a program to completion and returns its exit status and its output (both streams).
private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// The packaged client on a "board": an empty root holding only the static binary, its CURVE
/// key, the coordinator's public key and its own data, in a network namespace of its own,
/// under a CPU quota.
@Suite("A packaged client on a simulated board", .serialized)
struct BoardTests {
    static let canRun: Bool =
        canMakeNamespaces
        && CPUQuota(name: "maestro-probe-\(getpid())", percent: 50).map {
            $0.remove()
            return true
        } == true

    /// Writes images `range` of the system's Fashion-MNIST training set, as plain IDX files,
    /// into `folder`: a device's own data.
    func writeDeviceData(_ range: Range<Int>, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, file) in [
            ("images", "train-images-idx3-ubyte"), ("labels", "train-labels-idx1-ubyte"),
        ] {
            _ = name
            let whole = try IDXFile.read(path: "/usr/share/datasets/fashion-mnist/\(file).gz")
            let part = whole.gathering(Array(range))
            try Data(part.plainBytes).write(to: URL(fileURLWithPath: "\(folder)/\(file)"))
        }
    }

    @Test(
        "Two static clients in empty roots, own namespace, 30 % of a CPU each, CURVE: they train, survive a coordinator SIGKILL and --resume, and the run completes",
        .enabled(
            if: BoardTests.canRun, "needs root, `ip netns` and writable cgroups; skipped otherwise")
    )
    func board() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bundle = "\(directory)/bundle"
        let packaging = Process()
        packaging.executableURL = repositoryRoot.appendingPathComponent("tools/package-client")
        packaging.arguments = ["--out", bundle]
        packaging.currentDirectoryURL = repositoryRoot
        packaging.standardOutput = FileHandle.nullDevice
        packaging.standardError = FileHandle.nullDevice
        try staticBuildExclusion.withLock {
            try packaging.run()
            packaging.waitUntilExit()
        }
        try #require(packaging.terminationStatus == 0, "tools/package-client failed")
        // The board's build: the client alone, within the size a board's flash can spare.
        let size = try #require(
            try FileManager.default.attributesOfItem(atPath: "\(bundle)/maestro")[.size] as? Int)
        #expect(size <= 30_000_000, "the board client is \(size) bytes")
        let help = try run(["\(bundle)/maestro", "--help"]).output
        let subcommands = help.components(separatedBy: "SUBCOMMANDS:").dropFirst().first?
            .split(separator: "\n").compactMap { $0.split(separator: " ").first }
            .filter { $0 != "See" }
        #expect(subcommands == ["client"], "\(help)")

        // Keys: the coordinator's, and one per board bound to its client ID and tier.
        let keys = "\(directory)/keys"
        let tiers = ["low", "full"]
        var allowList = ""
        for (index, tier) in tiers.enumerated() {
            let generated = try maestro([
                "keys", "generate", "--out", keys, "--name", "board\(index)",
            ])
            try #require(generated.status == 0, "\(generated.error)")
            let key = try String(contentsOfFile: "\(keys)/board\(index).pub", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            allowList += "\(key) \(index) \(tier)\n"
        }
        _ = try maestro(["keys", "generate", "--out", keys, "--name", "coordinator"])
        try allowList.write(toFile: "\(keys)/allow-list", atomically: true, encoding: .utf8)

        // Each board's root: the binary, its key, the coordinator's public key, its data.
        var roots: [String] = []
        for index in tiers.indices {
            let root = "\(directory)/root\(index)"
            try FileManager.default.createDirectory(
                atPath: "\(root)/keys", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "\(bundle)/maestro", toPath: "\(root)/maestro")
            try FileManager.default.copyItem(
                atPath: "\(keys)/board\(index).key", toPath: "\(root)/keys/client.key")
            try FileManager.default.copyItem(
                atPath: "\(keys)/coordinator.pub", toPath: "\(root)/keys/coordinator.pub")
            try writeDeviceData((index * 1000)..<((index + 1) * 1000), to: "\(root)/data")
            roots.append(root)
        }
        let listing = try FileManager.default.subpathsOfDirectory(atPath: roots[0]).sorted()
        #expect(
            listing == [
                "data", "data/train-images-idx3-ubyte", "data/train-labels-idx1-ubyte", "keys",
                "keys/client.key", "keys/coordinator.pub", "maestro",
            ])

        // Two namespaces: the coordinator's and the boards'.
        let tag = 100_000 + Int(getpid() % 100_000)  // veth names apart from the other namespace tests
        let (coordinatorNS, boardNS) = ("mstbc\(tag)", "mstbb\(tag)")
        defer {
            system(["ip", "netns", "del", coordinatorNS])
            system(["ip", "netns", "del", boardNS])
        }
        #expect(makeNamespace(coordinatorNS, links: [], tag: tag).isEmpty)
        let failed = makeNamespace(
            boardNS, links: [(coordinatorNS, "10.213.8.2", "10.213.8.1")], tag: tag)
        try #require(failed.isEmpty, "\(failed)")

        let scenario = "\(directory)/board.yaml"
        var yaml = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Scenarios/smoke.yaml"),
            encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "clients: 6", with: "clients: 2")
            .replacingOccurrences(of: "rounds: 12", with: "rounds: 8")
            .replacingOccurrences(of: "clientsPerRound: 3", with: "clientsPerRound: 2")
            .replacingOccurrences(of: "count: 3", with: "count: 1")
            .replacingOccurrences(
                of: "simulation: {processPerClient: true}", with: "security: {requireCurve: true}")
        try yaml.write(toFile: scenario, atomically: true, encoding: .utf8)
        let run = "\(directory)/run"
        let coordinatorArguments = [
            "coordinator", "--scenario", scenario, "--bind", "tcp://10.213.8.1:5555", "--out", run,
            "--curve-secret-key", "\(keys)/coordinator.key", "--allow-keys",
            "\(keys)/allow-list",
        ]
        let log = "\(directory)/coordinator.log"
        var coordinator = try maestro(inNamespace: coordinatorNS, coordinatorArguments, log: log)

        var quotas: [CPUQuota] = []
        var boards: [Process] = []
        defer {
            for board in boards where board.isRunning { board.terminate() }
            if coordinator.isRunning { coordinator.terminate() }
            for board in boards { board.waitUntilExit() }
            for quota in quotas { quota.remove() }
        }
        for (index, tier) in tiers.enumerated() {
            let quota = try #require(CPUQuota(name: "maestro-board-\(tag)-\(index)", percent: 30))
            quotas.append(quota)
            // Into the cgroup, into the namespace, into the empty root: only the numeric
            // address, the key and the data reach the client.
            let command =
                "echo $$ > \(quota.procs) && exec ip netns exec \(boardNS) chroot \(roots[index]) /maestro client --connect tcp://10.213.8.1:5555 --tier \(tier) --data /data --server-key /keys/coordinator.pub --client-key /keys/client.key --idle-timeout 120 --verbose"
            let board = Process()
            board.executableURL = URL(fileURLWithPath: "/bin/sh")
            board.arguments = ["-c", command]
            board.standardOutput = FileHandle.nullDevice
            let boardLog = "\(directory)/board\(index).log"
            FileManager.default.createFile(atPath: boardLog, contents: nil)
            board.standardError = FileHandle(forWritingAtPath: boardLog)
            try board.run()
            boards.append(board)
        }
        let deadline = Date().addingTimeInterval(300)
        while metricsLines(run) < 2 && coordinator.isRunning && Date() < deadline { usleep(20_000) }
        let coordinatorLog = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let boardLogs = {
            tiers.indices.map {
                (try? String(contentsOfFile: "\(directory)/board\($0).log", encoding: .utf8)) ?? ""
            }.joined(separator: " | ")
                + boards.map {
                    $0.isRunning
                        ? " running" : " exit \($0.terminationStatus) (\($0.terminationReason))"
                }.joined()
        }
        #expect(
            metricsLines(run) >= 2,
            "the boards did not train two rounds: \(coordinatorLog().suffix(3000)) boards: \(boardLogs())"
        )
        try #require(coordinator.isRunning, "the run ended before the coordinator could be killed")
        kill(coordinator.processIdentifier, SIGKILL)
        coordinator.waitUntilExit()
        coordinator = try maestro(
            inNamespace: coordinatorNS, coordinatorArguments + ["--resume"], log: log)
        while coordinator.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!coordinator.isRunning, "the resumed coordinator did not finish within 300 s")
        #expect(coordinator.terminationStatus == 0, "\(coordinatorLog().suffix(1500))")
        #expect(metricsLines(run) == 8)
        // Both boards came back after the restart: the last round has both.
        let last =
            try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").last.map(String.init) ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        #expect((object?["participants"] as? [Int])?.sorted() == [0, 1], "\(last)")
        for board in boards { board.waitUntilExit() }
        #expect(
            boards.allSatisfy { $0.terminationStatus == 0 }, "a board client did not end cleanly")
    }
}
