import Foundation

/// Knowledge distillation from a teacher's logits held constant (Hinton et al. 2015; FjORD's
/// self-distillation, Horváth et al., NeurIPS 2021, §3.3): the student also learns the
/// teacher's softened class distribution.
///
/// With `q_t = softmax(z_t / T)` and `q_s = softmax(z_s / T)` row by row, the term is
/// `α · T² · KL(q_t ‖ q_s)`, averaged over the batch's rows. Its gradient with respect to
/// the student's logits is `α · T · (q_s − q_t) / B`; the teacher gets none. The `T²` keeps
/// the gradient's scale comparable to the cross-entropy's as `T` grows.
public enum KnowledgeDistillation {
    /// The term and its gradient with respect to `studentLogits` (same layout as the
    /// logits: `B` rows of `classCount`). `weight` is α ≥ 0, `temperature` is T > 0.
    public static func lossAndGradient(
        studentLogits: [Float], teacherLogits: [Float], classCount: Int, weight: Float,
        temperature: Float
    ) -> (loss: Double, gradient: [Float]) {
        precondition(
            studentLogits.count == teacherLogits.count, "student and teacher logits differ in size")
        precondition(classCount > 0 && studentLogits.count % classCount == 0, "ragged logits")
        let batch = Double(max(studentLogits.count / classCount, 1))
        // In double precision: logits divided by a small temperature stay finite.
        let student = logSoftmax(studentLogits, temperature: temperature, classCount: classCount)
        let teacher = logSoftmax(teacherLogits, temperature: temperature, classCount: classCount)
        let (alpha, t) = (Double(weight), Double(temperature))
        var divergence = 0.0
        var gradient = [Float](repeating: 0, count: studentLogits.count)
        for i in student.indices {
            let (q, p) = (Foundation.exp(student[i]), Foundation.exp(teacher[i]))
            if p > 0 { divergence += p * (teacher[i] - student[i]) }
            gradient[i] = Float(alpha * t * (q - p) / batch)
        }
        return (alpha * t * t * divergence / batch, gradient)
    }

    /// Row-wise log-softmax of `logits / temperature` in double precision, numerically stable.
    static func logSoftmax(_ logits: [Float], temperature: Float, classCount: Int) -> [Double] {
        var result = logits.map { Double($0) / Double(temperature) }
        for row in 0..<(logits.count / classCount) {
            let base = row * classCount
            var peak = -Double.infinity
            for j in 0..<classCount { peak = max(peak, result[base + j]) }
            var sum = 0.0
            for j in 0..<classCount { sum += Foundation.exp(result[base + j] - peak) }
            let shift = peak + Foundation.log(sum)
            for j in 0..<classCount { result[base + j] -= shift }
        }
        return result
    }
}
