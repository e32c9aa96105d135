import Foundation
import LetheCore

/// systemd's readiness protocol (sd_notify(3)): datagrams such as `READY=1`, `STOPPING=1` and
/// `WATCHDOG=1` sent to the socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace). Without `$NOTIFY_SOCKET` (not run by systemd with `Type=notify`) it does nothing.
public struct SystemdNotifier: Sendable {
    /// The socket's address, as `$NOTIFY_SOCKET` names it; nil when not run by systemd.
    public let socketPath: String?
    /// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this
    /// process (`$WATCHDOG_PID` absent or ours); nil when the unit has no `WatchdogSec=`.
    public let watchdogInterval: Duration?

    /// Reads the environment (the process's own by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: pid_t = getpid()) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        if path != nil, let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0,
            environment["WATCHDOG_PID"].map({ pid_t($0) == pid }) ?? true
        {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    /// Whether systemd listens.
    public var isActive: Bool { socketPath != nil }

    /// Sends `state` (one or more `KEY=value` lines). Never blocks; an error (systemd gone) is
    /// returned, not thrown: readiness is a courtesy, never a reason to stop the bench.
    @discardableResult
    public func notify(_ state: String) -> LetheError? {
        guard let socketPath else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return LetheError(.ioFailure, path: socketPath, errno: ErrorNumber(errno), "cannot make a socket for sd_notify") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(socketPath.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // the abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return LetheError(.invalidArgument, path: socketPath, "NOTIFY_SOCKET is longer than a socket path may be") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let payload = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, payload, payload.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), $0, length) }
        }
        guard sent == payload.count else { return LetheError(.ioFailure, path: socketPath, errno: ErrorNumber(errno), "sd_notify \(state.split(separator: "\n").first ?? "") was not delivered") }
        return nil
    }
}
