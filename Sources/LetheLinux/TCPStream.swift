import Foundation
import LetheCore

#if canImport(Glibc)
import Glibc
#endif

/// A TCP connection (IPv4 loopback or any dotted address) as a ``ByteStream``: blocking
/// sockets with `poll` for deadlines. Use it from a thread of its own, never the cooperative
/// pool.
public final class TCPStream: ByteStream, @unchecked Sendable {
    /// `host:port`, for messages.
    public let endpoint: String
    private let lock = NSLock()
    private var fd: Int32

    private init(fd: Int32, endpoint: String) {
        self.fd = fd
        self.endpoint = endpoint
    }

    deinit { close() }

    /// Connects, or throws: `.unavailable` with ECONNREFUSED when nothing listens, `.timedOut`.
    public static func connect(host: String, port: Int, timeout: Duration) throws(LetheError) -> TCPStream {
        let endpoint = "\(host):\(port)"
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw LetheError(.invalidArgument, path: endpoint, "\(host) is not an IPv4 address")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw LetheError(.ioFailure, path: endpoint, errno: ErrorNumber(errno), "cannot make a socket") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            let code = errno
            guard code == EINPROGRESS else {
                Glibc.close(fd)
                throw Self.connectError(code, endpoint)
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            guard poll(&pfd, 1, milliseconds) == 1 else {
                Glibc.close(fd)
                throw LetheError(.timedOut, path: endpoint, errno: .timedOut, "no connection within \(timeout)")
            }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
            if failure != 0 {
                Glibc.close(fd)
                throw Self.connectError(failure, endpoint)
            }
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return TCPStream(fd: fd, endpoint: endpoint)
    }

    /// Connects to a UNIX-domain stream socket (`/var/run/usbmuxd`), or throws `.unavailable`
    /// when nothing listens there.
    public static func connect(unixSocket path: String) throws(LetheError) -> TCPStream {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw LetheError(.invalidArgument, path: path, "a socket path of \(bytes.count) bytes is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LetheError(.ioFailure, path: path, errno: ErrorNumber(errno), "cannot make a socket") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            if code == ENOENT || code == ECONNREFUSED {
                throw LetheError(.unavailable, path: path, errno: ErrorNumber(code), "nothing listens on \(path)")
            }
            throw LetheError(.ioFailure, path: path, errno: ErrorNumber(code), "cannot connect: \(String(cString: strerror(code)))")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return TCPStream(fd: fd, endpoint: path)
    }

    static func connectError(_ code: Int32, _ endpoint: String) -> LetheError {
        code == ECONNREFUSED
            ? LetheError(.unavailable, path: endpoint, errno: ErrorNumber(code), "connection refused: nothing listens on \(endpoint)")
            : LetheError(.ioFailure, path: endpoint, errno: ErrorNumber(code), "cannot connect: \(String(cString: strerror(code)))")
    }

    private var descriptor: Int32 { lock.withLock { fd } }

    /// Waits until the socket is ready for `events`, or throws `.timedOut`.
    private func wait(_ events: Int32, deadline: ContinuousClock.Instant, doing: String) throws(LetheError) {
        while true {
            let fd = descriptor
            guard fd >= 0 else { throw LetheError(.ioFailure, path: endpoint, errno: .badFile, "\(doing): the connection is closed") }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw LetheError(.timedOut, path: endpoint, errno: .timedOut, "\(doing): no answer in time") }
            var pfd = pollfd(fd: fd, events: Int16(events), revents: 0)
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&pfd, 1, min(milliseconds, 1000))
            if ready > 0 { return }
            if ready < 0, errno != EINTR { throw LetheError(.ioFailure, path: endpoint, errno: ErrorNumber(errno), "\(doing): poll failed") }
        }
    }

    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LetheError) {
        var offset = 0
        while offset < bytes.count {
            try wait(POLLOUT, deadline: deadline, doing: "sending")
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw LetheError(.ioFailure, path: endpoint, errno: ErrorNumber(errno), "sending failed: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    public func read(upTo count: Int, deadline: ContinuousClock.Instant) throws(LetheError) -> [UInt8] {
        while true {
            try wait(POLLIN, deadline: deadline, doing: "receiving")
            var buffer = [UInt8](repeating: 0, count: max(1, count))
            let got = buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, $0.count, 0) }
            if got < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw LetheError(.ioFailure, path: endpoint, errno: ErrorNumber(errno), "receiving failed: \(String(cString: strerror(errno)))")
            }
            return Array(buffer.prefix(got))
        }
    }

    public func close() {
        let old: Int32 = lock.withLock {
            let old = fd
            fd = -1
            return old
        }
        if old >= 0 { Glibc.close(old) }
    }
}
