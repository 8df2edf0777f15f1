import Foundation

/// An exclusive advisory lock on a file (flock), held until released or the process ends.
public final class FileLock {
    let fd: Int32
    public let path: String

    /// Takes the lock, or returns nil when another process holds it (`wait: false`).
    public init?(path: String, wait: Bool) {
        self.path = path
        fd = open(path, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { return nil }
        if flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            return nil
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
