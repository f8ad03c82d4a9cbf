import Ember
import Foundation
import SeedNetwork
import Testing
import _EmberTestSupport

@Suite struct SeedNetworkTests {
    let fx = try! Fixture("seed_network")
    static let statePath = Fixture.directory.appendingPathComponent("seed_network_state.safetensors").path

    @Test func stateDictKeysArePyTorchs() throws {
        // safetensors stores tensors sorted by its own rule, so compare the key sets, then the order
        // Ember produces against PyTorch's state_dict() order.
        let keys = try StateDict(safetensorsAt: Self.statePath).keys
        #expect(Set(SeedNetwork().stateDict().keys) == Set(keys))
        #expect(SeedNetwork().stateDict().keys == ["fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                         "bn1.num_batches_tracked", "fc2.weight", "fc2.bias"])
    }

    @Test func pyTorchWeightsGivePyTorchsEvalOutputs() throws {
        let model = SeedNetwork()
        try model.loadSafetensors(Self.statePath)
        #expect(model.isTraining, "loading does not change the mode")
        #expect(model.bn1.numBatchesTracked!.value.item(as: Int64.self) == 1)
        let out = model.evaluating { withNoGrad { model(fx["random/x"]) } }
        expectClose(out, fx["random/eval"], atol: 1e-6, rtol: 1e-5)
    }

    /// The reference case of the semantics spec (10.3): formula weights, one training pass.
    @Test(arguments: ["f64", "f32"])
    func specReferenceCase(_ tag: String) {
        let dtype: DType = tag == "f64" ? .float64 : .float32
        let model = SeedNetwork()
        func fill(_ p: Parameter, _ shape: Shape, _ f: (Int, Int) -> Double) {
            let cols = shape.count == 2 ? shape[1] : 1
            p.value = Tensor((0..<shape.elementCount).map { f($0 / cols, $0 % cols) }, shape: shape).to(dtype)
        }
        fill(model.fc1.weight, [20, 10]) { i, j in Double((10 * i + j) % 7 - 3) / 10 }
        fill(model.fc1.bias!, [20]) { i, _ in Double(i % 5 - 2) / 10 }
        fill(model.fc2.weight, [2, 20]) { i, j in Double((7 * i + j) % 5 - 2) / 10 }
        fill(model.fc2.bias!, [2]) { i, _ in 0.05 * Double(i + 1) }
        for p in [model.bn1.weight!, model.bn1.bias!] { p.value = p.value.to(dtype) }
        for b in [model.bn1.runningMean!, model.bn1.runningVar!] { b.value = b.value.to(dtype) }
        let x = fx["spec/\(tag)/x"]
        _ = withNoGrad { model(x) }
        let (atol, rtol) = dtype == .float64 ? (1e-12, 1e-10) : (1e-6, 1e-5)
        expectClose(model.bn1.runningMean!.value, fx["spec/\(tag)/running_mean"], atol: atol, rtol: rtol)
        expectClose(model.bn1.runningVar!.value, fx["spec/\(tag)/running_var"], atol: atol, rtol: rtol)
        model.eval()
        expectClose(withNoGrad { model(x) }, fx["spec/\(tag)/eval"], atol: atol, rtol: rtol)
    }

    @Test func thousandEvalPassesAreBitwiseIdentical() throws {
        let model = withGenerator(Generator(seed: 3)) { SeedNetwork() }
        try model.loadSafetensors(Self.statePath)
        model.eval()
        let x = fx["random/x"]
        let first = model(x)
        for _ in 0..<1000 { expectBitwiseEqual(model(x), first) }
    }

    @Test func batchIndependenceInEvalButNotInTraining() throws {
        let model = SeedNetwork()
        try model.loadSafetensors(Self.statePath)
        let x = fx["random/x"]
        model.eval()
        let batch = withNoGrad { model(x) }
        for i in 0..<32 {
            let alone = withNoGrad { model(x.narrow(axis: 0, start: i, length: 1)) }
            expectBitwiseEqual(alone, batch.narrow(axis: 0, start: i, length: 1), "row \(i)")
        }
        // Training mode: BatchNorm mixes samples, so the same row gives different outputs in
        // different batches, even with dropout off.
        model.train()
        model.dropout.eval()
        let full = withNoGrad { model(x) }.narrow(axis: 0, start: 0, length: 1)
        let half = withNoGrad { model(x.narrow(axis: 0, start: 0, length: 16)) }.narrow(axis: 0, start: 0, length: 1)
        #expect(compare(full, half, atol: 1e-4, rtol: 0) != nil, "in training mode a row's output depends on its batch")
    }

    @Test func savedFileRoundTripsAndFailsCleanly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-seed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = SeedNetwork(), b = SeedNetwork()
        _ = withNoGrad { a(Tensor.normal([8, 10])) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try a.saveSafetensors(path)
        try b.loadSafetensors(path)
        for ((k1, v1), (k2, v2)) in zip(a.stateDict(), b.stateDict()) {
            #expect(k1 == k2)
            expectBitwiseEqual(v1, v2, k1)
        }
        let wrong = SeedNetwork(hidden: 16)
        #expect {
            try wrong.loadSafetensors(path)
        } throws: { error in
            "\(error)".contains("size mismatch for fc1.weight")
        }
        #expect(throws: WeightsLoadingError.self) { try b.loadSafetensors(dir.appendingPathComponent("missing").path) }
    }
}
