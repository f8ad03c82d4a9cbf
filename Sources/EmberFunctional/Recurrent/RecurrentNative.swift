import EmberAutograd
import EmberTensor
import EmberStorage

// The float32 cell passes on the AVX2 kernels of `CEmberKernels` (`activation_x86.c`, reached
// through `ActivationKernels`): the same operations as the Swift passes in the same order, eight
// lanes per AVX2 operation (Swift's SIMD compiles to SSE here), one call per step and range of
// units. They give bitwise the Swift passes' results (tested in `RNNNativeKernelTests`), so which
// one runs never changes a value.
//
// The kernels run along the batch; they take the layouts the sequences use (gate, state and tape
// rows contiguous, biases as broadcast columns, `h` any strides). With fewer than 4 batch columns
// and more units than columns they would fill at most 3 of 8 lanes, so the Swift passes, which
// then run along the units, are used instead (not measured against each other).

extension Float {
    /// Whether the native passes run for a `rows x cols` step block.
    @inline(__always) static func useNative(rows: Int, cols: Int) -> Bool {
        ActivationKernels.isAvailable && (cols >= 4 || cols >= rows)
    }

    @inline(__always) static func nativeLSTMForward(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<Float>, bias: Block<Float>, activations: Block<Float>?,
        cPrev: Block<Float>, cOut: Block<Float>, tanhC: Block<Float>, h: Block<Float>
    ) -> Bool {
        guard useNative(rows: rows, cols: N), gates.colStride == 1, bias.rowStride == 1, bias.colStride == 0,
              activations.map({ $0.colStride == 1 }) ?? true, cPrev.colStride == 1, cOut.colStride == 1,
              tanhC.colStride == 1, cPrev.rowStride == cOut.rowStride, tanhC.rowStride == cOut.rowStride
        else { return false }
        ActivationKernels.lstmForward(
            rows: rows, cols: N, gateRows: H, gates: gates.base, gateStride: gates.rowStride, bias: bias.base,
            activations: activations?.base, activationStride: activations?.rowStride ?? 0, cPrev: cPrev.base,
            cOut: cOut.base, tanhC: tanhC.base, stateStride: cOut.rowStride,
            h: h.base, hRowStride: h.rowStride, hColStride: h.colStride)
        return true
    }

    @inline(__always) static func nativeLSTMBackward(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<Float>, cPrev: Block<Float>, tanhC: Block<Float>,
        dH: Block<Float>, dC: Block<Float>, dGates: Block<Float>
    ) -> Bool {
        let stride = gates.rowStride
        guard useNative(rows: rows, cols: N), gates.colStride == 1, cPrev.colStride == 1, tanhC.colStride == 1,
              dH.colStride == 1, dC.colStride == 1, dGates.colStride == 1, cPrev.rowStride == stride,
              tanhC.rowStride == stride, dH.rowStride == stride, dC.rowStride == stride
        else { return false }
        ActivationKernels.lstmBackward(
            rows: rows, cols: N, gateRows: H, gates: gates.base, cPrev: cPrev.base, tanhC: tanhC.base, dH: dH.base,
            dC: dC.base, stride: stride, dGates: dGates.base, dGateStride: dGates.rowStride)
        return true
    }

    @inline(__always) static func nativeGRUForward(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<Float>, inputBias: Block<Float>, hiddenGates: Block<Float>?,
        hiddenBias: Block<Float>, hPrev: Block<Float>?, activations: Block<Float>?, hiddenNew: Block<Float>, h: Block<Float>
    ) -> Bool {
        guard useNative(rows: rows, cols: N), gates.colStride == 1, inputBias.rowStride == 1, inputBias.colStride == 0,
              hiddenBias.rowStride == 1, hiddenBias.colStride == 0, hiddenGates.map({ $0.colStride == 1 }) ?? true,
              activations.map({ $0.colStride == 1 }) ?? true, hiddenNew.colStride == 1
        else { return false }
        ActivationKernels.gruForward(
            rows: rows, cols: N, gateRows: H, gates: gates.base, gateStride: gates.rowStride, inputBias: inputBias.base,
            hiddenGates: hiddenGates?.base, hiddenGateStride: hiddenGates?.rowStride ?? 0, hiddenBias: hiddenBias.base,
            hPrev: hPrev?.base, hPrevRowStride: hPrev?.rowStride ?? 0, hPrevColStride: hPrev?.colStride ?? 0,
            activations: activations?.base, activationStride: activations?.rowStride ?? 0,
            hiddenNew: hiddenNew.base, hiddenNewStride: hiddenNew.rowStride,
            h: h.base, hRowStride: h.rowStride, hColStride: h.colStride)
        return true
    }

    @inline(__always) static func nativeRNNForward(
        rows: Int, cols: Int, pre: Block<Float>, bias: Block<Float>, relu: Bool, h: Block<Float>
    ) -> Bool {
        guard useNative(rows: rows, cols: cols), pre.colStride == 1, bias.rowStride == 1, bias.colStride == 0
        else { return false }
        ActivationKernels.rnnForward(rows: rows, cols: cols, pre: pre.base, preStride: pre.rowStride, bias: bias.base,
                                     relu: relu, h: h.base, hRowStride: h.rowStride, hColStride: h.colStride)
        return true
    }

    @inline(__always) static func nativeAdd(rows: Int, cols: Int, _ source: Block<Float>, into target: Block<Float>) -> Bool {
        guard useNative(rows: rows, cols: cols), target.colStride == 1 else { return false }
        ActivationKernels.addBlock(rows: rows, cols: cols, source.base, rowStride: source.rowStride, colStride: source.colStride,
                                   into: target.base, dstRowStride: target.rowStride)
        return true
    }
}
