import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Hostile-user checks for convolution, pooling, padding and resampling: each misuse stops the
/// process with PyTorch's message (checked as exit tests), and, for a module reached by a
/// traversal, names it by its path (`Conv2d '0'`, `Conv2d 'features.1'`).
@Suite struct ConvErrorTests {
    // MARK: convolution

    /// A Conv2d inside a Sequential, given a 1-channel image where it expects 3.
    @Test func wrongChannelCountInsideSequentialNamesTheLayer() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Conv2d(3, 4, 3), ReLU())
            model.eval()  // a traversal: the layers learn their paths
            _ = model(Tensor.zeros([1, 1, 5, 5]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("Conv2d '0'"), "\(text)")
        #expect(text.contains("Given groups=1, weight of size [4, 3, 3, 3], expected input[1, 1, 5, 5] to have 3 channels, but got 1 channels instead"),
                "\(text)")
    }

    /// The same mistake in a layer held as a named field, under a Sequential in a custom model.
    @Test func wrongChannelCountNamesTheFieldPath() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            final class Net: Module {
                var features = Sequential(Conv2d(3, 8, 3, padding: 1), ReLU(), Conv2d(4, 8, 3))
                var head = Conv2d(8, 2, 1)
                override func forward(_ x: Tensor) -> Tensor { head(features(x)) }
            }
            let net = Net()
            net.train()
            _ = net(Tensor.zeros([2, 3, 6, 6]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("Conv2d 'features.2'"), "\(text)")
        #expect(text.contains("expected input[2, 8, 6, 6] to have 4 channels, but got 8 channels instead"), "\(text)")
    }

    /// A fresh model called before any traversal still says which kind of layer and what PyTorch says.
    @Test func wrongChannelCountBeforeAnyTraversal() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Sequential(Conv2d(3, 4, 3))(Tensor.zeros([1, 1, 5, 5]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("Conv2d"), "\(text)")
        #expect(text.contains("expected input[1, 1, 5, 5] to have 3 channels, but got 1 channels instead"), "\(text)")
    }

    @Test func kernelLargerThanPaddedInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Conv2d(1, 2, 5, padding: 1))
            model.eval()
            _ = model(Tensor.zeros([1, 1, 2, 2]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("Conv2d '0'"), "\(text)")
        #expect(text.contains("Calculated padded input size per channel: (4 x 4). Kernel size: (5 x 5). Kernel size can't be greater than actual input size"),
                "\(text)")
    }

    /// Dilation counts: kernel 3 with dilation 3 spans 7 pixels.
    @Test func dilatedKernelLargerThanInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv1d(1, 1, 3, dilation: 3)(Tensor.zeros([1, 1, 6]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("Kernel size: (7). Kernel size can't be greater than actual input size"), "\(text)")
    }

    @Test func twoDimensionalInputToConv2d() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv2d(3, 4, 3)(Tensor.zeros([5, 5]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [5, 5]"), "\(text)")
    }

    @Test func groupsMustDivideInChannels() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv2d(3, 4, 3, groups: 2)
        }
        #expect(standardErrorText(result).contains("in_channels must be divisible by groups"), "\(standardErrorText(result))")
    }

    @Test func groupsMustDivideOutChannels() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv2d(4, 3, 3, groups: 2)
        }
        #expect(standardErrorText(result).contains("out_channels must be divisible by groups"), "\(standardErrorText(result))")
    }

    @Test func groupsMustDivideChannelsOfTransposedConvolutions() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = ConvTranspose2d(4, 6, 3, groups: 4)
        }
        #expect(standardErrorText(result).contains("out_channels must be divisible by groups"), "\(standardErrorText(result))")
    }

    @Test func samePaddingWithStride2() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv2d(3, 4, 3, stride: 2, padding: .same)
        }
        #expect(standardErrorText(result).contains("padding='same' is not supported for strided convolutions"), "\(standardErrorText(result))")
    }

    @Test func samePaddingWithStride2Functional() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = conv2d(Tensor.zeros([1, 1, 5, 5]), weight: Tensor.zeros([1, 1, 3, 3]), stride: [1, 2], padding: .same)
        }
        #expect(standardErrorText(result).contains("padding='same' is not supported for strided convolutions"), "\(standardErrorText(result))")
    }

    /// A reflect-padded convolution whose padding reaches the input size: F.pad's message.
    @Test func reflectPaddingModeLargerThanInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv2d(3, 4, 3, padding: 4, paddingMode: .reflect)(Tensor.zeros([1, 3, 3, 3]))
        }
        #expect(standardErrorText(result).contains("Padding size should be less than the corresponding input dimension, but got: padding (4, 4)"),
                "\(standardErrorText(result))")
    }

    @Test func convTransposeOutputSizeOutOfRange() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(ConvTranspose2d(2, 3, 3, stride: 2))
            model.eval()
            let up = model[0] as! ConvTranspose2d
            _ = up(Tensor.zeros([1, 2, 4, 4]), outputSize: [12, 12])
        }
        let text = standardErrorText(result)
        #expect(text.contains("ConvTranspose2d '0'"), "\(text)")
        #expect(text.contains("requested an output size of [12, 12], but valid sizes range from [9, 9] to [10, 10]"), "\(text)")
    }

    // MARK: pooling

    @Test func maxPoolOutputTooSmall() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Conv2d(1, 1, 3, padding: 1), MaxPool2d(3))
            model.eval()
            _ = model(Tensor.zeros([1, 1, 2, 2]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("MaxPool2d '1'"), "\(text)")
        #expect(text.contains("Given input size: (1x2x2). Calculated output size: (1x0x0). Output size is too small"), "\(text)")
    }

    /// PyTorch: `pad should be at most half of effective kernel size, but got pad=2, kernel_size=2
    /// and dilation=1`; Ember writes one value when all dimensions agree, the list otherwise.
    @Test func maxPoolPadLargerThanHalfTheKernel() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MaxPool2d(2, padding: 2)(Tensor.zeros([1, 1, 6, 6]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("MaxPool2d"), "\(text)")
        #expect(text.contains("pad should be at most half of effective kernel size, but got pad=2, kernel_size=2 and dilation=1"), "\(text)")
    }

    @Test func avgPoolPadLargerThanHalfTheKernel() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = avgPool2d(Tensor.zeros([1, 1, 6, 6]), kernelSize: 2, padding: 2)
        }
        #expect(standardErrorText(result).contains("pad should be at most half of effective kernel size"), "\(standardErrorText(result))")
    }

    /// An index past the end of the unpooled plane (PyTorch: `Found an invalid max index: 100
    /// (output volumes are of size 4x4)`).
    @Test func maxUnpoolIndexOutOfRange() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor([1, 2, 3, 4] as [Double], shape: [1, 1, 2, 2])
            let indices = Tensor([0, 3, 100, 15] as [Int64], shape: [1, 1, 2, 2])
            _ = maxUnpool2d(x, indices: indices, kernelSize: 2)
        }
        #expect(standardErrorText(result).contains("Found an invalid max index: 100 (output volumes are of size 4x4)"), "\(standardErrorText(result))")
    }

    @Test func maxUnpoolNegativeIndex() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor([1, 2, 3, 4] as [Double], shape: [1, 1, 2, 2])
            let indices = Tensor([0, -1, 8, 15] as [Int64], shape: [1, 1, 2, 2])
            _ = MaxUnpool2d(2)(x, indices: indices)
        }
        let text = standardErrorText(result)
        #expect(text.contains("MaxUnpool2d"), "\(text)")
        #expect(text.contains("Found an invalid max index: -1 (output volumes are of size 4x4)"), "\(text)")
    }

    // MARK: padding

    @Test func reflectPadNotSmallerThanInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = pad(Tensor.zeros([1, 1, 3, 3]), [3, 0, 0, 0], mode: .reflect)
        }
        #expect(standardErrorText(result).contains(
            "Argument #4: Padding size should be less than the corresponding input dimension, but got: padding (3, 0) at dimension 3 of input [1, 1, 3, 3]"),
                "\(standardErrorText(result))")
    }

    @Test func reflectionPad2dModuleNotSmallerThanInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(ReflectionPad2d([1, 1, 3, 3]))
            model.eval()
            _ = model(Tensor.zeros([1, 1, 3, 5]))
        }
        let text = standardErrorText(result)
        #expect(text.contains("ReflectionPad2d '0'"), "\(text)")
        #expect(text.contains("Padding size should be less than the corresponding input dimension, but got: padding (3, 3) at dimension 2 of input [1, 1, 3, 5]"),
                "\(text)")
    }

    // MARK: resampling

    @Test func interpolateWithSizeAndScaleFactor() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = interpolate(Tensor.zeros([1, 2, 4, 4]), size: [3, 3], scaleFactor: [2])
        }
        #expect(standardErrorText(result).contains("size or scale_factor should be defined"), "\(standardErrorText(result))")
    }

    @Test func alignCornersWithNearest() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Upsample(scaleFactor: [2], alignCorners: true)(Tensor.zeros([1, 2, 4, 4]))
        }
        #expect(standardErrorText(result).contains(
            "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"), "\(standardErrorText(result))")
    }

    @Test func bilinearOn3DInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = interpolate(Tensor.zeros([1, 2, 4]), scaleFactor: [2], mode: .bilinear)
        }
        #expect(standardErrorText(result).contains("Got 3D input, but bilinear mode needs 4D input"), "\(standardErrorText(result))")
    }

    @Test func interpolateToAnEmptyOutput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = interpolate(Tensor.zeros([1, 2, 4, 4]), scaleFactor: [0.1])
        }
        #expect(standardErrorText(result).contains("Input and output sizes should be greater than 0"), "\(standardErrorText(result))")
    }

    @Test func pixelShuffleChannelsNotDivisible() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = PixelShuffle(2)(Tensor.zeros([1, 6, 2, 2]))
        }
        #expect(standardErrorText(result).contains(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of upscale_factor, but input.size(-3)=6 is not divisible by 4"),
                "\(standardErrorText(result))")
    }

    @Test func pixelUnshuffleSizeNotDivisible() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = pixelUnshuffle(Tensor.zeros([1, 1, 3, 4]), downscaleFactor: 2)
        }
        #expect(standardErrorText(result).contains("pixel_unshuffle expects height"), "\(standardErrorText(result))")
    }

    @Test func foldWithTheWrongNumberOfBlocks() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = fold(Tensor.zeros([1, 8, 5]), outputSize: [4, 4], kernelSize: 2)
        }
        #expect(standardErrorText(result).contains(
            "expected size of input's dimension 2 to match the calculated number of sliding blocks 3 * 3 = 9, but got input.size(2)=5"),
                "\(standardErrorText(result))")
    }

    @Test func unfoldKernelLargerThanInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = unfold(Tensor.zeros([1, 1, 2, 2]), kernelSize: 3)
        }
        let text = standardErrorText(result)
        #expect(text.contains("unfold") && (text.contains("Kernel size can't be greater than actual input size") || text.contains("must be at least one")),
                "\(text)")
    }
}
