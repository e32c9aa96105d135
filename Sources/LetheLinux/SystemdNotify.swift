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
        let sent = UnixDatagram.send(Array(state.utf8), to: socketPath, flags: Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        if case .tooLong = sent { return LetheError(.invalidArgument, path: socketPath, "NOTIFY_SOCKET is longer than a socket path may be") }
        guard case .failed(let code) = sent else { return nil }
        return LetheError(.ioFailure, path: socketPath, errno: ErrorNumber(code), "sd_notify \(state.split(separator: "\n").first ?? "") was not delivered")
    }
}

/// One datagram to a Unix socket (a path, or `@name` in the abstract namespace): sd_notify and
/// journald both take their messages so.
enum UnixDatagram {
    enum Outcome {
        case sent
        case tooLong
        case failed(Int32)
    }

    static func send(_ payload: [UInt8], to path: String, flags: Int32) -> Outcome {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return .tooLong }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        defer { close(fd) }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, payload, payload.count, flags, $0, length) }
        }
        return sent == payload.count ? .sent : .failed(errno)
    }
}
