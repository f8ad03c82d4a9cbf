import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Issue #10: DataLoader edge cases behave as PyTorch's: an empty dataset, or one smaller than a
/// batch with `dropLast`, is an empty epoch (`len` 0), not an error; a batch size below 1 is a
/// programmer error with PyTorch's message.
@Suite struct DataLoaderEdgeTests {
    private static func empty() -> TensorDataset {
        TensorDataset(inputs: HostTensor([Float](), shape: [0, 3]), labels: HostTensor([Int64]()))
    }

    @Test(arguments: [(false, 0), (true, 0), (false, 2), (true, 2)])
    func anEmptyDatasetGivesEmptyEpochs(shuffle: Bool, prefetch: Int) {
        for dropLast in [false, true] {
            let loader = DataLoader(Self.empty(), batchSize: 4, shuffle: shuffle, dropLast: dropLast, prefetch: prefetch,
                                    generator: Generator(seed: 3))
            #expect(loader.count == 0)
            for _ in 0..<2 { #expect(Array(loader).isEmpty) }
        }
    }

    @Test(arguments: [false, true])
    func aDatasetSmallerThanOneBatchWithDropLastGivesEmptyEpochs(shuffle: Bool) {
        let data = TensorDataset(features: [1, 2, 3, 4, 5, 6], featureShape: [2], labels: [0, 1, 0])
        let dropped = DataLoader(data, batchSize: 4, shuffle: shuffle, dropLast: true, generator: Generator(seed: 1))
        #expect(dropped.count == 0)
        #expect(Array(dropped).isEmpty)
        let kept = DataLoader(data, batchSize: 4, shuffle: shuffle, dropLast: false, generator: Generator(seed: 1))
        #expect(kept.count == 1)
        #expect(Array(kept).map(\.labels.shape) == [[3]])
    }

    @Test func aHeaderOnlyCSVIsAnEmptyDatasetNotACrash() throws {
        let table = try CSV.decode(Data("a,b,label\n".utf8), label: "label")
        #expect(table.rowCount == 0 && table.features.shape == [0, 2] && table.labels?.shape == [0])
        let loader = DataLoader(table.dataset(), batchSize: 8, shuffle: true)
        #expect(loader.count == 0 && Array(loader).isEmpty)
    }

    @Test func aNegativeBatchSizeIsRefusedWithPyTorchsMessage() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = DataLoader(TensorDataset(features: [1], featureShape: [1], labels: [0]), batchSize: -2)
        }
        #expect(standardErrorText(r).contains("batch_size should be a positive integer value, but got batch_size=-2"))
    }
}
