import Foundation
import Testing

/// What a run directory holds that must not depend on how its clients were hosted.
struct RunRecord: Equatable {
    let model: Data
    /// Ledger rows, sorted: frames of one round cross the socket in whatever order the
    /// clients' processes answer, so only the multiset of rows is the run's.
    let ledger: [String]
    /// metrics.jsonl without the fields measured on the wall clock or the CPU.
    let metrics: [NSDictionary]

    init(_ run: String) throws {
        model = try Data(contentsOf: URL(fileURLWithPath: "\(run)/final.maestro"))
        ledger = try String(contentsOfFile: "\(run)/ledger.csv", encoding: .utf8)
            .split(separator: "\n").map(String.init).sorted()
        metrics = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").map { line in
                var object =
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                object["wall_seconds"] = nil
                object["client_compute_seconds"] = nil
                return object as NSDictionary
            }
    }
}

func summary(_ run: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
}

/// Each tier's clients whose update reached the model (`summary.json`).
func contributingClients(_ run: String) throws -> [String: Int] {
    let tiers = try summary(run)["tiers"] as? [[String: Any]] ?? []
    return Dictionary(
        uniqueKeysWithValues: tiers.map {
            ($0["tier"] as? String ?? "", $0["contributing_clients"] as? Int ?? -1)
        })
}

/// Processes still running whose command line mentions `text`.
func processes(mentioning text: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.filter { entry in
        guard Int(entry) != nil, entry != "\(getpid())",
            let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { return false }
        return String(decoding: data, as: UTF8.self).contains(text)
    }
}

/// The parent process ID of process `entry` (from `/proc/ENTRY/stat`), or nil once it is gone.
func parentProcess(of entry: String) -> Int32? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/stat") else {
        return nil
    }
    let text = String(decoding: data, as: UTF8.self)
    // "pid (command) state ppid …": the command may hold spaces, so read after its ')'.
    guard let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? Int32(fields[1]) : nil
}

/// Starts `maestro ARGUMENTS` in the repository, without waiting; output discarded unless
/// `standardError` is given.
func startMaestro(_ arguments: [String], standardError: Pipe? = nil) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: maestroPath)
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    process.standardOutput = FileHandle.nullDevice
    process.standardError = standardError ?? FileHandle.nullDevice
    try process.run()
    return process
}

/// The child process IDs of `pid`.
func childProcesses(of pid: Int32) -> [Int32] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.flatMap { task in
        ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "")
            .split(separator: " ").compactMap { Int32($0) }
    }
}

@Suite("Worker pools over real processes and sockets", .serialized)
struct WorkerPoolTests {
    @Test(
        "1, 2 and 3 workers, and 2 under CURVE, give the final model, ledger, metrics and contributing clients of one process per client; no process is left"
    )
    func equivalence() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let common = ["fleet", "Scenarios/smoke.yaml", "--rounds", "4"]
        let reference = try maestro(
            common + ["--out", "\(directory)/processes", "--process-per-client", "--quiet"],
            timeout: 600)
        #expect(reference.status == 0, "\(reference.error.suffix(1500))")
        let expected = try RunRecord("\(directory)/processes")
        #expect(expected.metrics.count == 4 && expected.ledger.count > 40)
        #expect(try summary("\(directory)/processes")["worker_control_bytes"] as? Int == 0)
        let contributors = try contributingClients("\(directory)/processes")
        #expect(contributors.count == 2 && contributors.values.allSatisfy { $0 > 0 })
        for (workers, curve) in [(1, false), (2, false), (3, false), (2, true)] {
            let run = "\(directory)/workers-\(workers)\(curve ? "-curve" : "")"
            let result = try maestro(
                common + ["--out", run, "--workers", "\(workers)"]
                    + (curve ? ["--set", "security.requireCurve=true"] : []), timeout: 600)
            #expect(result.status == 0, "\(result.error.suffix(1500))")
            #expect(result.output.contains("\(workers) worker process"))
            let record = try RunRecord(run)
            #expect(record.model == expected.model, "\(workers) workers: final model differs")
            #expect(record.ledger == expected.ledger, "\(workers) workers: ledger differs")
            #expect(record.metrics == expected.metrics, "\(workers) workers: metrics differ")
            // Every tier's clients trained as they did with a process each (under CURVE a
            // client's TRAIN handed to another worker used to drop the client).
            #expect(try contributingClients(run) == contributors, "\(run)")
            // The ledger adds up to the transport's counters; the workers' control frames are
            // counted apart.
            let totals = try summary(run)
            let ledgerBytes = record.ledger.reduce(0) {
                $0 + (Int($1.split(separator: ",").last ?? "") ?? 0)  // the header adds 0
            }
            #expect(
                totals["transport_bytes_sent"] as! Int
                    + (totals["transport_bytes_received"] as! Int)
                    == ledgerBytes)
            #expect((totals["worker_control_bytes"] as? Int ?? 0) > 0)
            let endpoint = result.output.split(separator: " ").first { $0.hasPrefix("tcp://") }
            #expect(endpoint != nil)
            if let endpoint {
                let port = String(endpoint.split(separator: ":").last ?? "").trimmingCharacters(
                    in: .punctuationCharacters)
                #expect(processes(mentioning: "127.0.0.1:\(port)").isEmpty, "workers left behind")
            }
        }
    }

    @Test("A CURVE fleet of workers authenticates each worker with its own key")
    func curveWorkers() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--out", "\(directory)/run", "--rounds", "2",
                "--quiet", "--workers", "2", "--set", "security.requireCurve=true",
            ], timeout: 600)
        #expect(run.status == 0, "\(run.error.suffix(1500))")
        #expect(FileManager.default.fileExists(atPath: "\(directory)/run/keys/worker-1.key"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/run/keys/client-0.key"))
    }

    @Test("A killed worker's clients leave their rounds; the run completes with the other worker")
    func killedWorker() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let fleet = try startMaestro([
            "fleet", "Scenarios/smoke.yaml", "--out", run, "--quiet", "--workers", "2",
            "--rounds", "8", "--set", "clientsPerRound=6",
        ])
        defer { if fleet.isRunning { fleet.terminate() } }
        let deadline = Date().addingTimeInterval(300)
        while metricsLines(run) < 2 && fleet.isRunning && Date() < deadline { usleep(20_000) }
        // This fleet's own worker (other suites may run worker fleets at the same time).
        let workers = processes(mentioning: "--slots\u{0}2").filter { entry in
            let line = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") ?? Data()
            return String(decoding: line, as: UTF8.self).contains("--slot\u{0}1\u{0}")
                && parentProcess(of: entry) == fleet.processIdentifier
        }
        #expect(workers.count == 1, "expected the worker of share 1, found \(workers)")
        for worker in workers { kill(Int32(worker)!, SIGKILL) }
        while fleet.isRunning && Date() < deadline { usleep(50_000) }
        #expect(fleet.terminationStatus == 0)
        #expect(metricsLines(run) == 8)
        // After the kill only share 0 (clients 0, 2, 4) takes part; none waits for a timeout.
        let lines = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").suffix(3)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let participants = object["participants"] as? [Int] ?? []
            #expect(!participants.isEmpty && participants.allSatisfy { $0 % 2 == 0 }, "\(line)")
            #expect((object["wall_seconds"] as? Double ?? 99) < 30, "\(line)")
        }
    }

    @Test(
        "Ctrl-C stops a worker fleet: exit 130, a resume hint, no process left; --resume finishes it"
    )
    func interrupted() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let errors = Pipe()
        let fleet = try startMaestro(
            ["fleet", "Scenarios/smoke.yaml", "--out", run, "--quiet", "--workers", "2"],
            standardError: errors)
        let deadline = Date().addingTimeInterval(300)
        while metricsLines(run) < 2 && fleet.isRunning && Date() < deadline { usleep(20_000) }
        #expect(fleet.isRunning, "the run ended before it could be interrupted")
        let children = childProcesses(of: fleet.processIdentifier)
        #expect(children.count == 2, "expected two workers, found \(children)")
        kill(fleet.processIdentifier, SIGINT)
        let message = String(
            decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        fleet.waitUntilExit()
        #expect(fleet.terminationStatus == 130)
        #expect(message.contains("continue with: maestro fleet --resume \(run)"), "\(message)")
        // The interrupted run's summary says so and what produced it.
        let interrupted = try summary(run)
        #expect(interrupted["interrupted"] as? Bool == true)
        #expect(
            (interrupted["rounds"] as? Int ?? 0) >= 2 && (interrupted["rounds"] as? Int ?? 99) < 12)
        let provenance = interrupted["provenance"] as? [String: Any] ?? [:]
        #expect(provenance["version"] as? String == "0.1.0")
        #expect((provenance["command_line"] as? [String])?.contains("--workers") == true)
        #expect((provenance["commit"] as? String)?.count == 40, "\(provenance)")
        #expect(provenance["started_at"] != nil && provenance["host"] != nil)
        let left = children.filter { FileManager.default.fileExists(atPath: "/proc/\($0)/cmdline") }
        #expect(left.isEmpty, "workers left behind: \(left)")
        let resumed = try maestro(["fleet", "--resume", run, "--quiet"], timeout: 600)
        #expect(resumed.status == 0, "\(resumed.error.suffix(1000))")
        #expect(metricsLines(run) == 12)
        #expect(try summary(run)["interrupted"] as? Bool == false)
    }

    @Test(
        "A worker without the scenario's data files stops at once, naming the file; an undeclared worker gets the hint"
    )
    func badWorkers() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let coordinator = try startMaestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--rounds", "2", "--bind", "tcp://127.0.0.1:5593",
                "--workers", "0", "--out", "\(directory)/run", "--quiet", "--registration-timeout",
                "60",
            ])
        defer { if coordinator.isRunning { coordinator.terminate() } }
        // Remote workers present the run's worker secret, which the fleet writes for them.
        let secret = "\(directory)/run/worker.secret"
        let written = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: secret) && Date() < written { usleep(20_000) }
        let undeclared = try maestro(
            ["worker", "--connect", "tcp://127.0.0.1:5593", "--worker-secret-file", secret],
            timeout: 60)
        #expect(undeclared.status != 0)
        #expect(undeclared.error.contains("--slot I --slots N"), "\(undeclared.error)")
        let missing = try maestro(
            [
                "worker", "--connect", "tcp://127.0.0.1:5593", "--slot", "0", "--slots", "1",
                "--data-dir", "\(directory)/nowhere", "--worker-secret-file", secret,
            ], timeout: 60)
        #expect(missing.status != 0)
        #expect(
            missing.error.contains("\(directory)/nowhere/train-labels-idx1-ubyte"),
            "\(missing.error)")
        // A worker with the data then runs the whole fleet.
        let good = try maestro(
            [
                "worker", "--connect", "tcp://127.0.0.1:5593", "--slot", "0", "--slots", "1",
                "--worker-secret-file", secret,
            ], timeout: 300)
        #expect(good.status == 0, "\(good.error.suffix(1000))")
        coordinator.waitUntilExit()
        #expect(coordinator.terminationStatus == 0)
        #expect(metricsLines("\(directory)/run") == 2)
    }

    @Test(
        "A second run into a run folder is refused, naming the folder and the resume command; the first run is intact"
    )
    func existingRunFolder() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let first = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--rounds", "1", "--out", run, "--quiet",
                "--workers", "1",
            ],
            timeout: 300)
        #expect(first.status == 0, "\(first.error.suffix(1000))")
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(run)/ledger.csv"))
        let second = try maestro(
            ["fleet", "Scenarios/smoke.yaml", "--rounds", "1", "--out", run, "--quiet"],
            timeout: 300)
        #expect(second.status != 0)
        #expect(second.error.contains("\(run) already holds a run"), "\(second.error)")
        #expect(second.error.contains("maestro fleet --resume \(run)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(run)/ledger.csv")) == before)
        #expect(metricsLines(run) == 1)
    }
}
