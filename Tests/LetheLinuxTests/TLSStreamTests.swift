import Foundation
import LetheCore
import LethePhones
import LetheTLS
import LetheTesting
import Testing
import _CryptoExtras

#if canImport(Glibc)
import Glibc
#endif

/// TLS over a blocking byte stream (lockdown's mid-connection TLS): a client and a server
/// TLSStream over a socket pair, with the certificates a pair record makes.
@Suite(.timeLimit(.minutes(2))) struct TLSStreamTests {
    @Test func aClientAndAServerTalkThroughTheHandshake() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let near = FDStream(fd: fds[0], name: "client"), far = FDStream(fd: fds[1], name: "server")
        let deviceKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let record = try PairRecord.make(devicePublicKeyPEM: deviceKey.publicKey.pkcs1PEMRepresentation, systemBUID: "BUID")
        let done = DispatchSemaphore(value: 0)
        let heard = Heard()
        Thread {
            do {
                let server = try TLSStream(
                    over: far, role: .server, certificatePEM: record.deviceCertificatePEM, privateKeyPEM: deviceKey.pemRepresentation,
                    name: "server", deadline: .now + .seconds(5))
                heard.set(try server.read(exactly: 5, deadline: .now + .seconds(5), what: "server"))
                try server.write(Array("world".utf8), deadline: .now + .seconds(5))
            } catch {}
            done.signal()
        }.start()
        let client = try TLSStream(
            over: near, role: .client, certificatePEM: record.rootCertificatePEM, privateKeyPEM: record.rootPrivateKeyPEM, name: "client",
            deadline: .now + .seconds(5))
        try client.write(Array("hello".utf8), deadline: .now + .seconds(5))
        #expect(String(decoding: try client.read(exactly: 5, deadline: .now + .seconds(5), what: "client"), as: UTF8.self) == "world")
        done.wait()
        #expect(heard.bytes == Array("hello".utf8))
        client.close()
    }

    /// Both ends closing at once: each sends its close_notify and returns, without waiting for
    /// the other's (an earlier close waited, and the simulator and Lethe hung each other).
    @Test func bothEndsClosingAtOnceReturn() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let near = FDStream(fd: fds[0], name: "client"), far = FDStream(fd: fds[1], name: "server")
        let deviceKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let record = try PairRecord.make(devicePublicKeyPEM: deviceKey.publicKey.pkcs1PEMRepresentation, systemBUID: "BUID")
        let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0), closed = DispatchSemaphore(value: 0)
        Thread {
            let server = try? TLSStream(
                over: far, role: .server, certificatePEM: record.deviceCertificatePEM, privateKeyPEM: deviceKey.pemRepresentation,
                name: "server", deadline: .now + .seconds(5))
            ready.signal()
            go.wait()
            server?.close()
            closed.signal()
        }.start()
        let client = try TLSStream(
            over: near, role: .client, certificatePEM: record.rootCertificatePEM, privateKeyPEM: record.rootPrivateKeyPEM, name: "client",
            deadline: .now + .seconds(5))
        ready.wait()
        go.signal()
        let started = ContinuousClock.now
        client.close()
        #expect(closed.wait(timeout: .now() + 5) == .success, "the server's close did not return")
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    final class Heard: @unchecked Sendable {
        private let lock = NSLock()
        private var value: [UInt8] = []
        func set(_ bytes: [UInt8]) { lock.withLock { value = bytes } }
        var bytes: [UInt8] { lock.withLock { value } }
    }
}
