import Ember

/// The Transformer workloads of issue #13: one `TransformerEncoderLayer(dModel 256, nhead 8,
/// dimFeedforward 1024, dropout 0.1, batchFirst)` at batch 16, sequence 128 (a training step with
/// an MSE loss and SGD with momentum, and an eval forward without gradient, where PyTorch takes its
/// fused fast path), and scaled dot-product attention alone at sequence 512 in eval.
/// `Tools/bench/torch_workloads.py` builds the same. FLOP counts are those of the matrix products.
func transformerWorkloads() -> [Workload] {
    let (batch, sequence, width, heads, feedforward) = (16, 128, 256, 8, 1024)
    let forward = encoderLayerFlops(batch: batch, sequence: sequence, width: width, feedforward: feedforward)
    func layer(_ g: Generator) -> TransformerEncoderLayer {
        withGenerator(g) {
            TransformerEncoderLayer(dModel: width, nhead: heads, dimFeedforward: feedforward, dropout: 0.1, batchFirst: true)
        }
    }
    var list: [Workload] = []
    // Backward repeats each product twice (the input's and the weight's gradients).
    list.append(Workload(key: "transformer.encoder_train_b16_s128", group: "transformer",
                         title: "TransformerEncoderLayer 256/8/1024: training step, batch 16 x 128",
                         unit: .gflops(flops: 3 * forward)) {
        let g = Generator(seed: 0)
        let model = layer(g)
        let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
        let x = Tensor.normal([batch, sequence, width], generator: g)
        let target = Tensor.normal([batch, sequence, width], generator: g)
        return {
            optimizer.zeroGrad()
            let loss = mseLoss(model(x), target: target)
            loss.backward()
            optimizer.step()
            consume(loss)
        }
    })
    list.append(Workload(key: "transformer.encoder_eval_b16_s128", group: "transformer",
                         title: "TransformerEncoderLayer 256/8/1024: eval forward, batch 16 x 128",
                         unit: .gflops(flops: forward)) {
        let g = Generator(seed: 0)
        let model = layer(g)
        model.eval()
        let x = Tensor.normal([batch, sequence, width], generator: g)
        return { withNoGrad { consume(model(x)) } }
    })
    // Attention alone: q, k, v [4, 8, 512, 32]; QK^T and the weighted sum of V.
    let (b, h, l, e) = (4, 8, 512, 32)
    list.append(Workload(key: "transformer.attention_eval_s512", group: "transformer",
                         title: "scaled dot-product attention, 4 x 8 heads x 512 x 32: eval (no grad)",
                         unit: .gflops(flops: 4 * Double(b * h * l * l * e))) {
        let g = Generator(seed: 0)
        let q = Tensor.normal([b, h, l, e], generator: g)
        let k = Tensor.normal([b, h, l, e], generator: g)
        let v = Tensor.normal([b, h, l, e], generator: g)
        return { withNoGrad { consume(scaledDotProductAttention(query: q, key: k, value: v)) } }
    })
    return list
}

/// FLOP of one encoder layer's forward products: the q, k, v and output projections
/// (`8 B L d²`), the scores and the weighted sum (`4 B L² d`), the feed-forward block (`4 B L d ff`).
func encoderLayerFlops(batch: Int, sequence: Int, width: Int, feedforward: Int) -> Double {
    let (b, l, d, f) = (Double(batch), Double(sequence), Double(width), Double(feedforward))
    return 8 * b * l * d * d + 4 * b * l * l * d + 4 * b * l * d * f
}
