import EmberAutograd
import EmberTensor
import EmberStorage

/// How a class-index loss sees its operands: the input as `[N, C, S]` (batch, classes, all
/// trailing dimensions flattened), the target as `[N, S]`.
struct ClassIndexLayout {
    var batch: Int
    var classes: Int
    var spatial: Int
    /// The shape of an unreduced loss: the target's shape (`[]` for an unbatched input).
    var lossShape: Shape
    /// The dimension of `input` that holds the classes.
    var classAxis: Int
}

/// Checks `input` against an int64 class-index `target` (and `weight`) in PyTorch's order, with
/// PyTorch's messages, and returns the layout. Target values are checked by the kernels.
func classIndexLayout(_ input: Tensor, _ target: Tensor, weight: Tensor?, op: String) -> ClassIndexLayout {
    let r = input.rank
    precondition(r >= 1, "\(op): Expected 1 or more dimensions (got 0) (input shape \(input.shape)); the input holds one score per class")
    precondition(target.dtype == .int64,
                 "\(op): expected target dtype to be Long or Byte, but got \(pyTorchTypeName(target.dtype)). Class-index targets are int64 (shape \(target.shape)); for class probabilities give a float target of the input's shape \(input.shape)")
    let targetBatch = target.rank == 0 ? 0 : target.shape[0]
    precondition(r == 1 || input.shape[0] == targetBatch,
                 "\(op): Expected input batch_size (\(input.shape[0])) to match target batch_size (\(targetBatch)). (input shape \(input.shape), target shape \(target.shape))")
    let multiTarget = "0D or 1D target tensor expected, multi-target not supported"
    switch r {
    case 1:
        precondition(target.rank <= 1, "\(op): \(multiTarget) (input shape \(input.shape), target shape \(target.shape))")
        precondition(target.rank == 0 || target.shape[0] == 1,
                     "\(op): For 1D input, 1D target must have size 1, but got target size: \(target.shape[0])")
    case 2:
        precondition(target.rank == 1, "\(op): \(multiTarget) (input shape \(input.shape), target shape \(target.shape))")
    case 4:
        precondition(target.rank == 3,
                     "\(op): only batches of spatial targets supported (3D tensors) but got targets of dimension: \(target.rank) (input shape \(input.shape))")
        precondition(target.shape[1] == input.shape[2] && target.shape[2] == input.shape[3],
                     "\(op): size mismatch (got input: \(input.shape) , target: \(target.shape)")
    default:
        var expected: Shape = [input.shape[0]]
        for d in 2..<r { expected.append(input.shape[d]) }
        precondition(target.shape == expected, "\(op): Expected target size \(expected), got \(target.shape) (input shape \(input.shape))")
    }
    let classes = r == 1 ? input.shape[0] : input.shape[1]
    if let weight {
        let fits = weight.rank == 1 && weight.count == classes
        precondition(fits, r <= 2
            ? "\(op): weight tensor should be defined either for all \(classes) classes or no classes but got weight tensor of shape: \(weight.shape)"
            : "\(op): weight tensor should be defined either for all or no classes (\(classes) classes, weight shape \(weight.shape))")
        precondition(weight.dtype == input.dtype,
                     "\(op): expected scalar type \(pyTorchTypeName(input.dtype)) but found \(pyTorchTypeName(weight.dtype)) (the class weights must have the input's dtype)")
        requireNoGradient(weight, argument: "weight", function: "nll_loss_forward", op: op)
    }
    if r == 1 { return ClassIndexLayout(batch: 1, classes: classes, spatial: 1, lossShape: [], classAxis: 0) }
    let batch = input.shape[0]
    var spatial = 1
    for d in 2..<r { spatial *= input.shape[d] }
    return ClassIndexLayout(batch: batch, classes: classes, spatial: spatial, lossShape: target.shape, classAxis: 1)
}

/// Reads the targets once: stops on the first one outside `[0, classes)` that is not
/// `ignoreIndex`, with PyTorch's "Target 5 is out of bounds.", and returns how many are not
/// ignored.
func checkClassTargets(_ target: Tensor, classes: Int, ignoreIndex: Int, op: String) -> (targets: Tensor, kept: Int) {
    let t = target.contiguousRaw
    let p = t.pointer(as: Int64.self)
    let ignore = Int64(ignoreIndex)
    var kept = 0
    for i in 0..<t.count {
        let v = p[i]
        if v == ignore { continue }
        if v < 0 || v >= Int64(classes) {
            preconditionFailure("\(op): Target \(v) is out of bounds. (classes are 0..<\(classes); ignoreIndex is \(ignoreIndex))")
        }
        kept += 1
    }
    return (t, kept)
}
