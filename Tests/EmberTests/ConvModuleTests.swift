import Ember
import Foundation
import Testing
import _EmberTestSupport

/// The convolution and pooling modules: state-dict keys and weight shapes, PyTorch's init bounds,
/// the fixtures' outputs through modules, and a tiny CNN trained in PyTorch evaluated in Ember.
@Suite struct ConvModuleTests {
    let conv = try! Fixture("conv")
    let pool = try! Fixture("pool")

    /// A module for a conv fixture case, and how to call it (conv_transpose with its `output_size`).
    static func module(for c: ConvCase) -> (Module, (Tensor) -> Tensor) {
        let k = SpatialSize(c.kernelSize), s = SpatialSize(c.stride), d = SpatialSize(c.dilation)
        switch c.op {
        case "conv1d":
            let m = Conv1d(c.inChannels, c.outChannels, k, stride: s, padding: c.padding.convPadding, dilation: d, groups: c.groups,
                           bias: c.bias, paddingMode: c.mode)
            return (m, { m($0) })
        case "conv2d":
            let m = Conv2d(c.inChannels, c.outChannels, k, stride: s, padding: c.padding.convPadding, dilation: d, groups: c.groups,
                           bias: c.bias, paddingMode: c.mode)
            return (m, { m($0) })
        case "conv3d":
            let m = Conv3d(c.inChannels, c.outChannels, k, stride: s, padding: c.padding.convPadding, dilation: d, groups: c.groups,
                           bias: c.bias, paddingMode: c.mode)
            return (m, { m($0) })
        case "conv_transpose1d":
            let m = ConvTranspose1d(c.inChannels, c.outChannels, k, stride: s, padding: SpatialSize(c.padding.sizes),
                                    outputPadding: SpatialSize(c.outputPadding!), groups: c.groups, bias: c.bias, dilation: d)
            return (m, { x in c.outputSize.map { m.forward(x, outputSize: $0) } ?? m(x) })
        case "conv_transpose2d":
            let m = ConvTranspose2d(c.inChannels, c.outChannels, k, stride: s, padding: SpatialSize(c.padding.sizes),
                                    outputPadding: SpatialSize(c.outputPadding!), groups: c.groups, bias: c.bias, dilation: d)
            return (m, { x in c.outputSize.map { m.forward(x, outputSize: $0) } ?? m(x) })
        case "conv_transpose3d":
            let m = ConvTranspose3d(c.inChannels, c.outChannels, k, stride: s, padding: SpatialSize(c.padding.sizes),
                                    outputPadding: SpatialSize(c.outputPadding!), groups: c.groups, bias: c.bias, dilation: d)
            return (m, { x in c.outputSize.map { m.forward(x, outputSize: $0) } ?? m(x) })
        default: preconditionFailure("unknown op \(c.op)")
        }
    }

    static func parameters(_ m: Module) -> [String: Parameter] {
        Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.name, $0.parameter) })
    }

    @Test func stateDictKeysAndWeightShapes() {
        // (module, weight shape, bias size or nil)
        let cases: [(Module, Shape, Int?)] = [
            (Conv1d(4, 6, 3, groups: 2), [6, 2, 3], 6),
            (Conv2d(3, 6, [2, 3], bias: false), [6, 3, 2, 3], nil),
            (Conv3d(2, 4, [1, 2, 3]), [4, 2, 1, 2, 3], 4),
            (ConvTranspose1d(3, 2, 4), [3, 2, 4], 2),
            (ConvTranspose2d(4, 6, 3, groups: 2), [4, 3, 3, 3], 6),
            (ConvTranspose3d(2, 4, 2, groups: 2, bias: false), [2, 2, 2, 2, 2], nil),
        ]
        for (m, shape, biasSize) in cases {
            let sd = m.stateDict()
            #expect(sd.keys == (biasSize != nil ? ["weight", "bias"] : ["weight"]), "\(type(of: m))")
            #expect(sd["weight"]?.shape == shape, "\(type(of: m)) weight shape")
            if let biasSize { #expect(sd["bias"]?.shape == [biasSize], "\(type(of: m)) bias shape") }
        }
        for m in [MaxPool1d(2), MaxPool2d(2), MaxPool3d(2), AvgPool1d(2), AvgPool2d(2), AvgPool3d(2), AdaptiveAvgPool2d(1),
                  AdaptiveMaxPool1d(3), MaxUnpool2d(2)] as [Module] {
            #expect(m.stateDict().keys.isEmpty, "\(type(of: m))")
        }
    }

    /// PyTorch's `kaiming_uniform_(a=sqrt(5))` and bias init: both `U(-1/sqrt(fanIn), 1/sqrt(fanIn))`
    /// with PyTorch's fan-in `weight.size(1) * prod(kernel)`: `in/groups * prod(k)` for Conv,
    /// `out/groups * prod(k)` for ConvTranspose (whose weight is `[in, out/groups, k...]`).
    @Test func initBoundsArePyTorchs() {
        withGenerator(Generator(seed: 7)) {
            let cases: [(Module, fanIn: Int)] = [
                (Conv2d(32, 64, 3, groups: 2), 16 * 9),
                (ConvTranspose2d(64, 4, 3), 4 * 9),
                (ConvTranspose1d(16, 6, 5, groups: 2), 3 * 5),
                (Conv3d(4, 8, [1, 2, 3]), 4 * 6),
                (Conv1d(8, 16, 5), 8 * 5),
            ]
            for (m, fanIn) in cases {
                let bound = 1 / Double(fanIn).squareRoot()
                let p = Self.parameters(m)
                let w = p["weight"]!.value.doubles, b = p["bias"]!.value.doubles
                #expect(w.allSatisfy { abs($0) <= bound }, "\(type(of: m)) weight within \(bound); max \(w.map(abs).max()!)")
                #expect(b.allSatisfy { abs($0) <= bound }, "\(type(of: m)) bias within \(bound)")
                // Hundreds or thousands of uniform draws reach close to the bound (fails only if the bound is wrong).
                #expect(w.map(abs).max()! > 0.95 * bound, "\(type(of: m)) weight max \(w.map(abs).max()!) vs bound \(bound)")
                #expect(w.min()! < -0.9 * bound && w.max()! > 0.9 * bound)
            }
        }
    }

    /// Every conv fixture case through its module: weights assigned from the fixture, outputs and
    /// parameter gradients as PyTorch's.
    @Test(arguments: ConvCase.all)
    func moduleMatchesFixture(_ c: ConvCase) throws {
        let (atol, rtol) = c.tolerance
        let (m, run) = Self.module(for: c)
        let p = Self.parameters(m)
        #expect(Set(p.keys) == (c.bias ? ["weight", "bias"] : ["weight"]), "\(c.name): parameters \(p.keys.sorted())")
        try #require(p["weight"]?.shape == conv["\(c.name)/weight"].shape, "\(c.name): weight shape \(String(describing: p["weight"]?.shape))")
        p["weight"]!.value = conv["\(c.name)/weight"]
        if c.bias { p["bias"]!.value = conv["\(c.name)/bias"] }
        let y = run(conv["\(c.name)/x"])
        expectClose(y, conv["\(c.name)/y"], atol: atol, rtol: rtol, "\(c.name) module output")
        guard y.shape == conv["\(c.name)/y"].shape else { return }
        (y * conv["\(c.name)/up"]).sum().backward()
        expectClose(try #require(p["weight"]!.grad), conv["\(c.name)/dweight"], atol: atol, rtol: rtol, "\(c.name) weight gradient")
        if c.bias { expectClose(try #require(p["bias"]!.grad), conv["\(c.name)/dbias"], atol: atol, rtol: rtol, "\(c.name) bias gradient") }
    }

    /// A float32 case loaded through a strict state dict.
    @Test func loadsFixtureWeightsThroughStateDict() throws {
        let c = try #require(ConvCase.all.first { $0.name == "c2_f32" })
        let (m, run) = Self.module(for: c)
        try m.loadStateDict(["weight": conv["c2_f32/weight"], "bias": conv["c2_f32/bias"]])
        expectClose(run(conv["c2_f32/x"]), conv["c2_f32/y"], atol: 2e-5, rtol: 1e-5)
    }

    /// Pooling fixture cases through the pooling modules.
    @Test(arguments: PoolCase.pools.filter { !$0.op.hasPrefix("max_unpool") })
    func poolModuleMatchesFixture(_ c: PoolCase) throws {
        let ceil = c.ceilMode ?? false, incl = c.countIncludePad ?? true
        let m: Module
        switch c.op {
        case "max_pool1d": m = MaxPool1d(c.k, stride: c.s, padding: c.p, dilation: c.dil, ceilMode: ceil)
        case "max_pool2d": m = MaxPool2d(c.k, stride: c.s, padding: c.p, dilation: c.dil, ceilMode: ceil)
        case "max_pool3d": m = MaxPool3d(c.k, stride: c.s, padding: c.p, dilation: c.dil, ceilMode: ceil)
        case "avg_pool1d": m = AvgPool1d(c.k, stride: c.s, padding: c.p, ceilMode: ceil, countIncludePad: incl)
        case "avg_pool2d": m = AvgPool2d(c.k, stride: c.s, padding: c.p, ceilMode: ceil, countIncludePad: incl, divisorOverride: c.divisorOverride)
        case "avg_pool3d": m = AvgPool3d(c.k, stride: c.s, padding: c.p, ceilMode: ceil, countIncludePad: incl, divisorOverride: c.divisorOverride)
        case "adaptive_avg_pool1d": m = AdaptiveAvgPool1d(c.outputSize![0])
        case "adaptive_avg_pool2d": m = AdaptiveAvgPool2d(c.adaptiveSize)
        case "adaptive_max_pool1d": m = AdaptiveMaxPool1d(c.outputSize![0])
        case "adaptive_max_pool2d": m = AdaptiveMaxPool2d(c.adaptiveSize)
        default: preconditionFailure("unknown op \(c.op)")
        }
        let x = pool["\(c.name)/x"].requiringGrad()
        let y = m(x)
        expectClose(y, pool["\(c.name)/y"], atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(c.name) module output")
        // Max pools' indices (max_pool3d's too, which has no functional indices form).
        let withIndices: ((Tensor) -> (output: Tensor, indices: Tensor))? =
            (m as? MaxPoolBase).map { mp in { mp.forwardWithIndices($0) } }
            ?? (c.op.hasPrefix("adaptive_max") ? (m as? AdaptivePoolBase).map { ap in { ap.forwardWithIndices($0) } } : nil)
        if let withIndices {
            let (out, idx) = withNoGrad { withIndices(pool["\(c.name)/x"]) }
            expectClose(out, pool["\(c.name)/y"], atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(c.name) module output with indices")
            expectBitwiseEqual(idx, pool["\(c.name)/indices"], "\(c.name) module indices")
        }
        guard c.hasGradients, y.shape == pool["\(c.name)/y"].shape else { return }
        (y * pool["\(c.name)/up"]).sum().backward()
        expectClose(try #require(x.grad), pool["\(c.name)/dx"], atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(c.name) module input gradient")
    }

    @Test(arguments: PoolCase.pools.filter { $0.op == "max_unpool2d" })
    func maxUnpoolModuleMatchesFixture(_ c: PoolCase) {
        let m = MaxUnpool2d(c.k, stride: c.s, padding: c.p)
        let y = m(pool["\(c.name)/x"], indices: pool["\(c.name)/indices"], outputSize: c.outputSize)
        expectClose(y, pool["\(c.name)/y"], atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(c.name) module output")
        #expect(m.stateDict().keys.isEmpty)
    }

    /// The padding modules on the `pad` cases whose pad list and rank fit one of them.
    @Test(arguments: PoolCase.pads)
    func paddingModuleMatchesFixture(_ c: PoolCase) throws {
        let x = pool["\(c.name)/x"], d = c.pad!.count / 2
        guard x.rank == d + 1 || x.rank == d + 2 else { return }
        let pads = c.pad!, value = c.value ?? 0
        let m: Module?
        switch (c.mode ?? "constant", d) {
        case ("constant", 1): m = value == 0 ? ZeroPad1d(pads) : ConstantPad1d(pads, value)
        case ("constant", 2): m = value == 0 ? ZeroPad2d(pads) : ConstantPad2d(pads, value)
        case ("constant", 3): m = ConstantPad3d(pads, value)
        case ("reflect", 1): m = ReflectionPad1d(pads)
        case ("reflect", 2): m = ReflectionPad2d(pads)
        case ("reflect", 3): m = ReflectionPad3d(pads)
        case ("replicate", 1): m = ReplicationPad1d(pads)
        case ("replicate", 2): m = ReplicationPad2d(pads)
        case ("replicate", 3): m = ReplicationPad3d(pads)
        case ("circular", 1): m = CircularPad1d(pads)
        case ("circular", 2): m = CircularPad2d(pads)
        default: m = nil  // no CircularPad3d in Ember
        }
        guard let m else { return }
        let xg = x.requiringGrad()
        let y = m(xg)
        expectClose(y, pool["\(c.name)/y"], atol: 0, rtol: 0, "\(c.name) \(type(of: m)) output")
        guard y.shape == pool["\(c.name)/y"].shape else { return }
        (y * pool["\(c.name)/up"]).sum().backward()
        expectClose(try #require(xg.grad), pool["\(c.name)/dx"], atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(c.name) \(type(of: m)) input gradient")
    }

    // MARK: a PyTorch CNN

    static let cnnStatePath = Fixture.directory.appendingPathComponent("cnn_state.safetensors").path

    static func cnn() -> Sequential {
        Sequential(Conv2d(1, 4, 3, padding: 1), BatchNorm2d(4), ReLU(), Dropout2d(0.25), MaxPool2d(2),
                   Conv2d(4, 8, 3), BatchNorm2d(8), ReLU(), AdaptiveAvgPool2d([1, 1]), Flatten(), Linear(8, 10))
    }

    @Test func cnnStateDictKeysArePyTorchs() throws {
        let fx = try Fixture("cnn_eval")
        let torchKeys = try JSONDecoder().decode([String].self, from: Data(fx.metadata["state_keys"]!.utf8))
        #expect(Self.cnn().stateDict().keys == torchKeys)
        #expect(Set(try StateDict(safetensorsAt: Self.cnnStatePath).keys) == Set(torchKeys))
    }

    /// The PyTorch CNN after 3 training steps, loaded strictly, in eval mode: PyTorch's outputs.
    @Test func trainedPyTorchCNNGivesPyTorchsEvalOutputs() throws {
        let fx = try Fixture("cnn_eval")
        let model = Self.cnn()
        try model.loadSafetensors(Self.cnnStatePath)
        model.eval()
        let out = withNoGrad { model(fx["x"]) }
        #expect(out.shape == [5, 10])
        expectClose(out, fx["eval"], atol: 1e-5, rtol: 1e-5, "CNN eval output")
        // Batch independence in eval mode.
        let first = withNoGrad { model(fx["x"].narrow(axis: 0, start: 0, length: 1)) }
        expectClose(first, out.narrow(axis: 0, start: 0, length: 1), atol: 1e-6, rtol: 1e-6, "first sample alone")
    }
}
