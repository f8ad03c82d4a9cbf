import EmberTensor

/// Runs `body` on `inputs` without keeping its intermediate results for backward: backward runs
/// `body` again, with recording, to get them (activation checkpointing: memory for compute).
///
/// - Parameters:
///   - inputs: the segment's tensor inputs. Everything the segment differentiates through must be
///     an input or a leaf (a parameter); a tensor computed earlier with recording on and
///     captured by `body` instead of passed in is not supported.
///   - preserveRNGState: replay the random draws of the first run in the second (default): a
///     dropout inside the segment applies exactly the mask of the first run, so gradients are
///     bitwise those without checkpointing. Every generator the first run drew from is reset to
///     where it was, and set back afterwards, so the streams continue as if nothing ran twice.
///   - body: the segment; it must compute the same function both times (same modes, no other
///     state changes).
/// - Returns: `body(inputs)`; it requires a gradient when an input or a parameter the segment
///   used does.
///
/// With recording off (`withNoGrad`, inference) the segment simply runs: nothing is recorded or
/// recomputed.
///
/// Cost: the segment's forward runs twice in training; the first run records and then drops its
/// graph, so its intermediate results live only while it runs. Peak memory of a deep network
/// split into `k` segments falls from all `n` layers' activations to about `n / k + k`.
///
/// PyTorch parity: `torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False,
/// preserve_rng_state=True)`: parameters used inside get their gradients whether or not the
/// inputs require one.
public func checkpoint(_ inputs: [Tensor], preserveRNGState: Bool = true,
                       _ body: @escaping ([Tensor]) -> Tensor) -> Tensor {
    guard GradMode.isEnabled else { return body(inputs) }
    let journal = preserveRNGState ? RandomJournal() : nil
    let probe: Tensor = journal.map { j in Generator.recording(into: j) { body(inputs) } } ?? body(inputs)
    guard let root = probe.autograd, root.requiresGrad, root.hasBackward else { return probe }
    // The leaves the segment reached (parameters), found from the first run's graph, which is
    // dropped when this function returns.
    let boundary = Set(inputs.compactMap { $0.autograd.map(ObjectIdentifier.init) })
    var leaves: [AutogradMeta] = []
    var seen = Set<ObjectIdentifier>()
    var stack = [root]
    while let node = stack.popLast() {
        for input in node.inputs {
            guard let input, seen.insert(ObjectIdentifier(input)).inserted,
                  !boundary.contains(ObjectIdentifier(input)) else { continue }
            if input.hasBackward { stack.append(input) } else if input.requiresGrad { leaves.append(input) }
        }
    }
    let tracked = inputs.map(\.tracksGrad)
    let metas = inputs.map { $0.tracksGrad ? $0.autograd : nil } + leaves.map { Optional($0) }
    var out = probe.detached()
    out.record("checkpoint", inputMetas: metas, twice: false) { g in
        let replayed = journal?.rewind()
        defer { replayed.map { RandomJournal.restore($0) } }
        let xs = zip(inputs, tracked).map { x, t in t ? x.detached().requiringGrad() : x.detached() }
        let y = withGrad { body(xs) }
        guard let recomputed = y.autograd, recomputed.requiresGrad else { return metas.map { _ in nil } }
        precondition(y.shape == g.shape,
                     "checkpoint: the segment returned shape \(y.shape) when run again in backward, but \(g.shape) the first time; it must compute the same function both times")
        let targets = zip(xs, tracked).compactMap { x, t in t ? x.autograd : nil } + leaves
        let grads = BackwardSweep(retainGraph: false, createGraph: false, targets: targets)
            .run(roots: [(recomputed, g)])
        var result: [Tensor?] = []
        var k = 0
        for t in tracked {
            if t { result.append(grads[k]); k += 1 } else { result.append(nil) }
        }
        return result + grads[k...]
    }
    return out
}

/// Checkpoints a segment with one input. See ``checkpoint(_:preserveRNGState:_:)``.
public func checkpoint(_ input: Tensor, preserveRNGState: Bool = true,
                       _ body: @escaping (Tensor) -> Tensor) -> Tensor {
    checkpoint([input], preserveRNGState: preserveRNGState) { body($0[0]) }
}
