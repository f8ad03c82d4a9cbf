import Ember
import Testing
import _EmberTestSupport

/// Programmer errors in losses stop the process with PyTorch's text (after the operation's name)
/// plus the shapes. Exit tests run each case in a child process.
@Suite struct LossErrorTests {
    // MARK: Class-index targets

    @Test func targetOutOfBounds() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor([0, 5, 1] as [Int]))
        }
        #expect(standardErrorText(r).contains("crossEntropy: Target 5 is out of bounds."))
    }

    @Test func negativeTargetThatIsNotIgnored() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = nllLoss(Tensor.zeros([3, 5]), target: Tensor([0, -100, 1] as [Int]), ignoreIndex: -1)
        }
        #expect(standardErrorText(r).contains("nllLoss: Target -100 is out of bounds."))
    }

    @Test func targetOutOfBoundsInAKDimensionalLoss() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([2, 3, 4]), target: Tensor.full([2, 4], 3, dtype: .int64), weight: Tensor.ones([3]))
        }
        #expect(standardErrorText(r).contains("Target 3 is out of bounds."))
    }

    @Test func batchSizeMismatch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor([0, 1, 1, 2] as [Int]))
        }
        let text = standardErrorText(r)
        #expect(text.contains("crossEntropy: Expected input batch_size (3) to match target batch_size (4)."))
        #expect(text.contains("input shape [3, 5], target shape [4]"))
    }

    @Test func floatTargetForClassIndices() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor([0, 1, 1] as [Float]))
        }
        #expect(standardErrorText(r).contains("crossEntropy: expected target dtype to be Long or Byte, but got Float"))
    }

    @Test func boolTargetForNLL() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = nllLoss(Tensor.zeros([3, 5]), target: Tensor([true, false, true]))
        }
        #expect(standardErrorText(r).contains("nllLoss: expected target dtype to be Long or Byte, but got Bool"))
    }

    @Test func integerTargetOfTheInputsShapeIsReadAsProbabilities() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor.zeros([3, 5], dtype: .int64))
        }
        #expect(standardErrorText(r).contains("crossEntropy: Expected floating point type for target with class probabilities, got Long"))
    }

    @Test func ignoreIndexWithProbabilities() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor.ones([3, 5]), ignoreIndex: 1)
        }
        #expect(standardErrorText(r).contains("crossEntropy: ignore_index is not supported for floating point target"))
    }

    @Test func labelSmoothingAboveOne() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor([0, 1, 1] as [Int]), labelSmoothing: 1.5)
        }
        #expect(standardErrorText(r).contains("crossEntropy: label_smoothing must be between 0.0 and 1.0. Got: 1.5"))
    }

    /// Deliberate difference: PyTorch silently ignores a negative label smoothing.
    @Test func negativeLabelSmoothingStops() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = CrossEntropyLoss(labelSmoothing: -0.5)
        }
        #expect(standardErrorText(r).contains("CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0. Got: -0.5"))
    }

    @Test func classWeightOfTheWrongSize() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor([0, 1, 1] as [Int]), weight: Tensor.ones([4]))
        }
        #expect(standardErrorText(r).contains(
            "crossEntropy: weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [4]"))
    }

    @Test func classWeightOfTheWrongSizeForProbabilities() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor.ones([3, 5]), weight: Tensor.ones([1, 5]))
        }
        #expect(standardErrorText(r).contains(
            "cross_entropy: weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [1, 5]"))
    }

    @Test func classWeightOfAnotherDType() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = nllLoss(Tensor.zeros([3, 5]), target: Tensor([0, 1, 1] as [Int]), weight: Tensor.ones([5], dtype: .float64))
        }
        #expect(standardErrorText(r).contains("nllLoss: expected scalar type Float but found Double"))
    }

    @Test func classWeightThatRequiresGrad() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor([0, 1, 1] as [Int]), weight: Tensor.ones([5]).requiringGrad())
        }
        #expect(standardErrorText(r).contains(
            "The function 'nll_loss_forward' is not differentiable with respect to argument 'weight'. This input cannot have requires_grad True."))
    }

    @Test func kDimensionalTargetOfTheWrongShape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([2, 3, 4]), target: Tensor.zeros([2, 5], dtype: .int64))
        }
        #expect(standardErrorText(r).contains("crossEntropy: Expected target size [2, 4], got [2, 5]"))
    }

    @Test func spatialTargetOfTheWrongRank() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([2, 3, 4, 5]), target: Tensor.zeros([2, 4], dtype: .int64))
        }
        #expect(standardErrorText(r).contains("only batches of spatial targets supported (3D tensors) but got targets of dimension: 2"))
    }

    @Test func unbatchedInputWithSeveralTargets() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([5]), target: Tensor([2, 1] as [Int]))
        }
        #expect(standardErrorText(r).contains("For 1D input, 1D target must have size 1, but got target size: 2"))
    }

    @Test func multiTargetForBatchedInput() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5]), target: Tensor.zeros([3, 1], dtype: .int64))
        }
        #expect(standardErrorText(r).contains("0D or 1D target tensor expected, multi-target not supported"))
    }

    @Test func scalarInputForNLL() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = nllLoss(Tensor(Float(1)), target: Tensor(Int64(0)))
        }
        #expect(standardErrorText(r).contains("nllLoss: Expected 1 or more dimensions (got 0)"))
    }

    @Test func integerLogits() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = crossEntropy(Tensor.zeros([3, 5], dtype: .int64), target: Tensor([0, 1, 1] as [Int]))
        }
        #expect(standardErrorText(r).contains("crossEntropy: \"log_softmax_lastdim_kernel_impl\" not implemented for 'Long'"))
    }

    @Test func moduleErrorsNameTheModulePath() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            final class Net: Module { let criterion = CrossEntropyLoss() }
            let net = Net()
            net.train()  // a traversal records the path
            _ = net.criterion(Tensor.zeros([3, 5]), Tensor([0, 7, 1] as [Int]))
        }
        #expect(standardErrorText(r).contains("CrossEntropyLoss 'criterion': Target 7 is out of bounds."))
    }

    // MARK: Reductions and modules

    @Test func batchMeanOutsideKLDivergence() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = mseLoss(Tensor.zeros([3]), target: Tensor.zeros([3]), reduction: .batchMean)
        }
        #expect(standardErrorText(r).contains("mseLoss: batchmean is not a valid value for reduction"))
    }

    @Test func batchMeanForALossModule() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = CrossEntropyLoss(reduction: .batchMean)
        }
        #expect(standardErrorText(r).contains("CrossEntropyLoss: batchmean is not a valid value for reduction"))
    }

    @Test func callingALossWithOneTensor() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MSELoss()(Tensor.zeros([3]))
        }
        #expect(standardErrorText(r).contains("MSELoss: a loss takes an input and a target; call it as loss(input, target)"))
    }

    // MARK: Element-wise losses

    /// Deliberate difference: PyTorch warns and broadcasts `[3, 1]` against `[3]` into `[3, 3]`.
    @Test func mseTargetOfAnotherShapeStops() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = mseLoss(Tensor.zeros([3, 1]), target: Tensor.zeros([3]))
        }
        let text = standardErrorText(r)
        #expect(text.contains("mseLoss: the target size [3] is different to the input size [3, 1]"))
        #expect(text.contains("Ember does not broadcast a loss's target"))
        #expect(text.contains("Using a target size (torch.Size([3])) that is different to the input size (torch.Size([3, 1]))"))
    }

    @Test func l1TargetOfAnotherShapeStops() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = L1Loss()(Tensor.zeros([4]), Tensor.zeros([4, 1]))
        }
        #expect(standardErrorText(r).contains("L1Loss: the target size [4, 1] is different to the input size [4]"))
    }

    @Test func integerOperandsForMSE() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = mseLoss(Tensor.zeros([3], dtype: .int64), target: Tensor.zeros([3], dtype: .int64))
        }
        #expect(standardErrorText(r).contains("mseLoss: \"mse_cpu\" not implemented for 'Long'"))
    }

    @Test func negativeSmoothL1Beta() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = smoothL1Loss(Tensor.zeros([3]), target: Tensor.zeros([3]), beta: -1)
        }
        #expect(standardErrorText(r).contains("smoothL1Loss: smooth_l1_loss does not support negative values for beta."))
    }

    @Test func nonPositiveHuberDelta() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = HuberLoss(delta: 0)
        }
        #expect(standardErrorText(r).contains("HuberLoss: huber_loss does not support non-positive values for delta."))
    }

    @Test func bceInputAboveOne() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropy(Tensor([0.5, 1.5] as [Float]), target: Tensor([0, 1] as [Float]))
        }
        let text = standardErrorText(r)
        #expect(text.contains("binaryCrossEntropy: all elements of input should be between 0 and 1"))
        #expect(text.contains("binaryCrossEntropyWithLogits"), "suggests the logits form")
    }

    @Test func bceNaNInput() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropy(Tensor([0.5, .nan] as [Float]), target: Tensor([0, 1] as [Float]))
        }
        #expect(standardErrorText(r).contains("all elements of input should be between 0 and 1"))
    }

    @Test func bceTargetAboveOne() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BCELoss()(Tensor([0.5, 0.5] as [Float]), Tensor([0, 2] as [Float]))
        }
        #expect(standardErrorText(r).contains("BCELoss: all elements of target should be between 0 and 1"))
    }

    @Test func bceTargetOfAnotherShape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropy(Tensor.full([3, 1], 0.5), target: Tensor.full([3], 0.5))
        }
        #expect(standardErrorText(r).contains(
            "Using a target size (torch.Size([3])) that is different to the input size (torch.Size([3, 1])) is deprecated. Please ensure they have the same size."))
    }

    @Test func bceTargetOfAnotherDType() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropy(Tensor.full([3], 0.5), target: Tensor.full([3], 0.5, dtype: .float64))
        }
        #expect(standardErrorText(r).contains("binaryCrossEntropy: Found dtype Double but expected Float"))
    }

    @Test func bceWeightThatDoesNotBroadcast() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropy(Tensor.full([3, 2], 0.5), target: Tensor.full([3, 2], 0.5), weight: Tensor.ones([3]))
        }
        #expect(standardErrorText(r).contains("binaryCrossEntropy: weight of shape [3] cannot be broadcast to the input shape [3, 2]"))
    }

    @Test func bceWithLogitsTargetOfAnotherShape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropyWithLogits(Tensor.zeros([3, 1]), target: Tensor.zeros([3]))
        }
        #expect(standardErrorText(r).contains(
            "binaryCrossEntropyWithLogits: Target size (torch.Size([3])) must be the same as input size (torch.Size([3, 1]))"))
    }

    @Test func bceWithLogitsPosWeightThatRequiresGrad() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = binaryCrossEntropyWithLogits(Tensor.zeros([3]), target: Tensor.zeros([3]), posWeight: Tensor.ones([3]).requiringGrad())
        }
        #expect(standardErrorText(r).contains(
            "The function 'binary_cross_entropy_with_logits' is not differentiable with respect to argument 'pos_weight'."))
    }

    @Test func klDivergenceOfIntegers() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = klDiv(Tensor.zeros([3], dtype: .int64), target: Tensor.zeros([3]))
        }
        #expect(standardErrorText(r).contains("klDiv: kl_div: Integral inputs not supported."))
    }

    /// Deliberate difference: PyTorch broadcasts `kl_div` operands without a warning.
    @Test func klDivergenceTargetOfAnotherShape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = KLDivLoss(reduction: .batchMean)(Tensor.zeros([3, 1]), Tensor.zeros([3]))
        }
        let text = standardErrorText(r)
        #expect(text.contains("KLDivLoss: the target size [3] is different to the input size [3, 1]"))
        #expect(text.contains("PyTorch broadcasts them silently"))
    }
}
