import Foundation
import Report
import RunRecords
import Testing

/// The report's provenance block: what produced each run, including every resume.
@Suite("Report provenance")
struct ProvenanceTests {
    /// `fixture`'s run with `provenance` (snake-case JSON, as `summary.json` holds it) added
    /// to its summary.
    func run(
        _ fixture: FixtureRun, provenance: [String: Any], in parent: String
    ) throws
        -> RunData
    {
        let directory = try fixture.write(in: parent)
        let path = "\(directory)/summary.json"
        var summary = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        summary["provenance"] = provenance
        try JSONSerialization.data(withJSONObject: summary, options: .sortedKeys)
            .write(to: URL(fileURLWithPath: path))
        return try RunData.load(directory: directory)
    }

    @Test("A resumed run shows its original command line, then each resume's, in order")
    func resumes() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let original: [String: Any] = [
            "version": "0.1.0", "commit": "0123456789abcdef", "host": "lab",
            "started_at": "2026-01-01T10:00:00Z",
            "command_line": ["maestro", "fleet", "Scenarios/smoke.yaml", "--rounds", "20"],
        ]
        var resumed = original
        resumed["resumes"] = [
            [
                "version": "0.1.0", "commit": "0123456789abcdef", "host": "lab",
                "started_at": "2026-01-01T10:05:00Z",
                "command_line": ["maestro", "fleet", "--resume", "runs/a"],
            ],
            [
                "version": "0.1.0", "commit": "fedcba9876543210", "host": "box",
                "started_at": "2026-01-01T11:00:00Z",
                "command_line": ["maestro", "coordinator", "--resume", "--out", "runs/a"],
            ],
        ]
        let html = HTMLReport(
            runs: [
                try run(lodFixture, provenance: resumed, in: parent),
                try run(denseFixture, provenance: original, in: parent),
            ],
            targets: [0.8], baseline: 1, generator: "test"
        ).render()
        let table = try #require(
            html.range(of: "<table class=\"provenance\">").map { html[$0.lowerBound...] })
        let rows = table.components(separatedBy: "</tr>")
        let lod = try #require(rows.first { $0.contains("<td>\(lodFixture.name)</td>") })
        let dense = try #require(rows.first { $0.contains("<td>\(denseFixture.name)</td>") })

        let first = "<code>maestro fleet Scenarios/smoke.yaml --rounds 20</code>"
        let second =
            "resumed 2026-01-01T10:05:00Z on lab: <code>maestro fleet --resume runs/a</code>"
        let third =
            "resumed 2026-01-01T11:00:00Z on box, commit fedcba987654: "
            + "<code>maestro coordinator --resume --out runs/a</code>"
        let positions = try [first, second, third].map {
            try #require(lod.range(of: $0), "no \($0)").lowerBound
        }
        #expect(positions == positions.sorted())
        #expect(dense.contains(first) && !dense.contains("resumed"))
    }
}
