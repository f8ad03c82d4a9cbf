import Ember
import Foundation
import Testing
import _EmberTestSupport

struct InstanceNormConfig: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var dims: Int
    var shape: [Int]
    var affine: Bool?
    var track: Bool?
    var momentum: Double?
    var testDescription: String { name }

    static let all: [InstanceNormConfig] = {
        let fx = try! Fixture("instancenorm")
        return try! JSONDecoder().decode([InstanceNormConfig].self, from: Data(fx.metadata["configs"]!.utf8))
    }()
}

@Suite struct InstanceNormTests {
    let fx = try! Fixture("instancenorm")

    func layer(_ cfg: InstanceNormConfig) -> InstanceNormBase {
        let c = cfg.shape[cfg.shape.count - cfg.dims - 1]
        let (affine, track, momentum) = (cfg.affine ?? false, cfg.track ?? false, cfg.momentum ?? 0.1)
        switch cfg.dims {
        case 1: return InstanceNorm1d(c, momentum: momentum, affine: affine, trackRunningStats: track, dtype: .float64)
        case 2: return InstanceNorm2d(c, momentum: momentum, affine: affine, trackRunningStats: track, dtype: .float64)
        default: return InstanceNorm3d(c, momentum: momentum, affine: affine, trackRunningStats: track, dtype: .float64)
        }
    }

    /// Training output and gradients, running statistics after two calls, and the eval output
    /// (running statistics only when tracked), all against PyTorch.
    @Test(arguments: InstanceNormConfig.all)
    func matchesPyTorch(_ cfg: InstanceNormConfig) throws {
        let p = cfg.name, norm = layer(cfg)
        if let w = norm.weight, let b = norm.bias {
            w.value = fx["\(p)/weight"]
            b.value = fx["\(p)/bias"]
        }
        let x = fx["\(p)/x"].requiringGrad()
        let y = norm(x)
        expectClose(y, fx["\(p)/y"], atol: 1e-12, rtol: 1e-10, "\(p) output")
        (y * fx["\(p)/up"]).sum().backward()
        expectClose(try #require(x.grad), fx["\(p)/dx"], atol: 1e-11, rtol: 1e-9, "\(p) input gradient")
        if let w = norm.weight, let b = norm.bias {
            expectClose(try #require(w.grad), fx["\(p)/dweight"], atol: 1e-11, rtol: 1e-9, "\(p) weight gradient")
            expectClose(try #require(b.grad), fx["\(p)/dbias"], atol: 1e-11, rtol: 1e-9, "\(p) bias gradient")
        }
        _ = norm(fx["\(p)/x2"])
        if cfg.track ?? false {
            expectClose(try #require(norm.runningMean?.value), fx["\(p)/running_mean"], atol: 1e-12, rtol: 1e-10, "\(p) running mean")
            expectClose(try #require(norm.runningVar?.value), fx["\(p)/running_var"], atol: 1e-12, rtol: 1e-10, "\(p) running variance")
            #expect(norm.numBatchesTracked?.value.item(as: Int64.self) == 0, "PyTorch's instance norm never counts batches")
        }
        norm.eval()
        let evalY = norm(fx["\(p)/x2"])
        expectClose(evalY, fx["\(p)/eval_y"], atol: 1e-12, rtol: 1e-10, "\(p) eval output")
        #expect(norm.isModeDependent == (cfg.track ?? false))
    }

    @Test func stateDictKeysArePyTorchs() {
        #expect(InstanceNorm2d(3).stateDict().keys.isEmpty)
        #expect(Set(InstanceNorm2d(3, affine: true, trackRunningStats: true).stateDict().keys)
                == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
    }

    @Test func refusesTheWrongRank() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = InstanceNorm2d(3)(Tensor.zeros([2, 3]))
        }
        #expect(standardErrorText(result).contains("InstanceNorm2d: expected 3D or 4D input (got 2D input)"), "\(standardErrorText(result))")
    }
}
