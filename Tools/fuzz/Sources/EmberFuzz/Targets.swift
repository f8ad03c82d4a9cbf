import Ember
import Foundation

/// The fuzz targets: each feeds one input to a reader (and what a user does next with its result)
/// and accepts any typed error. A trap, a sanitizer report, a leak or a hang is a finding.
enum FuzzTarget: String, CaseIterable {
    case safetensors, checkpoint, csv, npy, idx

    func run(_ data: Data) {
        switch self {
        case .safetensors: Self.safetensors(data)
        case .checkpoint: Self.checkpoint(data)
        case .csv: Self.csv(data)
        case .npy: Self.npy(data)
        case .idx: Self.idx(data)
        }
    }

    /// `Safetensors.decode`, then every tensor's values (touches all the bytes it copied).
    static func safetensors(_ data: Data) {
        guard let contents = try? Safetensors.decode(data, path: "fuzz.safetensors") else { return }
        for name in contents.names {
            guard let t = contents.tensors[name] else { preconditionFailure("name '\(name)' without a tensor") }
            _ = HostTensor(t)
        }
    }

    /// `Checkpoint.decode`, then a restore into the small model below, then one training step of
    /// the restored optimizer and schedule (a restore must not accept what training traps on).
    static func checkpoint(_ data: Data) {
        guard let checkpoint = try? Checkpoint.decode(data, path: "fuzz.ckpt") else { return }
        let run = SmallRun()
        guard (try? checkpoint.restore(model: run.model, optimizer: run.optimizer, scheduler: run.schedule,
                                       generator: run.generator)) != nil else { return }
        run.step()
    }

    /// `CSV.decode` with options taken from the first byte, then a dataset and a loader over it.
    static func csv(_ data: Data) {
        guard let first = data.first else { return }
        let hasHeader = first & 1 != 0
        let delimiter: Character = [",", ";", "\t", "|"][Int(first >> 1) & 3]
        let labelChoice = Int(first >> 3) & 3
        let label: CSVColumn? = switch labelChoice {
        case 0: nil
        case 1: .index(-1)
        case 2: .index(0)
        default: hasHeader ? .name("label") : .index(1)
        }
        let labels: CSVLabels = first & 0x20 != 0 ? .categories : .integers
        let dtype: DType = first & 0x40 != 0 ? .float64 : .float32
        let allowNonFinite = first & 0x80 != 0
        guard let table = try? CSV.decode(data.dropFirst(), file: "fuzz.csv", hasHeader: hasHeader, delimiter: delimiter,
                                          label: label, labels: labels, dtype: dtype, allowNonFinite: allowNonFinite)
        else { return }
        guard table.labels != nil, table.rowCount > 0 else { return }
        for batch in DataLoader(table.dataset(), batchSize: 3, prefetch: 0) {
            _ = (batch.inputs.shape, batch.labels.shape)
        }
    }

    /// `NPY.decode` into every dtype, then a tensor from the result.
    static func npy(_ data: Data) {
        for dtype in [nil, DType.float32, .float64, .int64, .bool] {
            if let host = try? NPY.decode(data, file: "fuzz.npy", as: dtype, allowNonFinite: data.count % 2 == 0) {
                _ = Tensor(host)
            }
        }
    }

    /// `IDX.decode` into every dtype, then a tensor from the result.
    static func idx(_ data: Data) {
        for dtype in [nil, DType.float32, .float64, .int64, .bool] {
            if let host = try? IDX.decode(data, file: "fuzz.idx", as: dtype, allowNonFinite: data.count % 2 == 0) {
                _ = Tensor(host)
            }
        }
    }
}

/// A small model with parameters, BatchNorm buffers and a pinned Dropout, its Adam optimizer, a
/// StepLR schedule and a generator: what the checkpoint target restores into.
struct SmallRun {
    let model: Sequential
    let optimizer: Adam
    let schedule: StepLR
    let generator: Generator

    init() {
        generator = Generator(seed: 1)
        (model, optimizer, schedule) = withGenerator(generator) {
            let model = Sequential(Linear(2, 2), BatchNorm1d(2), Dropout(0.5))
            let optimizer = Adam(model.parameters(), lr: 0.01)
            return (model, optimizer, StepLR(optimizer, stepSize: 2, gamma: 0.5))
        }
        model.layers[2].pin(.evaluation)
    }

    /// One training step on a fixed batch.
    func step() {
        withGenerator(generator) {
            optimizer.zeroGrad()
            crossEntropy(model(Tensor([1, 2, -1, 0.5] as [Float], shape: [2, 2])), target: Tensor([0, 1] as [Int64])).backward()
            optimizer.step()
            schedule.step()
        }
    }

    /// A checkpoint of this run after `steps` training steps (a seed for the checkpoint target).
    func checkpoint(afterSteps steps: Int) -> Checkpoint {
        for _ in 0..<steps { step() }
        return Checkpoint(model: model, optimizer: optimizer, scheduler: schedule, generator: generator, epoch: steps, step: steps)
    }
}
