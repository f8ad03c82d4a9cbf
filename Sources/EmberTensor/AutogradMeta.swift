import EmberStorage

/// Gradient-tracking state of a tensor, shared by all copies of that tensor value.
///
/// A leaf (user-created tensor or a `Parameter`'s value) has no `backward` and accumulates into
/// `grad`. A non-leaf was produced by an op while recording: `backward` maps the gradient of this
/// tensor to gradients of `inputs` (aligned; `nil` where an input needs none).
/// The backward engine lives in EmberAutograd; this type is here only because `Tensor` stores it.
package final class AutogradMeta {
    package var requiresGrad: Bool
    package var grad: Tensor?
    package var inputs: [AutogradMeta?]
    package var backward: ((Tensor) -> [Tensor?])?
    package let opName: String
    /// Set after backward released this node's graph, to give a clear error on a second backward.
    package var released = false
    /// A non-leaf that should keep its gradient (PyTorch's `retain_grad()`).
    package var retainsGrad = false

    package init(requiresGrad: Bool) {
        self.requiresGrad = requiresGrad
        self.inputs = []
        self.backward = nil
        self.opName = ""
    }

    package init(opName: String, inputs: [AutogradMeta?], backward: @escaping (Tensor) -> [Tensor?]) {
        self.requiresGrad = true
        self.inputs = inputs
        self.backward = backward
        self.opName = opName
    }

    /// Whether this is a leaf of the graph (no producing op).
    package var isLeaf: Bool { backward == nil && !released }
}
