import Foundation
import Testing

@Suite("The width strategies over real processes and sockets", .serialized)
struct WidthFleetTests {
    static let strategies = ["heteroFL", "fjord", "fedRolex", "smallModel"]

    @Test(
        "Each smoke twin runs 3 rounds: report written, ledger = summary bytes; compare lists all"
    )
    func smokeTwins() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var runs: [String] = []
        for strategy in Self.strategies {
            let run = "\(directory)/\(strategy)"
            let result = try maestro(
                ["fleet", "Scenarios/smoke-\(strategy).yaml", "--rounds", "3", "--out", run],
                timeout: 600)
            #expect(result.status == 0, "\(strategy): \(result.error.suffix(2000))")
            #expect(FileManager.default.fileExists(atPath: "\(run)/report.html"), "\(strategy)")
            let summary =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")))
                as! [String: Any]
            #expect(summary["strategy"] as? String == strategy)
            #expect(summary["rounds"] as? Int == 3)
            let (up, down) = (summary["bytes_up"] as! Int, summary["bytes_down"] as! Int)
            let ledger = try String(contentsOfFile: "\(run)/ledger.csv", encoding: .utf8)
            let rows = ledger.split(separator: "\n").dropFirst()
            #expect(
                rows.reduce(0) { $0 + Int($1.split(separator: ",").last!)! } == up + down,
                "\(strategy)")
            let tiers = summary["tiers"] as! [[String: Any]]
            let bytes = Dictionary(
                uniqueKeysWithValues: tiers.map { tier in
                    let participations = Double(tier["participations"] as! Int)
                    return (tier["tier"] as! String, Double(tier["bytes"] as! Int) / participations)
                })
            if strategy == "smallModel" {
                // Every participation moves the smallest tier's slice (registration and the
                // other small messages count too, so not to the byte).
                #expect(abs(bytes["low"]! - bytes["full"]!) < 0.01 * bytes["low"]!, "\(bytes)")
            } else {
                #expect(bytes["low"]! < bytes["full"]! / 3, "\(bytes)")
            }
            runs.append(run)
        }
        let compare = try maestro(["compare"] + runs)
        #expect(compare.status == 0, "\(compare.error)")
        for strategy in Self.strategies {
            #expect(compare.output.contains("smoke-\(strategy)"), "\(compare.output)")
        }
    }

    @Test("scenario show prints each tier's slice, bytes, training FLOPs and deployed MACs")
    func scenarioShow() throws {
        let show = try maestro(["scenario", "show", "Scenarios/smoke-heteroFL.yaml"])
        #expect(show.status == 0, "\(show.error)")
        #expect(show.output.contains("fc2    100×300   25×75  100×300"), "\(show.output)")
        #expect(show.output.contains("low               61,035     244,274    244,274"))
        #expect(show.output.contains("training MFLOP/sample"))
        let small = try maestro(["scenario", "show", "Scenarios/smoke-smallModel.yaml"])
        #expect(small.output.contains("full              61,035     244,274    244,274"))
    }
}
