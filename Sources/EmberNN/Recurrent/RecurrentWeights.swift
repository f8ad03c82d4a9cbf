import EmberAutograd
import EmberFunctional

/// The parameters of one direction of one layer of ``RNN``, ``LSTM`` or ``GRU``.
///
/// Shapes, with `G` = 1 (RNN), 4 (LSTM) or 3 (GRU) times `hiddenSize`, `P` the projection size
/// (LSTM with `projSize > 0`) or `hiddenSize`, and `D` the number of directions:
/// - `weightIH`: `[G, inputSize]` in layer 0, `[G, D * P]` above;
/// - `weightHH`: `[G, P]`;
/// - `biasIH`, `biasHH`: `[G]` (`nil` with `bias: false`);
/// - `weightHR`: `[P, hiddenSize]` (LSTM with a projection only).
///
/// PyTorch parity: `weight_ih_l{k}[_reverse]`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`,
/// `weight_hr_l{k}`.
public struct RecurrentWeightSet {
    public let weightIH: Parameter
    public let weightHH: Parameter
    public let biasIH: Parameter?
    public let biasHH: Parameter?
    public let weightHR: Parameter?

    /// The tensors the fused layer op takes.
    var values: RecurrentDirectionWeights {
        RecurrentDirectionWeights(weightIH: weightIH.value, weightHH: weightHH.value, biasIH: biasIH?.value,
                                  biasHH: biasHH?.value, weightHR: weightHR?.value)
    }
}

/// All layers' parameters, named and ordered as PyTorch registers them: per layer, the forward
/// direction then `_reverse`, each as `weight_ih, weight_hh, bias_ih, bias_hh, weight_hr`.
///
/// Module discovery reads a struct through its mirror; this one supplies a custom mirror whose
/// labels are PyTorch's names (`weight_ih_l0`, `bias_hh_l1_reverse`), and the module holds it
/// `@Flattened`, so the names appear without a prefix and `stateDict()` keys and order are
/// PyTorch's.
struct RecurrentParameterTable: CustomReflectable {
    /// Layer-major, forward before reverse: entry `layer * directions + direction`.
    var sets: [RecurrentWeightSet]
    var directions: Int

    var customMirror: Mirror {
        var children: [Mirror.Child] = []
        for (index, set) in sets.enumerated() {
            let suffix = "_l\(index / directions)" + (index % directions == 1 ? "_reverse" : "")
            children.append((label: "weight_ih" + suffix, value: set.weightIH))
            children.append((label: "weight_hh" + suffix, value: set.weightHH))
            if let b = set.biasIH { children.append((label: "bias_ih" + suffix, value: b)) }
            if let b = set.biasHH { children.append((label: "bias_hh" + suffix, value: b)) }
            if let w = set.weightHR { children.append((label: "weight_hr" + suffix, value: w)) }
        }
        return Mirror(self, children: children, displayStyle: .struct)
    }
}
