import Ember
import Foundation
import Testing
import _EmberTestSupport

/// ModuleList, ModuleDict and prefixed loading against PyTorch's own state dicts
/// (`Tools/fixtures/gen_containers.py`): the same keys in the same order, and the same eval outputs.
@Suite struct ContainerStateDictTests {
    let fx = try! Fixture("containers")

    static func pytorchState(_ name: String) throws -> (StateDict, [String]) {
        let path = Fixture.directory.appendingPathComponent("\(name).safetensors").path
        let contents = try Safetensors.read(contentsOf: path)
        let order = contents.metadata["keys"]!.split(separator: ",").map(String.init)
        return (StateDict(order.map { ($0, contents.tensors[$0]!) }), order)
    }

    static func close(_ a: Tensor, _ b: Tensor) -> Bool {
        a.shape == b.shape && zip(a.doubles, b.doubles).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }
    }

    @Test func aModuleListModelHasPyTorchsKeysAndLoadsItsWeights() throws {
        let (state, order) = try Self.pytorchState("containers_module_list")
        let layers = ModuleList(Linear(3, 2), BatchNorm1d(2))
        #expect(layers.stateDict().keys == order)
        try layers.loadStateDict(state)
        layers.eval()
        let y = layers[1](layers[0](fx["x"]))
        #expect(Self.close(y, fx["module_list_y"]))
        #expect(layers.count == 2 && layers.map(\.typeName) == ["Linear", "BatchNorm1d"])
    }

    @Test func aModuleDictKeepsInsertionOrderAndKeysAsGiven() throws {
        let (state, order) = try Self.pytorchState("containers_module_dict")
        let heads = ModuleDict([("head", Linear(3, 2)), ("encoder", Linear(3, 4))])
        #expect(order == ["head.weight", "head.bias", "encoder.weight", "encoder.bias"])
        #expect(heads.stateDict().keys == order)
        #expect(heads.namedModules().map(\.path) == ["", "head", "encoder"])
        try heads.loadStateDict(state)
        #expect(Self.close(heads["head"]!(fx["x"]), fx["module_dict_head_y"]))
        #expect(Self.close(heads["encoder"]!(fx["x"]), fx["module_dict_encoder_y"]))
    }

    @Test func moduleDictEditingKeepsOrderAndModes() {
        let d = ModuleDict([("b", Dropout(0.5)), ("a", Linear(2, 2))])
        d["camelCase"] = Linear(2, 1)
        #expect(d.keys == ["b", "a", "camelCase"])
        #expect(d.stateDict().keys == ["a.weight", "a.bias", "camelCase.weight", "camelCase.bias"])
        d["b"] = BatchNorm1d(2)  // replacing keeps the position
        #expect(d.keys == ["b", "a", "camelCase"])
        d.eval()
        #expect(d.values.allSatisfy { !$0.isTraining })
        #expect(d.removeValue(forKey: "a") is Linear)
        #expect(d.keys == ["b", "camelCase"] && d.count == 2 && d["a"] == nil)
        d.train()
        #expect(d.modules().allSatisfy { $0.isTraining })
    }

    @Test func moduleListEditing() {
        let list = ModuleList()
        list.append(Linear(2, 2))
        list.append(contentsOf: [ReLU(), Linear(2, 3)])
        list.insert(Dropout(0.1), at: 1)
        #expect(list.map(\.typeName) == ["Linear", "Dropout", "ReLU", "Linear"])
        #expect(list.stateDict().keys == ["0.weight", "0.bias", "3.weight", "3.bias"])
        list[3] = Linear(2, 4)
        #expect(list.stateDict()["3.weight"]!.shape == [4, 2])
        list.eval()
        #expect(list.modules().allSatisfy { !$0.isTraining })
    }

    @Test func partsOfALargerStateDictLoadWithAPrefix() throws {
        let (state, _) = try Self.pytorchState("containers_parent")
        let encoder = Sequential(Linear(3, 4), ReLU(), BatchNorm1d(4)), head = Linear(4, 2)
        try encoder.loadStateDict(state, prefix: "encoder")
        try head.loadStateDict(state, prefix: "head.")
        encoder.eval()
        let z = encoder(fx["x"])
        #expect(Self.close(z, fx["parent_encoder_y"]))
        #expect(Self.close(head(z), fx["parent_y"]))
        // Strict still applies inside the prefix: a missing key under it is an error...
        var partial = state.entries(under: "encoder")
        partial["0.bias"] = nil
        #expect(throws: StateDictError.self) { try Sequential(Linear(3, 4), ReLU(), BatchNorm1d(4)).loadStateDict(partial) }
        // ...and keys under the prefix that the module lacks are unexpected.
        #expect(throws: StateDictError.self) { try Linear(4, 2).loadStateDict(state, prefix: "encoder") }
        // A prefix that selects nothing leaves every key missing.
        #expect(throws: StateDictError.self) { try head.loadStateDict(state, prefix: "decoder") }
    }

    @Test func entriesUnderAPrefixMatchWholeSegmentsOnly() {
        let sd: StateDict = ["enc.w": .ones([1]), "encoder.w": .zeros([1]), "enc": .ones([2]), "enc.": .ones([3])]
        #expect(sd.entries(under: "enc").keys == ["w"])
        #expect(sd.entries(under: "enc.").keys == ["w"])
        #expect(sd.entries(under: "encoder").keys == ["w"])
        #expect(sd.entries(under: "x").count == 0)
    }

    @Test func modulesInsideAModuleListReachedThroughAField() {
        final class Net: Module {
            let blocks = ModuleList(Linear(2, 2), Dropout(0.5))
            let heads = ModuleDict([("z", Linear(2, 1)), ("y", Linear(2, 1))])
        }
        let net = Net()
        #expect(net.stateDict().keys == ["blocks.0.weight", "blocks.0.bias", "heads.z.weight", "heads.z.bias", "heads.y.weight", "heads.y.bias"])
        net.eval()
        #expect(net.modules().allSatisfy { !$0.isTraining })
    }
}
