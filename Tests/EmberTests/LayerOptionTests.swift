import Ember
import Testing
import _EmberTestSupport

/// Layer options whose effect the PyTorch fixtures do not show.
@Suite struct LayerOptionTests {
    /// PyTorch: `LayerNorm(4, bias=False).state_dict()` has only `weight`.
    @Test func layerNormWithoutBiasHasOnlyAWeight() {
        #expect(LayerNorm(4, bias: false).stateDict().keys == ["weight"])
        #expect(LayerNorm(4).stateDict().keys == ["weight", "bias"])
        #expect(LayerNorm(4, elementwiseAffine: false).stateDict().count == 0)
    }

    @Test func recurrentWeightSetsAreTheNamedParametersOfTheirLayerAndDirection() {
        let lstm = LSTM(2, 3, numLayers: 2, bidirectional: true)
        let named = Dictionary(uniqueKeysWithValues: lstm.namedParameters().map { ($0.name, $0.parameter) })
        for layer in 0..<2 {
            for reverse in [false, true] {
                let suffix = "_l\(layer)" + (reverse ? "_reverse" : "")
                let set = lstm.weights(layer: layer, reverse: reverse)
                #expect(set.weightIH === named["weight_ih" + suffix] && set.weightHH === named["weight_hh" + suffix], "\(suffix)")
            }
        }
    }

    /// BatchNorm1d on `[N, C, L]` normalises over N and L, like BatchNorm2d on `[N, C, L, 1]`.
    @Test func batchNorm1dOnThreeDimensionalInputMatchesBatchNorm2d() {
        let x = withGenerator(Generator(seed: 4)) { Tensor.normal([3, 2, 5]) }
        let bn1 = BatchNorm1d(2), bn2 = BatchNorm2d(2)
        expectBitwiseEqual(bn1(x).reshaped([3, 2, 5, 1]), bn2(x.reshaped([3, 2, 5, 1])), "training")
        bn1.eval(); bn2.eval()
        expectBitwiseEqual(bn1(x).reshaped([3, 2, 5, 1]), bn2(x.reshaped([3, 2, 5, 1])), "eval")
    }
}
