import Foundation
import LowRank
import Testing

@Suite("maestro fleet over real processes and sockets", .serialized)
struct FleetEndToEndTests {
    @Test("The smoke scenario runs end to end; ledger, summary and model agree; no process is left")
    func smokeFleet() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let result = try maestro(["fleet", "Scenarios/smoke.yaml", "--out", run], timeout: 600)
        #expect(result.status == 0, "\(result.error.suffix(2000))")
        #expect(result.output.contains("dense FedAvg"))

        let summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")))
            as! [String: Any]
        #expect(summary["rounds"] as? Int == 12)
        let accuracy = summary["final_accuracy_by_tier"] as? [String: Double] ?? [:]
        #expect(Set(accuracy.keys) == ["low", "full"])
        #expect(accuracy.values.allSatisfy { $0 > 0.5 }, "\(accuracy)")
        let up = summary["bytes_up"] as! Int
        let down = summary["bytes_down"] as! Int
        let ledger = try String(contentsOfFile: "\(run)/ledger.csv", encoding: .utf8)
        let rows = ledger.split(separator: "\n").dropFirst()
        #expect(rows.reduce(0) { $0 + Int($1.split(separator: ",").last!)! } == up + down)
        #expect(
            summary["transport_bytes_sent"] as! Int + (summary["transport_bytes_received"] as! Int)
                == up + down)
        #expect((summary["savings_ratio"] as! Double) > 0)
        for key in ["dense_equivalent_bytes", "wall_seconds", "virtual_seconds", "seed"] {
            #expect(summary[key] != nil, "summary.json has no \(key)")
        }

        let metrics = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(
            separator: "\n")
        #expect(metrics.count == 12)
        let model = try Data(contentsOf: URL(fileURLWithPath: "\(run)/final.maestro"))
        let (network, metadata) = try ModelFile.decode(Array(model))
        #expect(network.architecture.name == "mlp")
        #expect(metadata["scenario"] == "smoke")

        // Every client process exited: none still has this run directory on its command line.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter {
            entry in
            guard Int(entry) != nil,
                let line = try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8)
            else { return false }
            return line.contains(run)
        }
        #expect(leftovers.isEmpty, "client processes left: \(leftovers)")
    }

    @Test("A bad scenario file stops the fleet before anything starts, naming the file and key")
    func badScenario() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "\(directory)/broken.yaml"
        try "name: broken\nseed: 1\nclients: -3\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        let result = try maestro(["fleet", file, "--out", "\(directory)/run"])
        #expect(result.status != 0)
        #expect(result.error.contains("broken.yaml: clients"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/run/metrics.jsonl"))
    }
}

@Suite("CURVE security from the command line", .serialized)
struct SecurityCommandTests {
    @Test("keys generate writes a secret key only its owner can read, and never overwrites it")
    func generateKeys() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try maestro(["keys", "generate", "--out", directory, "--name", "board1"])
        #expect(first.status == 0, "\(first.error)")
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/board1.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let publicKey = try String(contentsOfFile: "\(directory)/board1.pub", encoding: .utf8)
        #expect(publicKey.trimmingCharacters(in: .whitespacesAndNewlines).count == 40)
        let again = try maestro(["keys", "generate", "--out", directory, "--name", "board1"])
        #expect(again.status != 0 && again.error.contains("board1.key"))
    }

    @Test("A fleet that requires CURVE runs with its generated keys; a coordinator without keys refuses to start")
    func curveFleet() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try maestro(
            ["fleet", "Scenarios/smoke.yaml", "--out", "\(directory)/run", "--rounds", "3", "--quiet", "--set", "security.requireCurve=true"],
            timeout: 600)
        #expect(run.status == 0, "\(run.error.suffix(1500))")
        #expect(FileManager.default.fileExists(atPath: "\(directory)/run/keys/client-5.key"))
        let refused = try maestro(
            ["coordinator", "--scenario", "\(directory)/run/scenario.yaml", "--bind", "tcp://127.0.0.1:0", "--out", "\(directory)/c"])
        #expect(refused.status != 0)
        #expect(refused.error.contains("requireCurve"))
    }
}
