import Ember
import Foundation
import Testing
import _EmberTestSupport

/// LPPool1d/LPPool2d against PyTorch (`Tools/fixtures/gen_lppool.py`): forward and input gradient
/// over norm types, strides and ceil_mode; the listing; float64 finite differences.
@Suite struct LPPoolTests {
    struct Config: Decodable, Sendable, CustomTestStringConvertible {
        var name: String
        var dims: Int
        var p: Double
        var k: IntOrList
        var s: IntOrList?
        var ceil: Bool?
        var testDescription: String { name }
    }

    enum IntOrList: Decodable, Sendable {
        case one(Int), many([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Int.self) { self = .one(v) } else { self = .many(try c.decode([Int].self)) }
        }
        var size: SpatialSize {
            switch self {
            case .one(let v): SpatialSize(v)
            case .many(let v): SpatialSize(v)
            }
        }
    }

    nonisolated(unsafe) static let fixture = try! Fixture("lppool")
    static var configs: [Config] {
        // JSON has Infinity for p = inf; Python's json writes it bare, which JSONDecoder reads with this strategy.
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let text = fixture.metadata["configs"]!.replacingOccurrences(of: "Infinity", with: "\"Infinity\"")
        return (try? decoder.decode([Config].self, from: Data(text.utf8))) ?? []
    }

    @Test(arguments: configs)
    func matchesPyTorch(_ c: Config) throws {
        let fx = Self.fixture
        let x = fx["\(c.name)/x"].requiringGrad()
        let module: Module = c.dims == 1
            ? LPPool1d(c.p, c.k.size, stride: c.s?.size, ceilMode: c.ceil ?? false)
            : LPPool2d(c.p, c.k.size, stride: c.s?.size, ceilMode: c.ceil ?? false)
        let y = module(x)
        expectClose(y.detached(), fx["\(c.name)/y"], atol: 1e-12, rtol: 1e-10, "\(c.name) forward")
        (y * fx["\(c.name)/up"]).sum().backward()
        expectClose(try #require(x.grad), fx["\(c.name)/dx"], atol: 1e-10, rtol: 1e-9, "\(c.name) input gradient")
    }

    @Test func listingMatchesPyTorch() throws {
        #expect(Self.configs.count == 7, "every fixture case decodes")
        let expected = try JSONDecoder().decode([String].self, from: Data(Self.fixture.metadata["listing"]!.utf8))
        #expect(LPPool2d(2, 3).description.hasPrefix(expected[0] + "  ["))
        #expect(LPPool1d(1.5, 3, stride: 2, ceilMode: true).description.hasPrefix(expected[1] + "  ["))
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        let x = (Tensor.uniform([1, 2, 5, 5], generator: Generator(seed: 4)) + 0.2).to(.float64)
        try Autograd.gradcheck([x.requiringGrad()]) { lpPool2d($0[0], normType: 2.5, kernelSize: 2, stride: 1) }
    }
}
