import Foundation
import LetheCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A connected socket as a blocking ``ByteStream`` with deadlines (the simulators' side of a
/// connection).
public final class FDStream: ByteStream, @unchecked Sendable {
    private let lock = NSLock()
    private var fd: Int32
    /// For messages.
    public let name: String

    /// Wraps an open descriptor (closed by ``close()``).
    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    deinit { close() }

    private var descriptor: Int32 { lock.withLock { fd } }

    private func wait(_ events: Int32, deadline: ContinuousClock.Instant) throws(LetheError) {
        while true {
            let fd = descriptor
            guard fd >= 0 else { throw LetheError(.ioFailure, path: name, errno: .badFile, "closed") }
            let left = deadline - .now
            guard left > .zero else { throw LetheError(.timedOut, path: name, errno: .timedOut, "no data in time") }
            var pfd = pollfd(fd: fd, events: Int16(events), revents: 0)
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&pfd, 1, min(milliseconds, 200))
            if ready > 0 { return }
            if ready < 0, errno != EINTR { throw LetheError(.ioFailure, path: name, errno: ErrorNumber(errno), "poll failed") }
        }
    }

    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LetheError) {
        var offset = 0
        while offset < bytes.count {
            try wait(POLLOUT, deadline: deadline)
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw LetheError(.ioFailure, path: name, errno: ErrorNumber(errno), "send failed")
            }
            offset += sent
        }
    }

    public func read(upTo count: Int, deadline: ContinuousClock.Instant) throws(LetheError) -> [UInt8] {
        while true {
            try wait(POLLIN, deadline: deadline)
            var buffer = [UInt8](repeating: 0, count: max(1, count))
            let got = buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, $0.count, 0) }
            if got < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw LetheError(.ioFailure, path: name, errno: ErrorNumber(errno), "recv failed")
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
        if old >= 0 {
            shutdown(old, Int32(SHUT_RDWR))
            Glibc.close(old)
        }
    }
}

/// A TCP listener on an ephemeral port of 127.0.0.1 that hands each connection to `serve` on
/// a thread of its own.
final class LoopbackListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let stopped = StopSwitch()

    /// A listening socket on an ephemeral port of 127.0.0.1: its descriptor and port.
    static func socket(name: String) throws(LetheError) -> (fd: Int32, port: Int) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LetheError(.ioFailure, errno: ErrorNumber(errno), "\(name): socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 16) == 0 else {
            let error = LetheError(.ioFailure, errno: ErrorNumber(errno), "\(name): bind/listen")
            Glibc.close(fd)
            throw error
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    init(name: String, serve: @escaping @Sendable (FDStream) -> Void) throws(LetheError) {
        let (fd, port) = try Self.socket(name: name)
        self.port = port
        self.fd = fd
        let stopped = stopped
        let thread = Thread { [fd] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return
                }
                if stopped.isOn {
                    Glibc.close(client)
                    return
                }
                let worker = Thread { serve(FDStream(fd: client, name: "\(name) connection")) }
                worker.name = name
                worker.start()
            }
        }
        thread.name = name
        thread.start()
    }

    func stop() {
        guard stopped.turnOn() else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}

/// A switch one thread turns on and others read.
final class StopSwitch: Sendable {
    private let value = Mutex(false)
    var isOn: Bool { value.withLock { $0 } }
    /// Turns it on; false when it already was.
    func turnOn() -> Bool { value.withLock { was in defer { was = true }; return !was } }
}
