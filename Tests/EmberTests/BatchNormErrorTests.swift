import Ember
import Testing
import _EmberTestSupport

/// Programmer errors stop the process with a message naming the module path, the shape and the
/// fixes. Exit tests run each case in a child process and check its output.
@Suite struct BatchNormErrorTests {
    @Test func oneValuePerChannelInTrainingNamesPathShapeAndFixes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            final class Net: Module { var bn1 = BatchNorm1d(20) }
            let net = Net()
            net.train()
            _ = net.bn1(Tensor.zeros([1, 20]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("BatchNorm1d 'bn1': Expected more than 1 value per channel when training, got input size torch.Size([1, 20])"))
        #expect(text.contains("dropLast") && text.contains("eval mode") && text.contains("GroupNorm"))
    }

    @Test func batchOfOneIsFineInEval() {
        let bn = BatchNorm1d(3)
        bn.eval()
        #expect(bn(Tensor.ones([1, 3])).shape == [1, 3])
    }

    @Test func wrongRankForBatchNorm1d() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchNorm1d(3)(Tensor.zeros([2, 3, 4, 5]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("BatchNorm1d: expected 2D or 3D input (got 4D input)"))
    }

    @Test func wrongRankForBatchNorm2d() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchNorm2d(3)(Tensor.zeros([2, 3, 4]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("BatchNorm2d: expected 4D input (got 3D input)"))
    }

    @Test func wrongRankForBatchNorm3d() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchNorm3d(3)(Tensor.zeros([2, 3, 4, 5]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("BatchNorm3d: expected 5D input (got 4D input)"))
    }

    @Test func channelMismatch() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchNorm1d(20)(Tensor.zeros([4, 19]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("running_mean should contain 19 elements not 20"))
    }
}
