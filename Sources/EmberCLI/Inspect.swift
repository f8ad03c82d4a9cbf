import ArgumentParser
import Ember
import Foundation

/// `ember inspect FILE`: what a safetensors file (weights or an `ember train` checkpoint) holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors (name, dtype, shape) and metadata keys of a safetensors file or checkpoint.")

    @Argument(help: "A .safetensors file: PyTorch weights, or a checkpoint written by 'ember train'.") var file: String

    func run() throws {
        try reportingErrors {
            let contents = try Safetensors.read(contentsOf: file)
            let listing = contents.listing
            let elements = listing.reduce(0) { $0 + $1.shape.elementCount }
            print("\(oneLine(file)): \(listing.count) tensors, \(elements) elements")
            let width = min(listing.map { oneLine($0.name).count }.max() ?? 0, 60)
            for entry in listing {
                let name = oneLine(entry.name)
                print("  \(name.padding(toLength: max(width, name.count), withPad: " ", startingAt: 0))  \(entry.storedDType.padding(toLength: 4, withPad: " ", startingAt: 0))  \(entry.shape)")
            }
            for key in contents.metadata.keys.sorted() {
                print("  metadata \(oneLine(key)): \(contents.metadata[key]!.utf8.count) bytes")
            }
        }
    }
}
