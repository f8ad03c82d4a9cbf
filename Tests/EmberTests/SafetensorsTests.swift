import Ember
import Foundation
import Testing
import _EmberTestSupport

/// A safetensors image from a header string and a data section; `length` overrides the header
/// length field.
private func image(_ header: String, body: [UInt8] = [], length: UInt64? = nil) -> Data {
    let h = Array(header.utf8)
    var d = Data()
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
    d.append(contentsOf: h)
    d.append(contentsOf: body)
    return d
}

/// The error `decode` throws for `data`, or `nil` when it succeeds.
private func decodeError(_ data: Data) -> SafetensorsError? {
    do {
        _ = try Safetensors.decode(data, path: "bad.safetensors")
        return nil
    } catch {
        return error
    }
}

/// A fresh path in the temporary folder.
private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ember-\(UUID().uuidString)-\(name)").path
}

/// The tensors `check_ember_written.py` expects (keep the two in sync).
private func emberWrittenTensors() -> [(String, Tensor)] {
    [
        ("f32", Tensor((0..<12).map { Float($0) * 0.5 - 1 }, shape: [3, 4])),
        ("f32_transposed", Tensor((0..<6).map { Float($0) * 0.25 }, shape: [2, 3]).transposed(0, 1)),
        ("f32_special", Tensor([0, -0.0, .infinity, -.infinity, .nan, Float.leastNonzeroMagnitude, .greatestFiniteMagnitude] as [Float])),
        ("f64", Tensor([1.0 / 3, -2.5, 1e-300] as [Double])),
        ("i64", Tensor([Int64.min, -1, 0, Int64.max])),
        ("mask", Tensor([true, false, false, true], shape: [2, 2])),
        ("scalar", Tensor(3.5 as Float)),
        ("empty", Tensor.zeros([0, 3])),
        ("weird name/with \"quotes\" ü", Tensor([1] as [Float]).requiringGrad()),
    ]
}

private let emberWrittenMetadata = ["format": "pt", "written_by": "Ember", "note": "ünïcode \"quoted\" back\\slash\nnewline"]

@Suite struct SafetensorsTests {
    // MARK: Round trip and interop

    @Test func writeThenReadRoundTripsBitForBit() throws {
        let tensors = emberWrittenTensors()
        let path = temporaryPath("roundtrip.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.write(tensors, metadata: emberWrittenMetadata, to: path)
        let back = try Safetensors.read(contentsOf: path)
        #expect(back.names == tensors.map(\.0), "data order is the order given")
        #expect(back.metadata == emberWrittenMetadata)
        for (name, t) in tensors {
            let r = try #require(back.tensors[name])
            expectBitwiseEqual(r, t.detached().contiguous(), name)
            #expect(!r.requiresGrad)
        }
        #expect(back.storedDTypes["mask"] == "BOOL" && back.storedDTypes["f64"] == "F64")
        // Signed zero and NaN survive as bits.
        let special = back.tensors["f32_special"]!.scalars(as: Float.self)
        #expect(special[1].sign == .minus && special[4].isNaN)
    }

    @Test func writtenHeaderFollowsTheFormat() throws {
        let data = Safetensors.encode(emberWrittenTensors(), metadata: ["a": "b"])
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + n) % 8 == 0, "data section is 8-byte aligned")
        let header = data.subdata(in: 8..<(8 + n))
        #expect(header.first == UInt8(ascii: "{"))
        let object = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        #expect(object["__metadata__"] as? [String: String] == ["a": "b"])
        let entry = try #require(object["f32"] as? [String: Any])
        #expect(entry["dtype"] as? String == "F32")
        #expect(entry["shape"] as? [Int] == [3, 4])
        #expect(entry["data_offsets"] as? [Int] == [0, 48])
        // Empty metadata is omitted.
        let plain = Safetensors.encode([("x", Tensor([1] as [Float]))])
        #expect(String(decoding: plain.dropFirst(8), as: UTF8.self).hasPrefix("{\"x\":"))
    }

    @Test func dictionaryWriteUsesNameOrder() throws {
        let path = temporaryPath("dict.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.write(["b": Tensor([1] as [Float]), "a": Tensor([2] as [Float]), "c": Tensor([3] as [Float])], to: path)
        #expect(try Safetensors.read(contentsOf: path).names == ["a", "b", "c"])
    }

    /// Writes the file that `Tools/fixtures/check_ember_written.py` checks in PyTorch. Set
    /// EMBER_SAFETENSORS_OUT to a path to keep a copy there (see Tools/fixtures/README.md).
    @Test func emberWrittenFileForPyTorch() throws {
        let path = ProcessInfo.processInfo.environment["EMBER_SAFETENSORS_OUT"] ?? temporaryPath("for-pytorch.safetensors")
        try Safetensors.write(emberWrittenTensors(), metadata: emberWrittenMetadata, to: path)
        #expect(try Safetensors.read(contentsOf: path).tensors.count == emberWrittenTensors().count)
        if ProcessInfo.processInfo.environment["EMBER_SAFETENSORS_OUT"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// A file written by `safetensors.torch.save_file` (Tools/fixtures/gen_safetensors.py).
    @Test func readsPyTorchWrittenFile() throws {
        let path = Fixture.directory.appendingPathComponent("interop.safetensors").path
        let c = try Safetensors.read(contentsOf: path)
        #expect(c.metadata["format"] == "pt")
        #expect(c.metadata["note"] == "ünïcode \"quoted\" back\\slash\nnewline")
        #expect(c.tensors.count == 18)
        for (name, stored) in [("f16", "F16"), ("bf16", "BF16"), ("i32", "I32"), ("u8", "U8")] {
            let t = try #require(c.tensors[name])
            let expected = try #require(c.tensors[name + "_expected"])
            // Exact values; NaN matches any NaN (PyTorch's software f16 -> f32 conversion gives
            // the payload 0x7FFFFFFF, Ember the canonical quiet NaN 0x7FC00000).
            #expect(t.dtype == expected.dtype)
            expectClose(t, expected, atol: 0, rtol: 0, name)
            #expect(c.storedDTypes[name] == stored)
        }
        let f16 = c.tensors["f16"]!.scalars(as: Float.self)
        #expect(f16[1].sign == .minus && f16[1] == 0)
        #expect(f16[4] == 65504 && f16[5] == 0x1p-24 && f16[6] == 0x1p-14 && f16[8] == .infinity && f16[10].isNaN)
        #expect(c.tensors["i32"]!.shape == [2, 3])
        #expect(c.tensors["i32"]!.scalars(as: Int64.self) == [Int64(Int32.min), -1, 0, 1, 7, Int64(Int32.max)])
        #expect(c.tensors["u8"]!.scalars(as: Int64.self) == [0, 1, 127, 128, 255])
        #expect(c.tensors["bool"]!.scalars(as: Bool.self) == [true, false, true, false, false, true])
        #expect(c.tensors["bool"]!.shape == [2, 3])
        let f64 = c.tensors["f64"]!.scalars(as: Double.self)
        #expect(f64[0] == 1.0 / 3 && f64[1] == -1e300 && f64[2] == .leastNonzeroMagnitude && f64[3].sign == .minus && f64[4].isNaN && f64[5] == .infinity)
        #expect(c.tensors["i64"]!.scalars(as: Int64.self) == [Int64.min, Int64.max, 0, 42])
        expectBitwiseEqual(c.tensors["f32_3d"]!, Tensor((0..<24).map { Float($0) / 8 - 1 }, shape: [2, 3, 4]))
        #expect(c.tensors["scalar_f32"]!.shape == [] && c.tensors["scalar_f32"]!.item(as: Float.self) == 2.5)
        #expect(c.tensors["scalar_i64"]!.item(as: Int64.self) == -7)
        #expect(c.tensors["scalar_bool"]!.item(as: Bool.self) == true)
        #expect(c.tensors["empty_f32"]!.shape == [0, 3] && c.tensors["empty_f32"]!.dtype == .float32)
        #expect(c.tensors["empty_i64"]!.shape == [0] && c.tensors["empty_i64"]!.dtype == .int64)
        #expect(c.tensors["empty_f16"]!.shape == [2, 0] && c.tensors["empty_f16"]!.dtype == .float32)
    }

    @Test func halfPrecisionConversionCoversEveryClass() {
        #expect(Safetensors.halfToFloat(0x3C00) == 1)
        #expect(Safetensors.halfToFloat(0xC000) == -2)
        #expect(Safetensors.halfToFloat(0x0001) == 0x1p-24)
        #expect(Safetensors.halfToFloat(0x8001) == -0x1p-24)
        #expect(Safetensors.halfToFloat(0x03FF) == 1023 * 0x1p-24)
        #expect(Safetensors.halfToFloat(0x7BFF) == 65504)
        #expect(Safetensors.halfToFloat(0xFC00) == -.infinity)
        #expect(Safetensors.halfToFloat(0x7E00).isNaN)
        #expect(Safetensors.halfToFloat(0x8000).sign == .minus)
    }

    // MARK: Valid edge cases

    @Test func acceptsEdgeCasesTheFormatAllows() throws {
        // No tensors at all, with whitespace padding.
        #expect(try Safetensors.decode(image("{}      ")).tensors.isEmpty)
        // Null metadata, entries in any order, extra keys ignored.
        let body: [UInt8] = [1, 0, 0, 0, 0, 0, 0x80, 0x3F]
        let c = try Safetensors.decode(image(#"""
            {"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8],"extra":1},"__metadata__":null,
             "a":{"data_offsets":[0,4],"shape":[],"dtype":"I32"}}
            """#, body: body))
        #expect(c.names == ["a", "b"])
        #expect(c.tensors["a"]!.item(as: Int64.self) == 1 && c.tensors["b"]!.floats == [1])
        // Empty tensors may sit at the boundary between others; escapes in names decode.
        let d = try Safetensors.decode(image(#"""
            {"x\u00fc\n":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},
             "z":{"dtype":"BOOL","shape":[2],"data_offsets":[4,6]}}
            """#, body: [1, 2, 3, 4, 0, 7]))
        #expect(d.tensors["xü\n"]!.shape == [0, 5])
        #expect(d.tensors["z"]!.scalars(as: Bool.self) == [false, true], "any non-zero BOOL byte is true")
    }

    // MARK: Malformed files: each throws its typed error

    @Test func truncatedFiles() throws {
        #expect(decodeError(Data()) == .truncated(path: "bad.safetensors", detail: "0 bytes, need at least 8 for the header length"))
        #expect(decodeError(Data([1, 2, 3])).map { if case .truncated = $0 { true } else { false } } == true)
        guard case .truncated(_, let detail)? = decodeError(image("{}", length: 50)) else {
            Issue.record("header longer than the file"); return
        }
        #expect(detail.contains("50"))
        // A valid file with its last bytes cut off (a partial download).
        let full = Safetensors.encode([("w", Tensor([1, 2, 3] as [Float]))])
        guard case .truncated(_, let d2)? = decodeError(full.prefix(full.count - 3)) else {
            Issue.record("cut data section"); return
        }
        #expect(d2.contains("tensor 'w' ends at byte 12"))
        // Cut inside the header.
        guard case .truncated? = decodeError(full.prefix(20)) else { Issue.record("cut header"); return }
    }

    @Test func oversizedHeader() {
        #expect(decodeError(image("{}", length: 100_000_001)) == .headerTooLarge(path: "bad.safetensors", length: 100_000_001))
        #expect(decodeError(image("{}", length: .max)) == .headerTooLarge(path: "bad.safetensors", length: .max))
        // A text file mistaken for safetensors: "hello wo" read as a length.
        #expect(decodeError(Data("hello world, this is not a tensor file".utf8)).map {
            if case .headerTooLarge = $0 { true } else { false }
        } == true)
    }

    @Test(arguments: [
        ("not json", "garbage"), ("{\"a\":", "unexpected end"), ("{\"a\" 1}", "expected ':'"), ("{} x", "after the JSON"),
        ("{'a':1}", "expected a string key"), ("{\"a\":01}", "leading zero"), ("{\"a\":tru}", "invalid literal"),
        ("{\"a\":\"\\x\"}", "invalid escape"), ("{\"a\":\"\\ud800\"}", "surrogate"), ("{\"a\":\"tab\there\"}", "control character"),
    ])
    func garbageHeaderIsInvalidJSON(_ header: String, _ fragment: String) throws {
        guard case .invalidHeader(_, let detail)? = decodeError(image(header)) else {
            Issue.record("expected invalidHeader for \(header)"); return
        }
        #expect(detail.hasPrefix("not valid JSON"))
        if fragment != "garbage" { #expect(detail.contains(fragment), "\(detail)") }
    }

    @Test func nonObjectAndOtherInvalidHeaders() throws {
        for header in ["[1, 2]", "\"tensors\"", "42", "null", "true"] {
            guard case .invalidHeader(_, let detail)? = decodeError(image(header)) else {
                Issue.record("expected invalidHeader for \(header)"); continue
            }
            #expect(detail.contains("must be a JSON object"), "\(detail)")
        }
        // Not UTF-8.
        var bytes = image("{\"a\":1}")
        bytes[10] = 0xFF
        #expect(decodeError(bytes) == .invalidHeader(path: "bad.safetensors", detail: "the header is not valid UTF-8"))
        // Duplicate keys (the format forbids them; JSONDecoder would silently keep one).
        guard case .invalidHeader(_, let dup)? = decodeError(image(#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, body: [0])) else {
            Issue.record("duplicate key"); return
        }
        #expect(dup.contains("duplicate key \"w\""))
        // Deep nesting cannot overflow the stack.
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        guard case .invalidHeader(_, let nest)? = decodeError(image("{\"a\":" + deep + "}")) else {
            Issue.record("deep nesting"); return
        }
        #expect(nest.contains("nesting deeper"))
        // __metadata__ must map strings to strings.
        guard case .invalidHeader(_, let meta)? = decodeError(image(#"{"__metadata__":{"epoch":3}}"#)) else {
            Issue.record("metadata"); return
        }
        #expect(meta.contains("'epoch' is the number 3"))
        guard case .invalidHeader? = decodeError(image(#"{"__metadata__":["a"]}"#)) else { Issue.record("metadata array"); return }
    }

    @Test(arguments: [
        (#"{"w":[1]}"#, "must be an object"),
        (#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, "missing \"dtype\""),
        (#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, "missing \"shape\""),
        (#"{"w":{"dtype":"F32","shape":[1]}}"#, "missing \"data_offsets\""),
        (#"{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}"#, "\"dtype\" must be a string"),
        (#"{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, "\"shape\" must be an array"),
        (#"{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, "non-negative integers, found the number 1.0"),
        (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "non-negative integers"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, "array of two integers"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}"#, "found [the number 0, the number 4e0]"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, "non-negative"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, "end before they begin"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}"#, "non-negative integers"),
        (#"{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}"#, "rank 9 exceeds"),
        (#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, "overflows"),
        (#"{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}"#, "byte size"),
    ])
    func malformedEntriesAreInvalidTensors(_ header: String, _ fragment: String) {
        guard case .invalidTensor(let path, let name, let detail)? = decodeError(image(header, body: [0, 0, 0, 0])) else {
            Issue.record("expected invalidTensor for \(header), got \(String(describing: decodeError(image(header, body: [0, 0, 0, 0]))))")
            return
        }
        #expect(path == "bad.safetensors" && name == "w")
        #expect(detail.contains(fragment), "\(detail)")
    }

    @Test func wrongDType() {
        for dtype in ["F8_E4M3", "I8", "U64", "float32", ""] {
            #expect(decodeError(image(#"{"w":{"dtype":"\#(dtype)","shape":[4],"data_offsets":[0,4]}}"#, body: [0, 0, 0, 0]))
                    == .unsupportedDType(path: "bad.safetensors", name: "w", dtype: dtype))
        }
    }

    @Test func shapeAndOffsetSizeMismatch() {
        #expect(decodeError(image(#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, body: Array(repeating: 0, count: 20)))
                == .sizeMismatch(path: "bad.safetensors", name: "w", expectedBytes: 24, actualBytes: 20))
        #expect(decodeError(image(#"{"w":{"dtype":"BF16","shape":[],"data_offsets":[0,4]}}"#, body: [0, 0, 0, 0]))
                == .sizeMismatch(path: "bad.safetensors", name: "w", expectedBytes: 2, actualBytes: 4))
    }

    @Test func overlappingData() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(decodeError(image(header, body: Array(repeating: 0, count: 8))) == .overlap(path: "bad.safetensors", name: "b", other: "a"))
        // Identical ranges.
        let same = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#
        #expect(decodeError(image(same, body: [0, 0, 0, 0])) == .overlap(path: "bad.safetensors", name: "b", other: "a"))
        // An empty tensor placed inside another's bytes.
        let inside = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#
        #expect(decodeError(image(inside, body: [0, 0, 0, 0])) == .overlap(path: "bad.safetensors", name: "e", other: "a"))
    }

    @Test func gapsAndUncoveredBytes() {
        let gap = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#
        #expect(decodeError(image(gap, body: Array(repeating: 0, count: 6))) == .uncoveredBytes(path: "bad.safetensors", range: 2..<4))
        let leading = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#
        #expect(decodeError(image(leading, body: Array(repeating: 0, count: 5))) == .uncoveredBytes(path: "bad.safetensors", range: 0..<3))
        let trailing = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#
        #expect(decodeError(image(trailing, body: Array(repeating: 0, count: 7))) == .uncoveredBytes(path: "bad.safetensors", range: 2..<7))
        #expect(decodeError(image("{}", body: [1])) == .uncoveredBytes(path: "bad.safetensors", range: 0..<1))
    }

    /// Thousands of random corruptions of a valid file (byte flips in the header, cuts, random
    /// length fields): decoding must throw or succeed, never crash.
    @Test func randomCorruptionNeverCrashes() {
        let valid = Safetensors.encode(emberWrittenTensors(), metadata: ["k": "v"])
        let headerEnd = 8 + valid.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let g = Generator(seed: 2024)
        var outcomes = (ok: 0, failed: 0)
        for trial in 0..<3000 {
            var d = valid
            switch trial % 3 {
            case 0:
                let flips = Tensor.randint(low: 8, high: headerEnd, shape: [3], generator: g).scalars(as: Int64.self)
                let values = Tensor.randint(high: 256, shape: [3], generator: g).scalars(as: Int64.self)
                for (i, v) in zip(flips, values) { d[Int(i)] = UInt8(v) }
            case 1:
                let cut = Tensor.randint(high: valid.count, shape: [], generator: g).item(as: Int64.self)
                d = valid.prefix(Int(cut))
            default:
                let i = Tensor.randint(high: 8, shape: [], generator: g).item(as: Int64.self)
                let v = Tensor.randint(high: 256, shape: [], generator: g).item(as: Int64.self)
                d[Int(i)] = UInt8(v)
            }
            if decodeError(d) == nil { outcomes.ok += 1 } else { outcomes.failed += 1 }
        }
        #expect(outcomes.failed > 2000, "most corruptions must be detected (\(outcomes))")
    }

    // MARK: I/O errors

    @Test func missingFileIsUnreadable() {
        let path = temporaryPath("missing.safetensors")
        #expect(throws: SafetensorsError.self) { try Safetensors.read(contentsOf: path) }
        do {
            _ = try Safetensors.read(contentsOf: path)
        } catch {
            guard case .unreadable(let p, _) = error else { Issue.record("expected unreadable, got \(error)"); return }
            #expect(p == path)
            #expect(error.description.hasPrefix("cannot read safetensors file '\(path)'"))
        }
    }

    @Test func unwritableLocation() {
        let path = temporaryPath("no-such-folder") + "/x.safetensors"
        do {
            try Safetensors.write([("a", Tensor([1] as [Float]))], to: path)
            Issue.record("write into a missing folder succeeded")
        } catch {
            guard case .unwritable(let p, _) = error else { Issue.record("expected unwritable, got \(error)"); return }
            #expect(p == path)
        }
    }

    @Test func errorDescriptionsAreOneLineAndNameTheFileAndTensor() {
        let errors: [SafetensorsError] = [
            .truncated(path: "m.safetensors", detail: "x"), .headerTooLarge(path: "m.safetensors", length: 1 << 40),
            .invalidHeader(path: "m.safetensors", detail: "x"), .invalidTensor(path: "m.safetensors", name: "fc.weight", detail: "x"),
            .unsupportedDType(path: "m.safetensors", name: "fc.weight", dtype: "I8"),
            .sizeMismatch(path: "m.safetensors", name: "fc.weight", expectedBytes: 24, actualBytes: 20),
            .overlap(path: "m.safetensors", name: "fc.weight", other: "fc.bias"), .uncoveredBytes(path: "m.safetensors", range: 2..<4),
        ]
        for e in errors {
            #expect(e.description.contains("'m.safetensors'"))
            #expect(!e.description.contains("\n"))
        }
        #expect(errors.dropFirst(3).dropLast().allSatisfy { $0.description.contains("'fc.weight'") })
    }

    /// Issue #10: an empty tensor whose other dimensions multiply past `Int.max` is refused (its
    /// strides would overflow), as is a dtype tag whose size does not match the byte span.
    @Test func emptyShapesWithOverflowingDimensionsAndWrongDTypeSpansAreRefused() {
        let huge = decodeError(image(#"{"t":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}}"#))
        #expect(huge == .invalidTensor(path: "bad.safetensors", name: "t",
                                       detail: "the element count of shape [0, 4611686018427387904, 4611686018427387904] overflows"))
        #expect(decodeError(image(#"{"t":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}"#)) == nil)
        let span = decodeError(image(#"{"t":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}"#, body: [UInt8](repeating: 0, count: 8)))
        #expect(span == .sizeMismatch(path: "bad.safetensors", name: "t", expectedBytes: 16, actualBytes: 8))
    }
}
