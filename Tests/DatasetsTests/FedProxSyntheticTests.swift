import Datasets
import Foundation
import Testing

@Suite("FedProx Synthetic(α, β)")
struct FedProxSyntheticTests {
    @Test("The same seed gives the same data; another seed other data")
    func determinism() {
        let setting = FedProxSynthetic(alpha: 0.5, beta: 0.5)
        let first = setting.generate(seed: 11)
        #expect(first == setting.generate(seed: 11))
        #expect(first != setting.generate(seed: 12))
        #expect(first.count == 30)
    }

    @Test("Golden values pin the generator across toolchains")
    func golden() {
        let device = FedProxSynthetic(alpha: 1, beta: 1).device(0, seed: 0)
        // Values of the first run (Swift 6.3, x86-64); they change only if the generator,
        // `nextGaussian` or the order of draws changes.
        #expect(device.train.count == 47)
        #expect(device.test.count == 6)
        #expect(device.train.features[0] == 1.2778409)
        #expect(Array(device.train.labels.prefix(5)) == [5, 5, 2, 7, 5])
    }

    @Test("A device can be generated alone, whatever the device count")
    func deviceAlone() {
        let all = FedProxSynthetic(alpha: 1, beta: 1).generate(seed: 3)
        let few = FedProxSynthetic(alpha: 1, beta: 1, deviceCount: 8)
        for index in [0, 7] {
            #expect(few.device(index, seed: 3) == all[index])
        }
        let iid = FedProxSynthetic.iid()
        #expect(iid.device(5, seed: 3) == iid.generate(seed: 3)[5])
    }

    @Test(
        "Sizes, shapes and labels",
        arguments: [
            FedProxSynthetic(alpha: 0, beta: 0), FedProxSynthetic(alpha: 1, beta: 1),
            FedProxSynthetic.iid(),
        ])
    func shapes(setting: FedProxSynthetic) {
        for device in setting.generate(seed: 5) {
            let total = device.train.count + device.test.count
            #expect(total >= 50)
            #expect(device.train.count == total * 9 / 10)
            #expect(device.test.count >= 5)
            for part in [device.train, device.test] {
                #expect(part.featureShape == [60])
                #expect(part.classCount == 10)
                #expect(part.labels.allSatisfy { (0..<10).contains($0) })
            }
            #expect(device.weights.count == 600)
            #expect(device.bias.count == 10)
        }
    }

    @Test("Labels are argmax(x · W + b) of the device's own model")
    func labelsFollowTheModel() {
        for device in FedProxSynthetic(alpha: 1, beta: 1).generate(seed: 9).prefix(5) {
            for part in [device.train, device.test] {
                for sample in part.indices {
                    let x = Array(part.features(ofSample: sample))
                    var logits = device.bias.map(Double.init)
                    for j in 0..<60 {
                        for c in 0..<10 {
                            logits[c] += Double(x[j]) * Double(device.weights[j * 10 + c])
                        }
                    }
                    let best = logits.indices.max {
                        logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1)
                    }
                    #expect(Int(part.labels[sample]) == best)
                }
            }
        }
    }

    @Test("The sample cap bounds every device")
    func cap() {
        let setting = FedProxSynthetic(
            alpha: 1, beta: 1, deviceCount: 100, maximumSamplesPerDevice: 80)
        let totals = setting.generate(seed: 1).map { $0.train.count + $0.test.count }
        #expect(totals.allSatisfy { (50...80).contains($0) })
        #expect(totals.contains(80), "some of 100 devices exceed 80 samples before the cap")
        let uncapped = FedProxSynthetic(alpha: 1, beta: 1, deviceCount: 100).generate(seed: 1)
        #expect(uncapped.contains { $0.train.count + $0.test.count > 80 })
    }

    @Test("IID devices share one model; Synthetic(0, 0) devices each draw their own")
    func iidVersusSynthetic00() {
        let iid = FedProxSynthetic.iid().generate(seed: 2)
        let synthetic = FedProxSynthetic(alpha: 0, beta: 0).generate(seed: 2)
        #expect(iid.allSatisfy { $0.weights == iid[0].weights && $0.bias == iid[0].bias })
        #expect(Set(synthetic.map(\.weights)).count == synthetic.count)

        // Statistic: the distance of each device's label distribution to the pooled one.
        // Same model and inputs (IID): only sampling noise. Own model and input mean: large.
        let iidDistance = meanLabelDistance(iid)
        let syntheticDistance = meanLabelDistance(synthetic)
        // Measured at seed 2: IID 0.104, Synthetic(0, 0) 0.800.
        #expect(iidDistance < 0.25)
        #expect(syntheticDistance > 0.5)
    }

    @Test("Inputs have covariance diag(j^-1.2) around the device mean")
    func inputCovariance() {
        let devices = FedProxSynthetic.iid(deviceCount: 30).generate(seed: 4)
        var sums = [Double](repeating: 0, count: 60)
        var squares = [Double](repeating: 0, count: 60)
        var count = 0
        for device in devices {
            for sample in device.train.indices {
                for (j, value) in device.train.features(ofSample: sample).enumerated() {
                    sums[j] += Double(value)
                    squares[j] += Double(value) * Double(value)
                }
                count += 1
            }
        }
        for j in [0, 9, 59] {
            let mean = sums[j] / Double(count)
            let variance = squares[j] / Double(count) - mean * mean
            let expected = pow(Double(j + 1), -1.2)
            #expect(
                abs(variance / expected - 1) < 0.1,
                "coordinate \(j + 1): \(variance) vs \(expected)")
            #expect(abs(mean) < 4 * (expected / Double(count)).squareRoot())
        }
    }
}

/// Mean over devices of the total-variation distance between the device's label distribution
/// (train and test together) and the pooled one.
private func meanLabelDistance(_ devices: [FedProxSynthetic.Device]) -> Double {
    let histograms = devices.map { device in
        zip(device.train.labelCounts, device.test.labelCounts).map { Double($0 + $1) }
    }
    let pooled = histograms.reduce([Double](repeating: 0, count: 10)) { zip($0, $1).map(+) }
    let pooledTotal = pooled.reduce(0, +)
    let distances = histograms.map { histogram in
        let total = histogram.reduce(0, +)
        return zip(histogram, pooled).map { abs($0 / total - $1 / pooledTotal) }.reduce(0, +) / 2
    }
    return distances.reduce(0, +) / Double(distances.count)
}
