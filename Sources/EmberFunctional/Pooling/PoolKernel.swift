import EmberStorage
import EmberTensor

/// The loops of max and average pooling over ``PoolWindows``, plane by plane.
enum PoolKernel {
    /// Visits every output position `(index, window)` of one plane.
    @inline(__always)
    private static func forEachWindow(_ w: PoolWindows, _ body: (Int, _ d: (Int, Int), _ h: (Int, Int), _ x: (Int, Int), Int) -> Void) {
        var o = 0
        for od in 0..<w.output[0] {
            for oh in 0..<w.output[1] {
                for ow in 0..<w.output[2] {
                    let count = w.paddedLength[0][od] * w.paddedLength[1][oh] * w.paddedLength[2][ow]
                    body(o, (w.start[0][od], w.end[0][od]), (w.start[1][oh], w.end[1][oh]), (w.start[2][ow], w.end[2][ow]), count)
                    o += 1
                }
            }
        }
    }

    /// Max over each window; `indices` gets the flat position within the plane of the maximum.
    /// As in PyTorch, a later element replaces the maximum when it is greater or NaN (so NaN
    /// propagates, the last NaN's position wins and ties keep the first), and the position starts
    /// at the window's first element.
    static func max<T: TensorFloat>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int64>,
                                    planes: Int, _ w: PoolWindows) {
        let iH = w.input[1], iW = w.input[2], inPlane = w.inputPlane, outPlane = w.outputPlane
        let sD = w.step[0], sH = w.step[1], sW = w.step[2]
        for p in 0..<planes {
            let src = x + p * inPlane, dst = y + p * outPlane, idx = indices + p * outPlane
            forEachWindow(w) { o, d, h, c, _ in
                var best = -T.infinity
                var at = (d.0 * iH + h.0) * iW + c.0
                for id in stride(from: d.0, to: d.1, by: sD) {
                    for ih in stride(from: h.0, to: h.1, by: sH) {
                        let row = (id * iH + ih) * iW
                        for iw in stride(from: c.0, to: c.1, by: sW) {
                            let v = src[row + iw]
                            if v > best || v.isNaN { best = v; at = row + iw }
                        }
                    }
                }
                dst[o] = best
                idx[o] = Int64(at)
            }
        }
    }

    /// Mean over each window, divided by `divisor(clippedCount, paddedCount)`.
    static func average<T: TensorFloat>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, planes: Int, _ w: PoolWindows,
                                        divisor: (Int, Int) -> Int) {
        let iH = w.input[1], iW = w.input[2], inPlane = w.inputPlane, outPlane = w.outputPlane
        for p in 0..<planes {
            let src = x + p * inPlane, dst = y + p * outPlane
            forEachWindow(w) { o, d, h, c, padded in
                let clipped = (d.1 - d.0) * (h.1 - h.0) * (c.1 - c.0)
                if clipped == 0 { dst[o] = 0; return }
                var sum: T = 0
                for id in d.0..<d.1 {
                    for ih in h.0..<h.1 {
                        let row = (id * iH + ih) * iW
                        for iw in c.0..<c.1 { sum += src[row + iw] }
                    }
                }
                dst[o] = sum / T(divisor(clipped, padded))
            }
        }
    }

    /// Gradient of ``average``: each output's gradient over its divisor, added to its window.
    static func averageBackward<T: TensorFloat>(_ g: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, planes: Int, _ w: PoolWindows,
                                                divisor: (Int, Int) -> Int) {
        let iH = w.input[1], iW = w.input[2], inPlane = w.inputPlane, outPlane = w.outputPlane
        for p in 0..<planes {
            let src = g + p * outPlane, dst = dx + p * inPlane
            forEachWindow(w) { o, d, h, c, padded in
                let clipped = (d.1 - d.0) * (h.1 - h.0) * (c.1 - c.0)
                if clipped == 0 { return }
                let v = src[o] / T(divisor(clipped, padded))
                for id in d.0..<d.1 {
                    for ih in h.0..<h.1 {
                        let row = (id * iH + ih) * iW
                        for iw in c.0..<c.1 { dst[row + iw] += v }
                    }
                }
            }
        }
    }

    /// Adds `g[o]` at `indices[o]` of each plane (the gradient of ``max``), or with `assigning`
    /// writes it there (max unpooling: an element several windows picked gets its value once).
    static func scatter<T: TensorFloat>(_ g: UnsafePointer<T>, _ indices: UnsafePointer<Int64>, _ dx: UnsafeMutablePointer<T>,
                                        planes: Int, from: Int, to: Int, assigning: Bool = false) {
        for p in 0..<planes {
            let src = g + p * from, idx = indices + p * from, dst = dx + p * to
            if assigning {
                for o in 0..<from { dst[Int(idx[o])] = src[o] }
            } else {
                for o in 0..<from { dst[Int(idx[o])] += src[o] }
            }
        }
    }
}
