import Ember
import Foundation
import Testing
import _EmberTestSupport

struct BatchNormConfig: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var cls: String
    var features: Int
    var shape: [Int]
    var eps: Double?
    var momentum: Double??
    var affine: Bool?
    var track_running_stats: Bool?
    var dtype: String?

    var testDescription: String { name }

    static let all: [BatchNormConfig] = {
        let fx = try! Fixture("batchnorm")
        return try! JSONDecoder().decode([BatchNormConfig].self, from: Data(fx.metadata["configs"]!.utf8))
    }()

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        cls = try c.decode(String.self, forKey: .cls)
        features = try c.decode(Int.self, forKey: .features)
        shape = try c.decode([Int].self, forKey: .shape)
        eps = try c.decodeIfPresent(Double.self, forKey: .eps)
        // Absent: default 0.1; present null: nil (cumulative average).
        momentum = c.contains(.momentum) ? .some(try c.decodeIfPresent(Double.self, forKey: .momentum)) : .none
        affine = try c.decodeIfPresent(Bool.self, forKey: .affine)
        track_running_stats = try c.decodeIfPresent(Bool.self, forKey: .track_running_stats)
        dtype = try c.decodeIfPresent(String.self, forKey: .dtype)
    }

    enum CodingKeys: String, CodingKey { case name, cls, features, shape, eps, momentum, affine, track_running_stats, dtype }

    func makeLayer() -> BatchNormBase {
        let dt: DType = dtype == "float64" ? .float64 : .float32
        let m: Double? = momentum ?? 0.1
        switch cls {
        case "BatchNorm2d":
            return BatchNorm2d(features, eps: eps ?? 1e-5, momentum: m, affine: affine ?? true,
                               trackRunningStats: track_running_stats ?? true, dtype: dt)
        default:
            return BatchNorm1d(features, eps: eps ?? 1e-5, momentum: m, affine: affine ?? true,
                               trackRunningStats: track_running_stats ?? true, dtype: dt)
        }
    }
}

@Suite struct BatchNormTests {
    let fx = try! Fixture("batchnorm")

    @Test(arguments: BatchNormConfig.all)
    func trainingThenEvalMatchesPyTorch(_ cfg: BatchNormConfig) throws {
        let bn = cfg.makeLayer()
        let p = cfg.name
        let (atol, rtol) = cfg.dtype == "float64" ? (1e-12, 1e-10) : (2e-5, 1e-4)
        if bn.affine {
            bn.weight!.value = fx["\(p)/weight0"]
            bn.bias!.value = fx["\(p)/bias0"]
        }
        for step in ["train0", "train1", "train2", "eval"] {
            bn.train(step != "eval")
            bn.zeroGrad()
            let x = fx["\(p)/\(step)/x"].requiringGrad()
            let y = bn(x)
            expectClose(y, fx["\(p)/\(step)/y"], atol: atol, rtol: rtol, "\(p) \(step) output")
            (y * fx["\(p)/\(step)/up"]).sum().backward()
            expectClose(try #require(x.grad), fx["\(p)/\(step)/dx"], atol: atol, rtol: rtol, "\(p) \(step) input gradient")
            if bn.affine {
                expectClose(try #require(bn.weight!.grad), fx["\(p)/\(step)/dweight"], atol: atol * 10, rtol: rtol, "\(p) \(step) weight gradient")
                expectClose(try #require(bn.bias!.grad), fx["\(p)/\(step)/dbias"], atol: atol * 10, rtol: rtol, "\(p) \(step) bias gradient")
            }
            if let rm = bn.runningMean {
                expectClose(rm.value, fx["\(p)/\(step)/running_mean"], atol: atol, rtol: rtol, "\(p) \(step) running_mean")
                expectClose(bn.runningVar!.value, fx["\(p)/\(step)/running_var"], atol: atol, rtol: rtol, "\(p) \(step) running_var")
                expectBitwiseEqual(bn.numBatchesTracked!.value, fx["\(p)/\(step)/num_batches_tracked"], "\(p) \(step) counter")
            } else {
                #expect(fx.tensors["\(p)/\(step)/running_mean"] == nil)
            }
        }
        #expect(bn.stateDict().count == Int(fx["\(p)/state_keys"].item(as: Int64.self)))
    }

    @Test func stateDictKeysAndCounterDtype() {
        let bn = BatchNorm1d(4)
        #expect(bn.stateDict().keys == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
        #expect(bn.numBatchesTracked!.value.dtype == .int64 && bn.numBatchesTracked!.value.rank == 0)
        #expect(BatchNorm1d(4, affine: false, trackRunningStats: false).stateDict().count == 0)
    }

    /// The reference case from the semantics spec, section 10.1.
    @Test func referenceBatchOfFour() {
        let bn = BatchNorm1d(3)
        let x = Tensor(rows: [[1, 2, 3], [4, 5, 6], [7, 8, 10], [2, 0, 1]] as [[Float]])
        _ = bn(x)
        expectClose(bn.runningMean!.value, Tensor([0.35, 0.375, 0.5] as [Float]), atol: 1e-7, rtol: 1e-6)
        expectClose(bn.runningVar!.value, Tensor([1.6, 2.125, 2.4333334] as [Float]), atol: 1e-6, rtol: 1e-6)
        bn.eval()
        expectClose(bn(x), Tensor(rows: [[0.513869, 1.114738, 1.602648], [2.885570, 3.172716, 3.525827],
                                         [5.257270, 5.230694, 6.090064], [1.304435, -0.257247, 0.320530]] as [[Float]]),
                    atol: 2e-6, rtol: 1e-6)
    }

    @Test func resetRunningStats() {
        let bn = BatchNorm1d(2)
        _ = bn(Tensor(rows: [[1, 2], [3, 5]] as [[Float]]))
        bn.resetRunningStats()
        #expect(bn.runningMean!.value.floats == [0, 0] && bn.runningVar!.value.floats == [1, 1])
        #expect(bn.numBatchesTracked!.value.item(as: Int64.self) == 0)
    }

    @Test func extraDescriptionMatchesPyTorchRepr() {
        #expect(BatchNorm2d(8).extraDescription == "8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True")
        #expect(BatchNorm1d(3, momentum: nil).extraDescription.contains("momentum=None"))
    }
}
