import Foundation
import Tensors

/// The Synthetic(α, β) federated data of FedProx, generated from a seed.
///
/// Reference: Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith 2020, "Federated Optimization in
/// Heterogeneous Networks", §5.1, and its `generate_synthetic.py`.
///
/// Device `k` of `deviceCount` draws
/// - its size `n_k = ⌊LogNormal(4, 2)⌋ + 50` (optionally capped, see
///   `maximumSamplesPerDevice`);
/// - `u_k ~ N(0, α²)` and `B_k ~ N(0, β²)` (α and β are standard deviations);
/// - a model `W_k` (`[featureCount, classCount]`, row-major) and `b_k` with entries
///   `~ N(u_k, 1)`, and an input mean `v_k` with entries `~ N(B_k, 1)`;
/// - samples `x ~ N(v_k, diag(j^-1.2))`, `j = 1…featureCount`, i.e.
///   `x_j = v_kj + √(j^-1.2) · z_j`, labelled `y = argmax(x · W_k + b_k)` (first maximum).
///
/// α controls how much the local models differ, β how much the local inputs differ.
/// Synthetic(0, 0) is *not* IID: every device still draws its own `W_k`, `b_k` and `v_k`.
/// The IID variant shares one `W`, `b ~ N(0, 1)` and sets `v_k = 0`.
///
/// Each device keeps its first `⌊0.9 · n_k⌋` samples for training and the remaining
/// `n_k − ⌊0.9 · n_k⌋` (at least 5 when `n_k ≥ 50`) for testing; the samples are
/// independent draws, so this split is as random as a shuffled one.
///
/// Determinism: device `k` uses only the generator `SeededGenerator.derived(seed:stream: k)`
/// (and the IID model only the stream `UInt64.max`), so a client can generate its own device
/// alone, the result does not depend on `deviceCount`, and the same seed gives the same
/// data bit for bit. The draws do not reproduce the original NumPy script's numbers.
public struct FedProxSynthetic: Sendable, Equatable {
    /// Standard deviation of the devices' model means `u_k` (ignored when `isIID`).
    public var alpha: Double
    /// Standard deviation of the devices' input means `B_k` (ignored when `isIID`).
    public var beta: Double
    /// Whether all devices share one model and zero input mean.
    public var isIID: Bool
    /// Number of devices; the paper uses 30.
    public var deviceCount: Int
    /// Input dimension `d`; the paper uses 60.
    public var featureCount: Int
    /// Number of classes; the paper uses 10.
    public var classCount: Int
    /// An upper bound on `n_k`, or `nil` for none (the paper's setting).
    ///
    /// LogNormal(4, 2) has a heavy tail: the median `n_k` is ~105, but one device in ~200 draws
    /// more than 10 000 samples and one in ~11 000 more than 100 000. A cap keeps runs of many
    /// devices bounded in memory and time. It must be at least 10 so both halves are
    /// non-empty.
    public var maximumSamplesPerDevice: Int?

    /// The non-IID Synthetic(α, β) setting.
    public init(
        alpha: Double, beta: Double, deviceCount: Int = 30, featureCount: Int = 60,
        classCount: Int = 10, maximumSamplesPerDevice: Int? = nil
    ) {
        self.alpha = alpha
        self.beta = beta
        self.isIID = false
        self.deviceCount = deviceCount
        self.featureCount = featureCount
        self.classCount = classCount
        self.maximumSamplesPerDevice = maximumSamplesPerDevice
    }

    /// The IID setting: one shared model, zero input mean.
    public static func iid(
        deviceCount: Int = 30, featureCount: Int = 60, classCount: Int = 10,
        maximumSamplesPerDevice: Int? = nil
    ) -> FedProxSynthetic {
        var setting = FedProxSynthetic(
            alpha: 0, beta: 0, deviceCount: deviceCount, featureCount: featureCount,
            classCount: classCount, maximumSamplesPerDevice: maximumSamplesPerDevice)
        setting.isIID = true
        return setting
    }

    /// One device's data and the ground-truth model that labelled it.
    public struct Device: Sendable, Equatable {
        /// The first `⌊0.9 · n_k⌋` samples, feature shape `[featureCount]`.
        public let train: LabeledDataset
        /// The other samples.
        public let test: LabeledDataset
        /// `W_k`, row-major `[featureCount, classCount]`.
        public let weights: [Float]
        /// `b_k`, `[classCount]`.
        public let bias: [Float]
    }

    /// Every device's data, in device order.
    public func generate(seed: UInt64) -> [Device] {
        let shared = isIID ? sharedModel(seed: seed) : nil
        return (0..<deviceCount).map { device($0, seed: seed, sharedModel: shared) }
    }

    /// Device `index` alone, identical to `generate(seed: seed)[index]`.
    public func device(_ index: Int, seed: UInt64) -> Device {
        device(index, seed: seed, sharedModel: isIID ? sharedModel(seed: seed) : nil)
    }

    /// The number of training samples of device `index` (90 % of its n_k), without
    /// generating the device: the first draw of its stream.
    public func trainCount(ofDevice index: Int, seed: UInt64) -> Int {
        precondition(index >= 0 && index < deviceCount, "device \(index) of \(deviceCount)")
        var generator = SeededGenerator.derived(seed: seed, stream: UInt64(index))
        return drawSampleCount(using: &generator) * 9 / 10
    }

    /// n_k = ⌊exp(4 + 2z)⌋ + 50, capped; Box–Muller gives |z| < 8.6, so exp(4 + 2z) < 2³¹.
    private func drawSampleCount(using generator: inout SeededGenerator) -> Int {
        let logNormal = Foundation.exp(4 + 2 * generator.nextGaussian())
        let sampleCount = Int(logNormal.rounded(.down)) + 50
        return maximumSamplesPerDevice.map { min(sampleCount, $0) } ?? sampleCount
    }

    private func validate() {
        precondition(deviceCount > 0, "device count \(deviceCount) must be positive")
        precondition(featureCount > 0, "feature count \(featureCount) must be positive")
        precondition(classCount > 0, "class count \(classCount) must be positive")
        precondition(
            alpha >= 0 && alpha.isFinite && beta >= 0 && beta.isFinite,
            "alpha \(alpha) and beta \(beta) must be finite standard deviations")
        if let cap = maximumSamplesPerDevice {
            precondition(cap >= 10, "maximumSamplesPerDevice \(cap) must be at least 10")
        }
    }

    private func sharedModel(seed: UInt64) -> (weights: [Double], bias: [Double]) {
        var generator = SeededGenerator.derived(seed: seed, stream: UInt64.max)
        let weights = (0..<featureCount * classCount).map { _ in generator.nextGaussian() }
        let bias = (0..<classCount).map { _ in generator.nextGaussian() }
        return (weights, bias)
    }

    private func device(
        _ index: Int, seed: UInt64, sharedModel: (weights: [Double], bias: [Double])?
    ) -> Device {
        validate()
        precondition(index >= 0 && index < deviceCount, "device \(index) of \(deviceCount)")
        var generator = SeededGenerator.derived(seed: seed, stream: UInt64(index))
        let sampleCount = drawSampleCount(using: &generator)

        var weights: [Double]
        var bias: [Double]
        let inputMean: [Double]
        if let sharedModel {
            (weights, bias) = sharedModel
            inputMean = [Double](repeating: 0, count: featureCount)
        } else {
            let modelMean = alpha * generator.nextGaussian()
            let inputMeanCenter = beta * generator.nextGaussian()
            inputMean = (0..<featureCount).map { _ in inputMeanCenter + generator.nextGaussian() }
            weights = (0..<featureCount * classCount).map { _ in
                modelMean + generator.nextGaussian()
            }
            bias = (0..<classCount).map { _ in modelMean + generator.nextGaussian() }
        }
        // Labels are computed from the stored Float values (in double precision), so that
        // `argmax(x · W + b)` over the returned features and model reproduces them exactly.
        weights = weights.map { Double(Float($0)) }
        bias = bias.map { Double(Float($0)) }
        let scales = (1...featureCount).map { Foundation.pow(Double($0), -1.2).squareRoot() }

        var features = [Float](repeating: 0, count: sampleCount * featureCount)
        var labels = [Int32](repeating: 0, count: sampleCount)
        var x = [Double](repeating: 0, count: featureCount)
        var logits = [Double](repeating: 0, count: classCount)
        for sample in 0..<sampleCount {
            for j in 0..<featureCount {
                let value = Float(inputMean[j] + scales[j] * generator.nextGaussian())
                features[sample * featureCount + j] = value
                x[j] = Double(value)
            }
            for c in 0..<classCount { logits[c] = bias[c] }
            for j in 0..<featureCount {
                for c in 0..<classCount { logits[c] += x[j] * weights[j * classCount + c] }
            }
            var best = 0
            for c in 1..<classCount where logits[c] > logits[best] { best = c }
            labels[sample] = Int32(best)
        }

        let trainCount = sampleCount * 9 / 10
        let shape = [featureCount]
        return Device(
            train: LabeledDataset(
                features: Array(features[..<(trainCount * featureCount)]),
                labels: Array(labels[..<trainCount]), featureShape: shape, classCount: classCount),
            test: LabeledDataset(
                features: Array(features[(trainCount * featureCount)...]),
                labels: Array(labels[trainCount...]), featureShape: shape, classCount: classCount),
            weights: weights.map { Float($0) }, bias: bias.map { Float($0) })
    }
}
