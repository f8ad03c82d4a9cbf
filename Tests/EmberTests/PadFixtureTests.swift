import Ember
import Foundation
import Testing
import _EmberTestSupport

/// `pad` (PyTorch's `F.pad`) against PyTorch in every mode on 3-D, 4-D and 5-D inputs, with 2-,
/// 4- and 6-element pad lists and negative (cropping) constant padding: the `pad` cases of
/// `pool.safetensors`.
@Suite struct PadFixtureTests {
    let fx = try! Fixture("pool")

    static func run(_ x: Tensor, _ c: PoolCase) -> Tensor {
        pad(x, c.pad!, mode: PadMode(rawValue: c.mode ?? "constant")!, value: c.value ?? 0)
    }

    @Test func fixtureCoversTheGrid() {
        let cases = PoolCase.pads
        for mode in ["constant", "reflect", "replicate", "circular"] {
            let ranks = Set(cases.filter { $0.mode == mode }.map { fx["\($0.name)/x"].rank })
            #expect(ranks.isSuperset(of: [3, 4, 5]), "\(mode): ranks \(ranks)")
        }
        #expect(Set(cases.map { $0.pad!.count }) == [2, 4, 6])
        #expect(cases.contains { $0.mode == "constant" && $0.value == 2.5 && $0.pad!.contains { $0 < 0 } })
        #expect(cases.contains { $0.dtype == "float32" })
    }

    @Test(arguments: PoolCase.pads)
    func matchesPyTorch(_ c: PoolCase) throws {
        let (atol, rtol) = c.tolerance
        let x = fx["\(c.name)/x"].requiringGrad()
        let expected = fx["\(c.name)/y"]
        let y = Self.run(x, c)
        #expect(y.dtype == expected.dtype, "\(c.name): dtype \(y.dtype)")
        // Padding copies values: exact.
        expectClose(y, expected, atol: 0, rtol: 0, "\(c.name) output")
        guard y.shape == expected.shape else { return }
        (y * fx["\(c.name)/up"]).sum().backward()
        expectClose(try #require(x.grad, "\(c.name): no input gradient"), fx["\(c.name)/dx"], atol: atol, rtol: rtol, "\(c.name) input gradient")
    }

    @Test func padGradientsMatchFiniteDifferences() {
        let x3 = Tensor((0..<30).map { sin(Double($0)) }, shape: [2, 3, 5])
        let x4 = Tensor((0..<40).map { cos(Double($0)) }, shape: [1, 2, 4, 5])
        let x5 = Tensor((0..<36).map { sin(Double($0) * 0.7) }, shape: [1, 2, 2, 3, 3])
        for mode in [PadMode.reflect, .replicate, .circular] {
            #expect(checkGradients([x3]) { pad($0[0], [2, 3], mode: mode) } == nil, "\(mode) 1-d")
            #expect(checkGradients([x4]) { pad($0[0], [1, 2, 3, 1], mode: mode) } == nil, "\(mode) 2-d")
            #expect(checkGradients([x5]) { pad($0[0], [1, 2, 2, 1, 0, 1], mode: mode) } == nil, "\(mode) 3-d")
        }
        #expect(checkGradients([x4]) { pad($0[0], [-1, 2, 1, -2], value: 2.5) } == nil)
        #expect(checkGradients([x5]) { pad($0[0], [1, 0, -1, 1, 2, 0]) } == nil)
    }
}
