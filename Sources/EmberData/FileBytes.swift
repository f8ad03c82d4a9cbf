import Foundation

/// Reading whole files for the parsers, with failures as ``DataError/unreadable(file:reason:)``.
enum FileBytes {
    /// A copy in memory of the contents of the file at `path`.
    ///
    /// Never memory-mapped: if another process truncated a mapped file while it is parsed, reading
    /// the vanished pages would kill the process with SIGBUS. A copy holds the file as it was when
    /// read; a file replaced by rename (``AtomicFile``'s way) is read either whole old or whole new,
    /// since the open descriptor keeps the old file.
    static func read(_ path: String) throws(DataError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(file: path, reason: reason(error))
        }
    }

    /// A short reason for a Foundation read error.
    private static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
            return String(cString: strerror(code.rawValue))
        }
        if ns.domain == NSCocoaErrorDomain {
            switch ns.code {
            case NSFileReadNoSuchFileError: return "No such file or directory"
            case NSFileReadNoPermissionError: return "Permission denied"
            default: break
            }
        }
        return error.localizedDescription
    }

    /// Runs `body` over the bytes of `data`.
    static func withBytes<R>(
        _ data: Data, _ body: (UnsafeRawBufferPointer) throws(DataError) -> R
    ) throws(DataError) -> R {
        let result: Result<R, DataError> = data.withUnsafeBytes { raw in
            Result { () throws(DataError) in try body(raw) }
        }
        return try result.get()
    }
}

/// Short renderings of file content for error messages.
enum Render {
    /// Up to `limit` bytes as hex: `0x93 0x4E 0x55`.
    static func hex(_ bytes: some Sequence<UInt8>, limit: Int = 8) -> String {
        let all = Array(bytes)
        let shown = all.prefix(limit).map { "0x" + String($0, radix: 16, uppercase: true).leftPadded(to: 2) }
        return shown.joined(separator: " ") + (all.count > limit ? " ..." : "")
    }

    /// Text in double quotes, cut to `limit` characters, with control characters escaped.
    static func quoted(_ text: String, limit: Int = 40) -> String {
        var out = ""
        for (i, c) in text.enumerated() {
            if i == limit { out += "..."; break }
            switch c {
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.append(c)
            }
        }
        return "\"" + out + "\""
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
