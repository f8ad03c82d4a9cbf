import Ember
import Foundation
import Testing
import _EmberTestSupport

/// One case of `Fixtures/printing.json` (written by `Tools/fixtures/gen_printing.py`).
struct PrintingCase: Decodable, CustomTestStringConvertible, Sendable {
    /// A JSON value: a number, a bool, or one of "nan", "inf", "-inf", "-0.0".
    enum Value: Decodable, Sendable {
        case number(Double), bool(Bool)

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b); return }
            if let d = try? c.decode(Double.self) { self = .number(d); return }
            switch try c.decode(String.self) {
            case "nan": self = .number(.nan)
            case "inf": self = .number(.infinity)
            case "-inf": self = .number(-.infinity)
            case "-0.0": self = .number(-0.0)
            case let s: throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown value \(s)")
            }
        }

        var double: Double {
            switch self {
            case .number(let d): d
            case .bool(let b): b ? 1 : 0
            }
        }
    }

    struct Formula: Decodable, Sendable { var n, mul, mod: Int; var div, add: Double }

    var name: String
    var dtype: String
    var shape: [Int]
    var values: [Value]?
    var formula: Formula?
    var requires_grad: Bool?
    var op: String?
    var expected: String

    var testDescription: String { name }

    /// The tensor PyTorch printed, rebuilt in Ember.
    var tensor: Tensor {
        let doubles: [Double]
        if let f = formula {
            doubles = (0..<f.n).map { Double(($0 * f.mul) % f.mod) / f.div + f.add }
        } else {
            doubles = values!.map(\.double)
        }
        var t: Tensor
        switch dtype {
        case "float32": t = Tensor(doubles.map { Float($0) }, shape: Shape(shape))
        case "float64": t = Tensor(doubles, shape: Shape(shape))
        case "int64": t = Tensor(doubles.map { Int64($0) }, shape: Shape(shape))
        case "bool": t = Tensor(doubles.map { $0 != 0 }, shape: Shape(shape))
        default: fatalError("unknown dtype \(dtype)")
        }
        if requires_grad == true { t = t.requiringGrad() }
        if op == "mul2" { t = t * 2.0 }
        return t
    }

    /// PyTorch's string with its autograd node name replaced by Ember's op name (the one
    /// documented difference).
    var expectedInEmber: String { expected.replacingOccurrences(of: "grad_fn=<MulBackward0>", with: "grad_fn=<mul>") }

    static let all: [PrintingCase] = {
        struct File: Decodable { var cases: [PrintingCase] }
        let url = Fixture.directory.appendingPathComponent("printing.json")
        return try! JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }()
}

@Suite struct PrintingTests {
    @Test func fixtureHasAllCases() {
        #expect(PrintingCase.all.count >= 60)
    }

    @Test(arguments: PrintingCase.all)
    func matchesPyTorch(_ c: PrintingCase) {
        let actual = c.tensor.description
        #expect(actual == c.expectedInEmber, "\(c.name):\n--- Ember\n\(actual)\n--- PyTorch\n\(c.expectedInEmber)")
    }

    /// The brief's examples, spelled out so a broken fixture loader cannot hide a regression.
    @Test func literalExamples() {
        #expect(Tensor(rows: [[0.1, 2], [3, 4]] as [[Float]]).description == "tensor([[0.1000, 2.0000],\n        [3.0000, 4.0000]])")
        #expect(Tensor([1, 2, 3] as [Float]).description == "tensor([1., 2., 3.])")
        #expect(Tensor([1, 2, 3] as [Int64]).description == "tensor([1, 2, 3])")
        #expect(Tensor([true, false]).description == "tensor([ True, False])")
        #expect(Tensor(3.5 as Float).description == "tensor(3.5000)")
        #expect(Tensor.zeros([0]).description == "tensor([])")
        #expect(Tensor.zeros([0, 3]).description == "tensor([], size=(0, 3))")
        #expect(Tensor([1.5, 2] as [Double]).description == "tensor([1.5000, 2.0000], dtype=torch.float64)")
        #expect(Tensor([Float.nan, 1.5, .infinity, -.infinity]).description == "tensor([   nan, 1.5000,    inf,   -inf])")
        #expect("\(Tensor([1, 2] as [Float]).requiringGrad())" == "tensor([1., 2.], requires_grad=True)")
    }

    /// Views print their logical contents: transposed, expanded (stride 0) and offset views.
    @Test func viewsPrintTheirElements() {
        let x = Tensor((0..<6).map { Float($0) * 0.5 }, shape: [2, 3])
        let t = x.transposed(0, 1)
        #expect(!t.isContiguous)
        #expect(t.description == "tensor([[0.0000, 1.5000],\n        [0.5000, 2.0000],\n        [1.0000, 2.5000]])")
        #expect(t.description == t.contiguous().description)
        let e = Tensor([1, 2] as [Int64], shape: [2, 1]).expandedRaw(to: [2, 3])
        #expect(e.description == "tensor([[1, 1, 1],\n        [2, 2, 2]])")
        let big = Tensor.arange(0, 5000, dtype: .float64).reshaped([50, 100]).transposed(0, 1)
        #expect(big.description == big.contiguous().description)
    }

    @Test func optionsChangePrecisionNotationAndSummary() {
        let x = Tensor([1.23456, 20.5] as [Float])
        #expect(x.description(options: PrintOptions(precision: 2)) == "tensor([ 1.23, 20.50])")
        #expect(x.description(options: PrintOptions(scientific: true)) == "tensor([1.2346e+00, 2.0500e+01])")
        #expect(Tensor([1e-5, 1] as [Float]).description == "tensor([1.0000e-05, 1.0000e+00])")
        #expect(Tensor([1e-5, 1] as [Float]).description(options: PrintOptions(scientific: false)) == "tensor([0.0000, 1.0000])")
        let r = Tensor.arange(0, 10)
        #expect(r.description(options: PrintOptions(threshold: 5)) == "tensor([0, 1, 2,  ..., 7, 8, 9])")
        #expect(r.description(options: PrintOptions(threshold: 5, edgeItems: 1)) == "tensor([0,  ..., 9])")
        let full = Tensor.arange(0, 1001).description(options: .full)
        #expect(full.contains(" 500,  501,") && !full.contains("..."))
        #expect(r.description(options: PrintOptions(lineWidth: 20)) == "tensor([0, 1, 2, 3,\n        4, 5, 6, 7,\n        8, 9])")
    }

    @Test func gradFnShowsEmbersOpName() {
        let a = Tensor([1, 2] as [Float]).requiringGrad()
        #expect((a + a).description == "tensor([2., 4.], grad_fn=<add>)")
        #expect(withNoGrad { (a + a).description } == "tensor([2., 4.])")
        #expect(a.detached().description == "tensor([1., 2.])")
    }
}
