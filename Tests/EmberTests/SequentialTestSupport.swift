import Ember

extension Sequential {
    /// The layers run one at a time, each through its own `callAsFunction`: what `forward`'s
    /// fusions must equal bit for bit.
    func oneByOne(_ x: Tensor) -> Tensor {
        var y = x
        for layer in layers { y = layer(y) }
        return y
    }
}
