import Foundation
import Testing

@Suite("Workers under a real single-node Slurm", .serialized)
struct SlurmTests {
    /// `tools/slurm/test-single-node` starts munge, slurmctld and slurmd of Debian's
    /// `slurm-wlm` (installing them if missing), submits `tools/slurm/maestro.sbatch` for the
    /// smoke scenario (the coordinator in the batch step, two workers through `srun`), checks
    /// the run and stops every daemon it started. It exits 77 with a `SKIP:` line when Slurm
    /// cannot run here (not root, no package mirror, daemons that will not start).
    @Test(
        "sbatch tools/slurm/maestro.sbatch runs a fleet: coordinator in the batch step, workers through srun",
        .enabled(if: getuid() == 0, "needs root to start Slurm's daemons; skipped otherwise"))
    func singleNode() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "tools/slurm/test-single-node", maestroPath, "Scenarios/smoke.yaml", "\(directory)/run",
        ]
        process.currentDirectoryURL = repositoryRoot
        var environment = ProcessInfo.processInfo.environment
        environment["MAESTRO_TEST_NTASKS"] = "2"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(
            decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = text.split(separator: "\n")
        if process.terminationStatus == 77 {
            print("Slurm test skipped: \(lines.last { $0.hasPrefix("SKIP:") } ?? "")")
            return
        }
        #expect(process.terminationStatus == 0, "\(text.suffix(3000))")
        #expect(lines.contains { $0.hasPrefix("PASS:") }, "\(text.suffix(3000))")
        let summary = try summary("\(directory)/run")
        #expect(summary["rounds"] as? Int == 12)
        #expect(
            (summary["worker_control_bytes"] as? Int ?? 0) > 0,
            "the clients were not hosted by workers")
    }
}
