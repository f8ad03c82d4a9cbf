/// Ember's programmer-error check. It shadows the standard library's `precondition` inside the
/// package so that every check keeps its message in release builds: the standard one drops the
/// message under `-O` and prints only "Fatal error", which would leave users of a release build
/// without the operation, shapes and fix that Ember's messages give.
///
/// Like the standard `precondition`, the condition is checked in debug and release builds
/// (not in `-Ounchecked`), and the message is built only on failure.
@inlinable @inline(__always)
package func precondition(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = String(),
    file: StaticString = #fileID, line: UInt = #line
) {
    if _slowPath(!condition()) {
        fatalError(message(), file: file, line: line)
    }
}

/// Stops with `message`, in debug and release builds alike. See ``precondition(_:_:file:line:)``.
@inlinable
package func preconditionFailure(
    _ message: @autoclosure () -> String = String(), file: StaticString = #fileID, line: UInt = #line
) -> Never {
    fatalError(message(), file: file, line: line)
}
