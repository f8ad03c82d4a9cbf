import Ember
import Foundation
import Testing
import _EmberTestSupport

@Suite struct DatasetTests {
    // MARK: HostTensor

    @Test func hostTensorRoundTripsThroughTensorForEveryDType() {
        let cases: [HostTensor] = [
            HostTensor([1.5, -0.0, .infinity, .nan] as [Float], shape: [2, 2]),
            HostTensor([1.0 / 3, -1e-300] as [Double]),
            HostTensor([Int64.min, 0, Int64.max], shape: [3, 1]),
            HostTensor([true, false], shape: [2]),
            HostTensor([] as [Float], shape: [0, 4]),
            HostTensor([7] as [Int64], shape: []),
        ]
        for host in cases {
            let t = Tensor(host)
            #expect(t.shape == host.shape && t.dtype == host.dtype, "\(host)")
            let back = HostTensor(t)
            #expect(back.shape == host.shape && back.dtype == host.dtype)
            #expect(back.doubles.map(\.bitPattern) == host.doubles.map(\.bitPattern), "\(host)")
        }
    }

    @Test func hostTensorReadsTensorViewsInRowMajorOrder() {
        let t = Tensor((0..<6).map { Float($0) }, shape: [2, 3]).transposed(0, 1)
        let host = HostTensor(t)
        #expect(host.shape == [3, 2])
        #expect(host.floats == [0, 3, 1, 4, 2, 5])
    }

    @Test func hostTensorRowsStackingAndConversions() {
        let h = HostTensor((0..<12).map { Float($0) }, shape: [4, 3])
        #expect(h.row(2) == HostTensor([6, 7, 8] as [Float]))
        #expect(h.rows([3, 0, 3]) == HostTensor([9, 10, 11, 0, 1, 2, 9, 10, 11] as [Float], shape: [3, 3]))
        #expect(h.rows([Int]()).shape == [0, 3])
        #expect(HostTensor.stacked([h.row(1), h.row(0)]) == HostTensor([3, 4, 5, 0, 1, 2] as [Float], shape: [2, 3]))
        #expect(h.reshaped([2, -1]).shape == [2, 6])
        #expect(HostTensor([0.5, -1.9, 2.7, .nan] as [Float]).converted(to: .int64) == HostTensor([0, -1, 2, 0] as [Int64]))
        #expect(HostTensor([0, 3] as [Int64]).converted(to: .bool) == HostTensor([false, true]))
        #expect(HostTensor([true, false]).converted(to: .float64) == HostTensor([1, 0] as [Double]))
        let labels = HostTensor([4, 5] as [Int64])
        #expect(labels.row(1) == HostTensor([5] as [Int64], shape: []), "rows of a 1-d tensor are 0-d")
    }

    @Test func hostTensorChecksItsShape() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = HostTensor([1, 2, 3] as [Float], shape: [2, 2])
        }
        #expect(standardErrorText(r).contains("HostTensor: 3 values cannot fill shape [2, 2] (4 elements)"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = HostTensor([1, 2, 3] as [Float]).row(3)
        }
        #expect(standardErrorText(r).contains("index 3 is out of bounds for dimension 0 with size 3"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = HostTensor([1, 2, 3] as [Float]).reshaped([2, -1])
        }
        #expect(standardErrorText(r).contains("shape '[2, -1]' is invalid for input of size 3"))
    }

    // MARK: TensorDataset

    @Test func tensorDatasetYieldsRowsOfInputsAndLabels() {
        let data = TensorDataset(inputs: Tensor((0..<8).map { Float($0) }, shape: [4, 2]), labels: Tensor([3, 1, 4, 1]))
        #expect(data.count == 4)
        #expect(data[2] == Example(input: HostTensor([4, 5] as [Float]), label: HostTensor([4] as [Int64], shape: [])))
        #expect(data[3].label.int64s == [1])
    }

    @Test func tensorDatasetCopiesTensorsWithoutTheirGraph() {
        var x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]).requiringGrad()
        let data = TensorDataset(inputs: x, labels: Tensor([0, 1]))
        x = x * 10
        #expect(data[1].input.floats == [3, 4])
    }

    @Test func tensorDatasetRefusesMismatchedSizes() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = TensorDataset(inputs: Tensor.zeros([3, 2]), labels: Tensor([0, 1]))
        }
        #expect(standardErrorText(r).contains("Size mismatch between tensors"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = TensorDataset(inputs: Tensor.zeros([3, 2]), labels: Tensor([0, 1, 2]))[3]
        }
        #expect(standardErrorText(r).contains("index 3 is out of bounds for dimension 0 with size 3"))
    }

    // MARK: Subset and randomSplit

    @Test func subsetReadsTheBaseAtItsIndices() {
        let s = Subset(indexDataset(10), indices: [7, 2, 7])
        #expect(s.count == 3)
        #expect([0, 1, 2].map { s[$0].label.int64s[0] } == [7, 2, 7])
        #expect(labelBatches(DataLoader(s, batchSize: 2)) == [[7, 2], [7]])
    }

    @Test func randomSplitWithSizesPartitionsTheDataset() {
        let data = indexDataset(25)
        let parts = randomSplit(data, lengths: [10, 5, 10], generator: Generator(seed: 1))
        #expect(parts.map(\.count) == [10, 5, 10])
        let all = parts.flatMap(\.indices)
        #expect(all.sorted() == Array(0..<25), "disjoint and complete")
        #expect(all != Array(0..<25), "shuffled")
        for p in parts {
            for i in 0..<p.count { #expect(p[i].label.int64s[0] == Int64(p.indices[i])) }
        }
    }

    @Test func randomSplitIsReproduciblePerSeed() {
        let data = indexDataset(30)
        let a = randomSplit(data, lengths: [20, 10], generator: Generator(seed: 5)).map(\.indices)
        let b = randomSplit(data, lengths: [20, 10], generator: Generator(seed: 5)).map(\.indices)
        let c = randomSplit(data, lengths: [20, 10], generator: Generator(seed: 6)).map(\.indices)
        #expect(a == b)
        #expect(a != c)
    }

    /// Sizes from `torch.utils.data.random_split(range(n), fractions)` (PyTorch 2.x): floor each,
    /// then hand out the remainder round-robin.
    static let fractionCases: [(Int, [Double], [Int])] = [
        (10, [0.5, 0.3, 0.2], [5, 3, 2]),
        (11, [0.5, 0.3, 0.2], [6, 3, 2]),
        (7, [1.0 / 3, 1.0 / 3, 1.0 / 3], [3, 2, 2]),
        (5, [0.1, 0.9], [1, 4]),
        (3, [0.25, 0.25, 0.25, 0.25], [1, 1, 1, 0]),
        (1797, [0.8, 0.2], [1438, 359]),
        (0, [0.5, 0.5], [0, 0]),
    ]

    @Test(arguments: fractionCases)
    func fractionalSplitsMatchPyTorch(count: Int, fractions: [Double], sizes: [Int]) {
        let parts = randomSplit(indexDataset(count), lengths: fractions, generator: Generator(seed: 0))
        #expect(parts.map(\.count) == sizes)
        #expect(parts.flatMap(\.indices).sorted() == Array(0..<count))
    }

    @Test func integerLiteralsPickSizesAndFloatLiteralsPickFractions() {
        #expect(randomSplit(indexDataset(10), lengths: [3, 7]).map(\.count) == [3, 7])
        #expect(randomSplit(indexDataset(10), lengths: [0.3, 0.7]).map(\.count) == [3, 7])
    }

    @Test func randomSplitErrorsUsePyTorchsMessages() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = randomSplit(indexDataset(10), lengths: [3, 4])
        }
        #expect(standardErrorText(r).contains("Sum of input lengths does not equal the length of the input dataset!"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = randomSplit(indexDataset(10), lengths: [0.5, 0.6])
        }
        #expect(standardErrorText(r).contains("Sum of input lengths does not equal the length of the input dataset!"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = randomSplit(indexDataset(10), lengths: [1.5, -0.5])
        }
        #expect(standardErrorText(r).contains("Fraction at index 0 is not between 0 and 1"))
    }

    @Test func anEmptyFractionalSplitWarnsAsPyTorchDoes() async {
        let r = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            _ = randomSplit(indexDataset(3), lengths: [0.25, 0.25, 0.25, 0.25])
        }
        #expect(standardErrorText(r).contains("Length of split at index 3 is 0. This might result in an empty dataset."))
    }
}
