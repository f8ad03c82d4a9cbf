import Testing

/// The standard error a failed exit test printed (empty when the test did not run or captured
/// nothing). Use with `#expect(processExitsWith: .failure, observing: [\.standardErrorContent])`.
public func standardErrorText(_ result: ExitTest.Result?) -> String {
    String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
}
