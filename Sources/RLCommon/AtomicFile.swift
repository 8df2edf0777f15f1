import Foundation

/// Errors from writing result files.
public enum AtomicWriteError: Error, CustomStringConvertible {
    case cannotCreate(path: String, errno: Int32)
    case writeFailed(path: String, errno: Int32)
    case renameFailed(from: String, to: String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotCreate(let p, let e): "cannot create \(p): \(String(cString: strerror(e)))"
        case .writeFailed(let p, let e): "cannot write \(p): \(String(cString: strerror(e)))"
        case .renameFailed(let a, let b, let e):
            "cannot rename \(a) to \(b): \(String(cString: strerror(e)))"
        }
    }
}

/// Writes files so that a reader sees either the old file or the whole new one, never a
/// torn write: data goes to a temporary file in the same directory, is fsynced, and is
/// renamed over the destination; the directory is fsynced afterwards.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws(AtomicWriteError) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/.\(url.lastPathComponent).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .cannotCreate(path: tmp, errno: errno) }
        var ok = true
        var err: Int32 = 0
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, base + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    ok = false; err = errno; return
                }
                off += n
            }
        }
        if ok && fsync(fd) != 0 { ok = false; err = errno }
        close(fd)
        guard ok else {
            unlink(tmp)
            throw .writeFailed(path: tmp, errno: err)
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw .renameFailed(from: tmp, to: path, errno: e)
        }
        let dfd = open(dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
