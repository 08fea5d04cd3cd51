import Foundation

/// Softmax cross-entropy over a batch of logits.
public enum SoftmaxCrossEntropy {
    /// Mean loss over the batch and `∂loss/∂logits` for integer labels.
    public static func lossAndGradient(
        logits: [Float], labels: some Collection<Int32>, classCount: Int
    ) -> (loss: Double, gradient: [Float]) {
        let batch = labels.count
        precondition(
            logits.count == batch * classCount, "\(logits.count) logits for \(batch)×\(classCount)")
        var gradient = softmax(logits, classCount: classCount)
        var loss = 0.0
        let scale = 1 / Float(batch)
        for (row, label) in labels.enumerated() {
            let base = row * classCount
            loss -= Foundation.log(max(Double(gradient[base + Int(label)]), 1e-30))
            gradient[base + Int(label)] -= 1
            for j in 0..<classCount { gradient[base + j] *= scale }
        }
        return (loss / Double(max(batch, 1)), gradient)
    }

    /// Mean cross-entropy against soft targets (self-distillation) and its gradient.
    public static func lossAndGradient(
        logits: [Float], targets: [Float], classCount: Int
    ) -> (loss: Double, gradient: [Float]) {
        precondition(logits.count == targets.count, "logits and targets differ in size")
        let batch = logits.count / classCount
        var gradient = softmax(logits, classCount: classCount)
        var loss = 0.0
        let scale = 1 / Float(batch)
        for i in gradient.indices {
            loss -= Double(targets[i]) * Foundation.log(max(Double(gradient[i]), 1e-30))
            gradient[i] = (gradient[i] - targets[i]) * scale
        }
        return (loss / Double(max(batch, 1)), gradient)
    }

    /// Row-wise softmax, numerically stable.
    public static func softmax(_ logits: [Float], classCount: Int) -> [Float] {
        var result = logits
        let rows = logits.count / classCount
        for row in 0..<rows {
            let base = row * classCount
            var peak = -Float.infinity
            for j in 0..<classCount { peak = max(peak, result[base + j]) }
            var sum: Float = 0
            for j in 0..<classCount {
                let e = Foundation.exp(result[base + j] - peak)
                result[base + j] = e
                sum += e
            }
            for j in 0..<classCount { result[base + j] /= sum }
        }
        return result
    }

    /// Number of rows whose largest logit is at the label.
    public static func correctCount(
        logits: [Float], labels: some Collection<Int32>, classCount: Int
    ) -> Int {
        // Counted without an array: the trainer calls this on every step.
        var correct = 0
        for (row, label) in labels.enumerated()
        where isCorrect(logits: logits, row: row, label: label, classCount: classCount) {
            correct += 1
        }
        return correct
    }

    /// Whether each row's arg-max class (the first, on a tie) is its label.
    public static func correctRows(
        logits: [Float], labels: some Collection<Int32>, classCount: Int
    ) -> [Bool] {
        labels.enumerated().map { row, label in
            isCorrect(logits: logits, row: row, label: label, classCount: classCount)
        }
    }

    private static func isCorrect(
        logits: [Float], row: Int, label: Int32, classCount: Int
    ) -> Bool {
        let base = row * classCount
        var best = 0
        for j in 1..<classCount where logits[base + j] > logits[base + best] { best = j }
        return best == Int(label)
    }
}
