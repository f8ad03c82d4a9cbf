import CEmberKernels
import Ember
@testable import EmberFunctional
import EmberStorage
import Testing
import _EmberTestSupport

/// Batch normalization's plane loops in C (`batch_norm.c`: statistics, gradient sums, input
/// gradient) give, on every kernel path this CPU runs, bitwise what the Swift loops they replaced
/// gave. Those loops are kept here as the reference (`Reference`), on plane sizes around the
/// sixteen lanes (shorter than a group, a whole group, a tail of every length, large planes),
/// NaN, infinities and signed zeros included, with planes split over threads.
@Suite("BatchNorm plane kernels")
struct BatchNormPlaneKernelTests {
    /// The Swift loops of `BatchNormPlanes` before they moved to C (per plane; the channel and
    /// sample loops around them are unchanged).
    enum Reference {
        typealias F4 = SIMD4<Float>
        typealias D4 = SIMD4<Double>

        static func load(_ p: UnsafePointer<Float>) -> D4 { D4(UnsafeRawPointer(p).loadUnaligned(as: F4.self)) }

        static func laneSum(_ row: UnsafePointer<Float>, _ s: Int, _ f: (D4) -> D4, _ scalar: (Double) -> Double) -> Double {
            var a0 = D4(repeating: 0), a1 = a0, a2 = a0, a3 = a0
            var j = 0
            while j + 16 <= s {
                a0 += f(load(row + j)); a1 += f(load(row + j + 4)); a2 += f(load(row + j + 8)); a3 += f(load(row + j + 12))
                j += 16
            }
            var total = ((a0 + a1) + (a2 + a3)).sum()
            while j < s { total += scalar(Double(row[j])); j += 1 }
            return total
        }

        static func gradientSumX(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ s: Int, _ mu: Double, _ inv: Double) -> Double {
            let mv = D4(repeating: mu), iv = D4(repeating: inv)
            var a0 = D4(repeating: 0), a1 = a0, a2 = a0, a3 = a0
            var j = 0
            while j + 16 <= s {
                a0 += load(g + j) * (load(x + j) - mv) * iv
                a1 += load(g + j + 4) * (load(x + j + 4) - mv) * iv
                a2 += load(g + j + 8) * (load(x + j + 8) - mv) * iv
                a3 += load(g + j + 12) * (load(x + j + 12) - mv) * iv
                j += 16
            }
            var total = ((a0 + a1) + (a2 + a3)).sum()
            while j < s { total += Double(g[j]) * (Double(x[j]) - mu) * inv; j += 1 }
            return total
        }

        static func inputGradient(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ s: Int, m: Double, mu: Double, inv: Double,
                                  k: Double, sg: Double, sgx: Double) -> [Float] {
            let mv = D4(repeating: mu), iv = D4(repeating: inv), kv = D4(repeating: k), mm = D4(repeating: m)
            let sgv = D4(repeating: sg), sgxv = D4(repeating: sgx)
            var out = [Float](repeating: 0, count: s)
            var j = 0
            while j + 4 <= s {
                let xhat = (load(x + j) - mv) * iv
                let v = F4(kv * (mm * load(g + j) - sgv - xhat * sgxv))
                for l in 0..<4 { out[j + l] = v[l] }
                j += 4
            }
            while j < s {
                let xhat = (Double(x[j]) - mu) * inv
                out[j] = Float(k * (m * Double(g[j]) - sg - xhat * sgx))
                j += 1
            }
            return out
        }
    }

    static let sizes = [1, 3, 15, 16, 17, 31, 32, 33, 47, 64, 100, 1024, 1029]

    /// Values spread over several magnitudes (so the order of the sums shows in the last bits),
    /// with `special` ones sprinkled in when asked.
    static func values(_ count: Int, seed: UInt64, special: Bool) -> [Float] {
        var v = Tensor.normal([count], generator: Generator(seed: seed)).floats.enumerated().map { i, x in
            x * Float(1 << (i % 7 * 3)) + 0.37
        }
        if special {
            let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0]
            for i in stride(from: 5, to: count, by: 23) { v[i] = specials[i / 23 % specials.count] }
        }
        return v
    }

    static func same(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern }

    @Test("sums, gradient sums and input gradient: bitwise the Swift loops on every path",
          arguments: [false, true])
    func perPlane(special: Bool) {
        for path in GEMMKernelPath.supported {
            for s in Self.sizes {
                let x = Self.values(s, seed: UInt64(s), special: special), g = Self.values(s, seed: UInt64(s) + 99, special: special)
                let mu = 0.123456789, inv = 1.7
                x.withUnsafeBufferPointer { xb in
                    g.withUnsafeBufferPointer { gb in
                        let xp = xb.baseAddress!, gp = gb.baseAddress!
                        let sum = ember_bn_plane_sum_f32(Int32(path.rawValue), xp, s, 0, 0)
                        #expect(Self.same(sum, Reference.laneSum(xp, s, { $0 }, { $0 })), "\(path) s=\(s): sum")
                        let mv = SIMD4<Double>(repeating: mu)
                        var planeSum = 0.0, planeDeviations = 0.0
                        ember_bn_plane_moments_f32(Int32(path.rawValue), xp, s, &planeSum, &planeDeviations)
                        let pm = sum / Double(s), pv = SIMD4<Double>(repeating: pm)
                        #expect(Self.same(planeSum, sum) && Self.same(planeDeviations, Reference.laneSum(xp, s, { ($0 - pv) * ($0 - pv) }, { ($0 - pm) * ($0 - pm) })),
                                "\(path) s=\(s): moments")
                        let sq = ember_bn_plane_sum_f32(Int32(path.rawValue), xp, s, 1, mu)
                        #expect(Self.same(sq, Reference.laneSum(xp, s, { ($0 - mv) * ($0 - mv) }, { ($0 - mu) * ($0 - mu) })),
                                "\(path) s=\(s): squared deviations")
                        var sg = 0.0, sgx = 0.0
                        ember_bn_plane_gradient_sums_f32(Int32(path.rawValue), xp, gp, s, mu, inv, &sg, &sgx)
                        #expect(Self.same(sg, Reference.laneSum(gp, s, { $0 }, { $0 })), "\(path) s=\(s): sum of g")
                        #expect(Self.same(sgx, Reference.gradientSumX(xp, gp, s, mu, inv)), "\(path) s=\(s): sum of g xhat")
                        var dx = [Float](repeating: 42, count: s + 1)
                        dx.withUnsafeMutableBufferPointer { d in
                            ember_bn_plane_input_gradient_f32(Int32(path.rawValue), xp, gp, d.baseAddress!, s, 96, mu, inv, 0.01, 3.5, -2.25)
                        }
                        let expected = Reference.inputGradient(xp, gp, s, m: 96, mu: mu, inv: inv, k: 0.01, sg: 3.5, sgx: -2.25)
                        #expect(zip(dx, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(path) s=\(s): input gradient")
                        #expect(dx[s] == 42, "\(path) s=\(s): wrote past the plane")
                        // Masked by a ReLU's output y: the same as ReLU's backward first, then the
                        // unmasked loops (y's NaN keeps the gradient, -0 and 0 drop it).
                        let y = Self.values(s, seed: UInt64(s) + 7, special: true).enumerated().map { i, v in i % 3 == 0 ? -abs(v) : v }
                        let relu = zip(g, y).map { $1 <= 0 ? Float(0) : $0 }
                        // The mask as bits: bit j % 16 of word j / 16 where y[j] is not <= 0, the last
                        // word's unused bits 0 (the words start 42 to show they are all written).
                        var bits = [UInt16](repeating: 42, count: (s + 15) / 16 + 1)
                        bits.withUnsafeMutableBufferPointer { ember_relu_mask_bits_f32(Int32(path.rawValue), y, s, $0.baseAddress!) }
                        let expectedBits = (0..<((s + 15) / 16)).map { w in
                            (0..<16).reduce(UInt16(0)) { word, b in w * 16 + b < s && !(y[w * 16 + b] <= 0) ? word | 1 << b : word }
                        }
                        #expect(Array(bits.prefix((s + 15) / 16)) == expectedBits && bits.last == 42, "\(path) s=\(s): mask bits")
                        var msg = 0.0, msgx = 0.0, usg = 0.0, usgx = 0.0
                        var stored = [Float](repeating: 42, count: s + 1), mdx = [Float](repeating: 42, count: s + 1)
                        stored.withUnsafeMutableBufferPointer { st in
                            ember_bn_plane_masked_gradient_sums_f32(Int32(path.rawValue), xp, gp, bits, st.baseAddress!, s, mu, inv, &msg, &msgx)
                        }
                        ember_bn_plane_gradient_sums_f32(Int32(path.rawValue), xp, relu, s, mu, inv, &usg, &usgx)
                        var nsg = 0.0, nsgx = 0.0
                        ember_bn_plane_masked_gradient_sums_f32(Int32(path.rawValue), xp, gp, bits, nil, s, mu, inv, &nsg, &nsgx)
                        #expect(Self.same(msg, usg) && Self.same(msgx, usgx) && Self.same(nsg, usg) && Self.same(nsgx, usgx),
                                "\(path) s=\(s): masked sums")
                        #expect(zip(stored, relu).allSatisfy { $0.bitPattern == $1.bitPattern } && stored[s] == 42,
                                "\(path) s=\(s): the masked gradient written")
                        mdx.withUnsafeMutableBufferPointer { d in
                            ember_bn_plane_masked_input_gradient_f32(Int32(path.rawValue), xp, gp, bits, d.baseAddress!, s, 96, mu, inv, 0.01, 3.5, -2.25)
                        }
                        let maskedExpected = relu.withUnsafeBufferPointer {
                            Reference.inputGradient(xp, $0.baseAddress!, s, m: 96, mu: mu, inv: inv, k: 0.01, sg: 3.5, sgx: -2.25)
                        }
                        #expect(zip(mdx, maskedExpected).allSatisfy { $0.bitPattern == $1.bitPattern } && mdx[s] == 42,
                                "\(path) s=\(s): masked input gradient")
                        // Cancellation shows the order of the operations: ((1 - 2^54) + 2^54) is 0
                        // where (1 - (2^54 - 2^54)) would be 1.
                        let ones = [Float](repeating: 1, count: s), big = 0x1p54
                        var cancelled = [Float](repeating: 42, count: s)
                        cancelled.withUnsafeMutableBufferPointer { d in
                            ember_bn_plane_input_gradient_f32(Int32(path.rawValue), ones, ones, d.baseAddress!, s, 1, 0, 1, 1, big, -big)
                        }
                        let reference = Reference.inputGradient(ones, ones, s, m: 1, mu: 0, inv: 1, k: 1, sg: big, sgx: -big)
                        #expect(cancelled == reference && reference.allSatisfy { $0 == 0 }, "\(path) s=\(s): order of the terms")
                        let all = [UInt16](repeating: 0xFFFF, count: (s + 15) / 16)
                        cancelled = [Float](repeating: 42, count: s)
                        cancelled.withUnsafeMutableBufferPointer { d in
                            ember_bn_plane_masked_input_gradient_f32(Int32(path.rawValue), ones, ones, all, d.baseAddress!, s, 1, 0, 1, 1, big, -big)
                        }
                        #expect(cancelled == reference, "\(path) s=\(s): order of the masked terms")
                    }
                }
            }
        }
    }

    @Test("the batch loops: every path gives the same statistics, sums and gradients, over threads too")
    func batchLoops() {
        let (n, c, s) = (5, 6, 37)
        let x = Self.values(n * c * s, seed: 1, special: false), g = Self.values(n * c * s, seed: 2, special: false)
        var results: [[UInt64]] = []
        for path in GEMMKernelPath.supported {
            var mean = [Double](repeating: 0, count: c), variance = mean, sumG = mean, sumGX = mean
            var dx = [Float](repeating: 0, count: n * c * s)
            let k = [Double](repeating: 0.5, count: c), invstd = [Double](repeating: 1.25, count: c)
            BatchNormPlanes.statistics(x, n: n, c: c, s: s, mean: &mean, variance: &variance, path: path)
            BatchNormPlanes.gradientSums(x: x, g: g, n: n, c: c, s: s, mean: mean, invstd: invstd, sumG: &sumG, sumGX: &sumGX, path: path)
            BatchNormPlanes.inputGradient(x: x, g: g, n: n, c: c, s: s, m: Double(n * s), mean: mean, invstd: invstd, k: k,
                                          sumG: sumG, sumGX: sumGX, dx: &dx, path: path)
            // The reference: the Swift loops, channel by channel in sample order; the variance
            // combines each plane's squared deviations from its own mean with the plane mean's
            // distance from the channel's.
            for ch in 0..<c {
                var m0 = 0.0, v0 = 0.0, g0 = 0.0, gx0 = 0.0
                x.withUnsafeBufferPointer { xb in
                    g.withUnsafeBufferPointer { gb in
                        for i in 0..<n { m0 += Reference.laneSum(xb.baseAddress! + (i * c + ch) * s, s, { $0 }, { $0 }) }
                        m0 /= Double(n * s)
                        for i in 0..<n {
                            let plane = xb.baseAddress! + (i * c + ch) * s
                            let pm = Reference.laneSum(plane, s, { $0 }, { $0 }) / Double(s), pv = SIMD4<Double>(repeating: pm)
                            let d = pm - m0
                            v0 += Reference.laneSum(plane, s, { ($0 - pv) * ($0 - pv) }, { ($0 - pm) * ($0 - pm) }) + Double(s) * d * d
                            g0 += Reference.laneSum(gb.baseAddress! + (i * c + ch) * s, s, { $0 }, { $0 })
                            gx0 += Reference.gradientSumX(xb.baseAddress! + (i * c + ch) * s, gb.baseAddress! + (i * c + ch) * s, s, m0, 1.25)
                        }
                    }
                }
                #expect(Self.same(mean[ch], m0) && Self.same(variance[ch], v0 / Double(n * s)), "\(path) channel \(ch): statistics")
                #expect(Self.same(sumG[ch], g0) && Self.same(sumGX[ch], gx0), "\(path) channel \(ch): gradient sums")
            }
            results.append(mean.map(\.bitPattern) + variance.map(\.bitPattern) + dx.map { UInt64($0.bitPattern) })
        }
        #expect(Set(results).count == 1, "every path the same bits")
    }

    @Test("the combined variance is the squared deviations from the batch mean, far from zero too")
    func varianceAccuracy() {
        // Channels centred far from zero with a small spread, where a sum of squares minus the
        // squared sum would lose every digit: the result must be the two-pass variance.
        let (n, c, s) = (7, 3, 45)
        let x = Self.values(n * c * s, seed: 3, special: false).enumerated().map { i, v in 1e4 * Float(i / s % c + 1) + v * 1e-3 }
        for path in GEMMKernelPath.supported {
            var mean = [Double](repeating: 0, count: c), variance = mean
            BatchNormPlanes.statistics(x, n: n, c: c, s: s, mean: &mean, variance: &variance, path: path)
            for ch in 0..<c {
                var values: [Double] = []
                for i in 0..<n { values += x[((i * c + ch) * s)..<((i * c + ch + 1) * s)].map { Double($0) } }
                let mu = values.reduce(0, +) / Double(values.count)
                let v = values.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(values.count)
                #expect(abs(mean[ch] - mu) <= 1e-12 * abs(mu), "\(path) channel \(ch): mean \(mean[ch]) vs \(mu)")
                #expect(v > 0 && abs(variance[ch] - v) <= 1e-9 * v, "\(path) channel \(ch): variance \(variance[ch]) vs \(v)")
            }
        }
    }
}
