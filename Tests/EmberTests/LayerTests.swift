import Ember
import Testing
import _EmberTestSupport

@Suite struct LayerTests {
    let fx = try! Fixture("layers")

    @Test(arguments: ["linear2d", "linear3d", "linear_nobias"])
    func linearMatchesPyTorch(_ name: String) throws {
        let hasBias = fx.tensors["\(name)/bias"] != nil
        let layer = Linear(5, 3, bias: hasBias)
        layer.weight.value = fx["\(name)/weight"]
        if hasBias { layer.bias!.value = fx["\(name)/bias"] }
        let x = fx["\(name)/x"].requiringGrad()
        let y = layer(x)
        expectClose(y, fx["\(name)/y"], atol: 1e-5, rtol: 1e-5)
        (y * fx["\(name)/up"]).sum().backward()
        expectClose(try #require(x.grad), fx["\(name)/dx"], atol: 1e-5, rtol: 1e-5)
        expectClose(try #require(layer.weight.grad), fx["\(name)/dweight"], atol: 1e-5, rtol: 1e-5)
        if hasBias { expectClose(try #require(layer.bias!.grad), fx["\(name)/dbias"], atol: 1e-5, rtol: 1e-5) }
        #expect(layer.stateDict().keys == (hasBias ? ["weight", "bias"] : ["weight"]))
    }

    @Test func linearGradientsMatchFiniteDifferences() {
        let x = Tensor((0..<12).map { Double($0) * 0.1 - 0.5 }, shape: [2, 2, 3])
        let w = Tensor((0..<6).map { Double($0) * 0.3 - 1 }, shape: [2, 3])
        let b = Tensor([0.5, -0.25] as [Double])
        #expect(checkGradients([x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) } == nil)
        #expect(checkGradients([x, w]) { linear($0[0], weight: $0[1], bias: nil) } == nil)
    }

    @Test func linearInitBoundsArePyTorchs() {
        withGenerator(Generator(seed: 1)) {
            let layer = Linear(50, 7)
            let bound = fx["init/linear_bound_50"].doubleValue
            let w = layer.weight.value.doubles, b = layer.bias!.value.doubles
            #expect(w.allSatisfy { abs($0) <= bound } && b.allSatisfy { abs($0) <= bound })
            // 350 uniform draws on [-b, b] span most of the interval (fails only if the bound is wrong).
            #expect(w.max()! > 0.9 * bound && w.min()! < -0.9 * bound)
            #expect(layer.extraDescription == "in_features=50, out_features=7, bias=True")
        }
    }

    @Test func seededConstructionIsReproducible() {
        let a = withGenerator(Generator(seed: 42)) { Linear(4, 3) }
        let b = withGenerator(Generator(seed: 42)) { Linear(4, 3) }
        let c = withGenerator(Generator(seed: 43)) { Linear(4, 3) }
        expectBitwiseEqual(a.weight.value, b.weight.value)
        #expect(a.weight.value.doubles != c.weight.value.doubles)
    }

    @Test func embeddingMatchesPyTorchWithPaddingAndRepeats() throws {
        let emb = Embedding(10, 4, paddingIdx: 2)
        emb.weight.value = fx["embedding/weight"]
        let y = emb(fx["embedding/indices"])
        expectClose(y, fx["embedding/y"], atol: 0, rtol: 0)
        (y * fx["embedding/up"]).sum().backward()
        expectClose(try #require(emb.weight.grad), fx["embedding/dweight"], atol: 1e-6, rtol: 1e-6)
        #expect(emb.extraDescription == "10, 4, padding_idx=2")
    }

    @Test func embeddingPaddingRowStartsAtZero() {
        let emb = Embedding(5, 3, paddingIdx: -1)
        #expect(emb.paddingIdx == 4)
        #expect(emb.weight.value.doubles.suffix(3).allSatisfy { $0 == 0 })
    }

    @Test func gainsAndFansArePyTorchs() {
        let gains: [Nonlinearity] = [.linear, .conv2d, .sigmoid, .tanh, .relu, .selu, .leakyRelu(negativeSlope: 0.2), .leakyRelu()]
        expectClose(Tensor(gains.map(\.gain)), fx["init/gains"], atol: 1e-12, rtol: 1e-12)
        let fans = [Shape([20, 10]), [8, 3, 5, 5], [4, 6, 7]].flatMap { s -> [Int] in let f = Init.fans(s); return [f.fanIn, f.fanOut] }
        #expect(fans.map(Int64.init) == fx["init/fans"].scalars(as: Int64.self))
    }

    @Test func initializersFollowTheirFormulas() {
        withGenerator(Generator(seed: 5)) {
            let p = Parameter(Tensor.zeros([200, 100]))
            Init.xavierUniform(p, gain: 2)
            let xb = 2 * (6.0 / 300).squareRoot()
            #expect(p.value.doubles.allSatisfy { abs($0) <= xb } && p.value.doubles.max()! > 0.95 * xb)
            Init.kaimingUniform(p, nonlinearity: .relu)
            let kb = 2.0.squareRoot() * (3.0 / 100).squareRoot()
            #expect(p.value.doubles.allSatisfy { abs($0) <= kb } && p.value.doubles.max()! > 0.95 * kb)
            Init.kaimingNormal(p, mode: .fanOut, nonlinearity: .relu)
            let std = (p.value.doubles.map { $0 * $0 }.reduce(0, +) / 20000).squareRoot()
            let expected = 2.0.squareRoot() / 200.0.squareRoot()
            // 20,000 draws: the sample std is within 3% of the true one with overwhelming probability.
            #expect(abs(std - expected) < 0.03 * expected)
            Init.xavierNormal(p)
            let std2 = (p.value.doubles.map { $0 * $0 }.reduce(0, +) / 20000).squareRoot()
            #expect(abs(std2 - (2.0 / 300).squareRoot()) < 0.03 * (2.0 / 300).squareRoot())
            Init.constant(p, 0.25)
            #expect(p.value.doubles.allSatisfy { $0 == 0.25 })
        }
    }
}
