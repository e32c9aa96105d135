import Foundation
import LetheCore

/// The usbmuxd on this machine: `USBMUXD_SOCKET_ADDRESS` as libusbmuxd reads it (`UNIX:/path`
/// or `host:port`), else `/var/run/usbmuxd`.
public enum LocalUsbmuxd {
    /// Where usbmuxd listens: a UNIX socket path, or a TCP host and port.
    public enum Address: Sendable, Equatable, CustomStringConvertible {
        case unix(String)
        case tcp(host: String, port: Int)

        public var description: String {
            switch self {
            case .unix(let path): path
            case .tcp(let host, let port): "\(host):\(port)"
            }
        }
    }

    /// The address from the environment, else the standard socket. A malformed value is an
    /// error naming the variable.
    public static func address(environment: [String: String] = ProcessInfo.processInfo.environment) throws(LetheError) -> Address {
        guard let value = environment["USBMUXD_SOCKET_ADDRESS"], !value.isEmpty else { return .unix("/var/run/usbmuxd") }
        if value.hasPrefix("UNIX:") { return .unix(String(value.dropFirst(5))) }
        if value.hasPrefix("/") { return .unix(value) }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw LetheError(.invalidArgument, path: "USBMUXD_SOCKET_ADDRESS", "\"\(value)\" is neither UNIX:/path nor host:port")
        }
        return .tcp(host: parts[0] == "localhost" ? "127.0.0.1" : String(parts[0]), port: port)
    }

    /// Connects to it.
    public static func connector(_ address: Address) -> @Sendable (Duration) throws(LetheError) -> any ByteStream {
        { timeout throws(LetheError) in
            switch address {
            case .unix(let path): try TCPStream.connect(unixSocket: path)
            case .tcp(let host, let port): try TCPStream.connect(host: host, port: port, timeout: timeout)
            }
        }
    }
}
