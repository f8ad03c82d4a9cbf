import Ember
import Foundation
import Testing

// Schedule states in checkpoints: the same bytes on every run (sorted keys), and a round trip
// that keeps every field, infinite values included.

@Suite struct CheckpointScheduleTests {
    @Test func scheduleStateIsEncodedWithSortedKeys() {
        let optimizer = SGD(Linear(3, 2).parameters(), lr: 0.1)
        let cosine = CosineAnnealingLR(optimizer, tMax: 30)
        cosine.step()
        let text = String(decoding: Checkpoint.encodeSchedule(cosine), as: UTF8.self)
        // Every object's keys in byte order (Foundation's default order varies between processes).
        let keys = text.matches(of: /"([A-Za-z_]+)":/).map { String($0.output.1) }
        #expect(keys == ["etaMin", "progress", "_last_lr", "_step_count", "base_lrs", "last_epoch", "tMax"], "\(text)")
    }

    @Test func scheduleStateSurvivesACheckpointFile() throws {
        let model = Linear(3, 2)
        let optimizer = SGD(model.parameters(), lr: 0.1)
        let cosine = CosineAnnealingLR(optimizer, tMax: 10, etaMin: 0.001)
        for _ in 0..<4 { cosine.step() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-schedule-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: model, optimizer: optimizer, scheduler: cosine, generator: nil, epoch: 4, step: 4).write(to: path)
        let fresh = CosineAnnealingLR(SGD(Linear(3, 2).parameters(), lr: 0.1), tMax: 3)
        try Checkpoint.read(from: path).restore(model: Linear(3, 2), optimizer: nil, scheduler: fresh, generator: nil)
        #expect(fresh.state() == cosine.state())
    }

    /// `ReduceLROnPlateau` (stepped on a metric, so not an `LRScheduler`) saves and restores too,
    /// its initial infinite best value included.
    @Test func plateauStateSurvivesACheckpointFile() throws {
        let model = Linear(3, 2)
        let optimizer = SGD(model.parameters(), lr: 0.1)
        let plateau = ReduceLROnPlateau(optimizer, patience: 1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-plateau-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fresh = ReduceLROnPlateau(SGD(Linear(3, 2).parameters(), lr: 0.1), patience: 5)
        try Checkpoint(model: model, optimizer: optimizer, scheduler: plateau, generator: nil, epoch: 0, step: 0).write(to: path)
        try Checkpoint.read(from: path).restore(model: Linear(3, 2), optimizer: nil, scheduler: fresh, generator: nil)
        #expect(fresh.state() == plateau.state())
        #expect(fresh.state().best == .infinity)
        for metric in [1.0, 0.5, 0.6, 0.7, 0.8] { plateau.step(metric: metric) }  // a finite best, a reduction
        try Checkpoint(model: model, optimizer: optimizer, scheduler: plateau, generator: nil, epoch: 5, step: 5).write(to: path)
        try Checkpoint.read(from: path).restore(model: Linear(3, 2), optimizer: nil, scheduler: fresh, generator: nil)
        #expect(fresh.state() == plateau.state())
        #expect(fresh.state().lastLearningRates == plateau.lastLearningRates)
    }
}
