import Ember
import Foundation

/// The program's entry point.
///
/// Built with `-DEMBER_FUZZ` and `-sanitize=fuzzer` (`Tools/fuzz/build.sh`), it hands control to
/// libFuzzer (`LLVMFuzzerRunDriver`), which takes libFuzzer's usual arguments and calls
/// `LLVMFuzzerTestOneInput` for each input. Built plainly (`swift build`), it replays files and
/// writes seeds:
///
///     EMBER_FUZZ_TARGET=npy EmberFuzz FILE...         runs each file as one input
///     EmberFuzz --write-checkpoint-seeds DIR          writes checkpoints of the small model
@main
struct EmberFuzzMain {
    static func main() throws {
        #if EMBER_FUZZ
        exit(runFuzzer())
        #else
        var args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--write-checkpoint-seeds", args.count == 2 {
            for steps in [0, 1, 3] {
                let path = (args[1] as NSString).appendingPathComponent("small-\(steps)-steps.safetensors")
                try SmallRun().checkpoint(afterSteps: steps).write(to: path)
                print("wrote \(path)")
            }
            return
        }
        args.removeAll { $0.hasPrefix("-") }
        for path in args {
            selectedTarget.run(try Data(contentsOf: URL(fileURLWithPath: path)))
            print("ok \(path)")
        }
        #endif
    }
}
