import Foundation
import Testing

@Suite("maestro model show")
struct ModelCommandTests {
    @Test("The CNN preset: every layer, and the FedAvg CNN's 1,663,370 dense parameters")
    func cnn() throws {
        let result = try maestro(["model", "show", "cnn"])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.first == "cnn on 28x28x1 samples, 10 classes")
        #expect(lines.contains { $0.contains("lod-conv 5×5 p2 32→64") && $0.contains("51,264") })
        let dense = try #require(lines.first { $0.hasPrefix("  dense") })
        #expect(dense.contains("1,663,370") && dense.contains("12,273,152"), "\(dense)")
        // The four tiers' totals shrink with the fraction.
        let tiers = lines.filter { $0.hasPrefix("  LoD at") }
        #expect(tiers.count == 4)
        #expect(tiers.last?.contains("1,663,370") == true)
    }

    @Test("ResNet-18 on CIFAR shapes; VGG cannot take 28×28 and says so in one line")
    func shapes() throws {
        let resnet = try maestro(["model", "show", "resnet18", "--input", "32x32x3"])
        #expect(resnet.status == 0, "\(resnet.error)")
        #expect(resnet.output.contains("11,178,762"), "\(resnet.output)")
        let vgg = try maestro(["model", "show", "vgg11"])
        #expect(vgg.status != 0)
        let message = vgg.error.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!message.contains("\n"), "\(message)")
        #expect(
            message.contains("vgg11 cannot take 28x28x1 samples") && message.contains("maxpool"))
    }

    @Test("A description file: shapes, a residual block; mistakes named by key path")
    func descriptionFile() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("model-show-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("small.yaml")
        try """
        layers:
          - conv: {channels: 8, kernel: 3, padding: 1, stride: 2}
          - groupnorm: 2
          - relu
          - residual:
              body: [{conv: {channels: 8, kernel: 3, padding: 1}}, batchnorm]
          - global_avgpool
          - dense: classes
        """.write(to: good, atomically: true, encoding: .utf8)
        let shown = try maestro(["model", "show", good.path, "--classes", "4"])
        #expect(shown.status == 0, "\(shown.error)")
        #expect(shown.output.contains("14×14×8"), "\(shown.output)")
        #expect(shown.output.contains("lod-dense 8→4"), "\(shown.output)")
        let bad = directory.appendingPathComponent("bad.yaml")
        try """
        layers:
          - conv: {channels: 8, kernal: 3}
        """.write(to: bad, atomically: true, encoding: .utf8)
        let refused = try maestro(["model", "show", bad.path])
        #expect(refused.status != 0)
        #expect(
            refused.error.contains("model.layers[0].conv.kernal: unknown key"), "\(refused.error)")
        let unknown = try maestro(["model", "show", "resnet99"])
        #expect(unknown.status != 0 && unknown.error.contains("neither a preset"))
    }
}
