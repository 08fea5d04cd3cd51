import LowRank
import Testing

@Suite("Which data a model can take")
struct ModelKindTests {
    @Test("LeNet takes 28×28 images of one channel (Fashion-MNIST) and refuses flat features")
    func lenetInputs() {
        #expect(ModelKind.lenet.problem(inputShape: [28, 28, 1]) == nil)
        #expect(ModelKind.lenet.problem(inputShape: [32, 32, 3]) == nil)
        #expect(ModelKind.lenet.problem(inputShape: [60]) != nil)
        #expect(ModelKind.lenet.problem(inputShape: [4, 28, 1]) != nil)
        #expect(ModelKind.mlp.problem(inputShape: [60]) == nil)
    }
}
