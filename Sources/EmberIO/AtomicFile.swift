import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that a reader only ever sees the old file or the complete new one.
///
/// The bytes go to a temporary file in the destination's folder, named
/// `.<name>.ember-tmp-<pid>-<random>`, are flushed to disk (`fsync`), and the temporary file is
/// renamed over the destination (`rename` is atomic within one file system). On any failure the
/// temporary file is removed before the error is thrown. A process killed mid-write (SIGKILL,
/// power loss) can leave a temporary file behind: ``removeLeftovers(in:)`` removes those whose
/// writing process no longer runs, and `ember train` calls it when it starts.
///
/// PyTorch parity: `torch.save` writes in place, so an interrupted save truncates the previous
/// checkpoint; Ember never does.
public enum AtomicFile {
    /// The text every temporary file name holds.
    public static let temporaryMarker = ".ember-tmp-"

    /// The temporary files this process is writing, and whether ``abandonWrites()`` was called.
    private static let writes = Mutex<(temporaries: Set<String>, abandoned: Bool)>(([], false))

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws(AtomicFileError) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/" else { throw .unwritable(path: path, reason: "not a file name") }
        let unique = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let temporary = (folder as NSString).appendingPathComponent(".\(name)\(temporaryMarker)\(getpid())-\(unique)")
        // Created and registered in one step, so ``abandonWrites()`` either removes it or keeps it
        // from being created.
        let opened: (fd: Int32, error: String?, abandoned: Bool) = writes.withLock { state in
            if state.abandoned { return (-1, nil, true) }
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return (fd, String(cString: strerror(errno)), false) }
            state.temporaries.insert(temporary)
            return (fd, nil, false)
        }
        if opened.abandoned { waitForExit() }
        if let error = opened.error { throw .unwritable(path: path, reason: error) }
        let fd = opened.fd
        var failure: String?
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        if close(fd) != 0, failure == nil { failure = String(cString: strerror(errno)) }
        // Renamed (or removed) and unregistered in one step: after ``abandonWrites()`` removed the
        // file, nothing renames or re-creates it.
        let abandoned: Bool = writes.withLock { state in
            if state.abandoned { return true }
            if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
            if failure != nil { unlink(temporary) }
            state.temporaries.remove(temporary)
            return false
        }
        if abandoned { waitForExit() }
        if let failure { throw .unwritable(path: path, reason: failure) }
    }

    /// Removes the temporary files of the writes this process has under way and keeps any write
    /// from creating or renaming one afterwards (such a write waits for the process to end): a
    /// process that exits at once on a signal calls it first, so an interrupted write leaves
    /// neither a temporary file nor a new file behind, whichever step it was at.
    public static func abandonWrites() {
        writes.withLock { state in
            state.abandoned = true
            for temporary in state.temporaries { unlink(temporary) }
            state.temporaries.removeAll()
        }
    }

    /// Parks a write that ``abandonWrites()`` stopped until the process exits.
    private static func waitForExit() -> Never {
        while true { sleep(60) }
    }

    /// Removes temporary files left in `directory` by writers that no longer run (killed
    /// mid-write) and by this process (called when it stops a write it interrupted); files of
    /// other running processes are kept. Returns the removed paths.
    @discardableResult
    public static func removeLeftovers(in directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let marker = name.range(of: temporaryMarker) else { continue }
            let tail = name[marker.upperBound...]
            guard let pidText = tail.split(separator: "-").first, let pid = Int32(pidText) else { continue }
            if pid != getpid() && kill(pid, 0) == 0 { continue }  // its writer still runs
            let path = (directory as NSString).appendingPathComponent(name)
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// Why a file could not be written atomically.
public enum AtomicFileError: Error, Equatable, CustomStringConvertible {
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unwritable(let path, let reason): "cannot write '\(path)': \(reason)"
        }
    }
}
