import Federation
import Tensors
import Testing

@Suite("Payload validation against expected shapes")
struct WireValidationTests {
    static let expected = PayloadShapes(
        factors: [
            FactorShape(rank: 2, outputs: 3, inputs: 4),
            FactorShape(rank: 0, outputs: 5, inputs: 6),
        ],
        shared: [[3], [5]])

    static func payload() -> ([FactorPair], [Tensor]) {
        (
            [
                FactorPair(up: Tensor(zeros: [2, 3]), down: Tensor(zeros: [2, 4])),
                FactorPair(up: Tensor(zeros: [0, 5]), down: Tensor(zeros: [0, 6])),
            ],
            [Tensor(zeros: [3]), Tensor(zeros: [5])]
        )
    }

    func validationError(_ factors: [FactorPair], _ shared: [Tensor]) -> WireError? {
        do {
            try WireCodec.validate(factors: factors, shared: shared, against: Self.expected)
            return nil
        } catch {
            return error
        }
    }

    @Test("Matching tensors pass; shapes taken from sent tensors match themselves")
    func matching() {
        let (factors, shared) = Self.payload()
        #expect(validationError(factors, shared) == nil)
        #expect(PayloadShapes(of: factors, shared: shared) == Self.expected)
    }

    @Test("Counts, shapes and non-finite values are named")
    func mismatches() {
        var (factors, shared) = Self.payload()
        #expect(
            validationError(Array(factors.prefix(1)), shared)
                == .factorCountMismatch(expected: 2, got: 1))
        #expect(
            validationError(factors, shared + shared) == .sharedCountMismatch(expected: 2, got: 4))
        factors[1].down = Tensor(zeros: [1, 6])
        #expect(
            validationError(factors, shared)
                == .shapeMismatch(layer: .down(layer: 1), expected: [0, 6], got: [1, 6]))
        factors = Self.payload().0
        factors[0].up = Tensor(zeros: [3, 2])
        #expect(
            validationError(factors, shared)
                == .shapeMismatch(layer: .up(layer: 0), expected: [2, 3], got: [3, 2]))
        factors = Self.payload().0
        shared[1].scalars[4] = .nan
        #expect(
            validationError(factors, shared) == .nonFiniteValue(layer: .shared(index: 1), index: 4))
        #expect(
            (try? WireCodec.validate(
                factors: factors, shared: shared, against: Self.expected, requireFinite: false))
                != nil)
        #expect(
            WireError.shapeMismatch(layer: .down(layer: 1), expected: [0, 6], got: [1, 6])
                .description
                == "factors[1].down has shape [1, 6], expected [0, 6]")
    }
}
