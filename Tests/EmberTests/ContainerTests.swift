import Ember
import Testing
import _EmberTestSupport

@Suite struct ContainerTests {
    @Test func sequentialNamesChildrenByIndexLikePyTorch() {
        let model = withGenerator(Generator(seed: 0)) {
            Sequential(Linear(4, 3), ReLU(), BatchNorm1d(3), Dropout(0.2), Linear(3, 2))
        }
        #expect(model.namedChildren().map(\.name) == ["0", "1", "2", "3", "4"])
        #expect(model.stateDict().keys == ["0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var",
                                            "2.num_batches_tracked", "4.weight", "4.bias"])
        let x = Tensor.normal([5, 4])
        model.eval()
        let manual = (model[4] as! Linear)((model[2] as! BatchNorm1d)((model[0] as! Linear)(x).relu()))
        expectBitwiseEqual(model(x), manual)
        #expect(model.description.hasPrefix("Sequential(  [eval]\n  (0): Linear(in_features=4, out_features=3, bias=True)  [eval]"))
    }

    @Test func nestedSequentialKeys() {
        final class Net: Module {
            let features = Sequential(Linear(2, 2), Tanh())
            let head = Linear(2, 1)
        }
        #expect(Net().stateDict().keys == ["features.0.weight", "features.0.bias", "head.weight", "head.bias"])
    }

    @Test func flattenAndUnflattenShapes() {
        let x = Tensor.zeros([2, 3, 4, 5])
        #expect(Flatten()(x).shape == [2, 60])
        #expect(Flatten(startAxis: 0, endAxis: 1)(x).shape == [6, 4, 5])
        #expect(Unflatten(1, [3, 20])(Tensor.zeros([2, 60])).shape == [2, 3, 20])
        #expect(Unflatten(-1, [-1, 5])(Tensor.zeros([2, 60])).shape == [2, 12, 5])
        #expect(Identity()(x).shape == x.shape)
    }

    @Test func activationModulesMatchTheirFunctions() {
        let x = Tensor([-2, -0.5, 0, 0.5, 2] as [Float])
        expectBitwiseEqual(ReLU()(x), x.relu())
        expectBitwiseEqual(LeakyReLU(0.2)(x), x.leakyRelu(negativeSlope: 0.2))
        expectBitwiseEqual(GELU(approximate: .tanh)(x), x.gelu(approximate: .tanh))
        expectBitwiseEqual(SiLU()(x), x.silu())
        expectBitwiseEqual(ELU(0.5)(x), x.elu(alpha: 0.5))
        expectBitwiseEqual(Tanh()(x), x.tanh())
        expectBitwiseEqual(Sigmoid()(x), x.sigmoid())
        let m = Tensor.normal([3, 4])
        expectBitwiseEqual(Softmax(axis: 1)(m), m.softmax(axis: 1))
        expectBitwiseEqual(LogSoftmax(axis: -1)(m), m.logSoftmax(axis: -1))
        #expect(ReLU().stateDict().count == 0)
    }
}
