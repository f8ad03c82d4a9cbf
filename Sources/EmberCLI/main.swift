import Ember

let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]).requiringGrad()
let w = Tensor([0.5, -1, 2, 0.25] as [Float], shape: [2, 2]).requiringGrad()
let loss = (x.matmul(w) * x).sum()
loss.backward()
print("loss", loss.doubles, "dx", x.grad!.doubles, "dw", w.grad!.doubles)
