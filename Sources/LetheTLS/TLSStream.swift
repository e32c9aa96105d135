import Foundation
import LetheCore
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS

/// TLS over any blocking ``ByteStream`` (a usbmux tunnel to an iPhone's lockdownd, which turns
/// a plain-text connection into TLS halfway through): swift-nio-ssl's handler in an in-memory
/// channel, fed the ciphertext read from the stream and draining what it writes back to it.
/// Blocking, like the stream under it: use it from a thread of its own.
public final class TLSStream: ByteStream, @unchecked Sendable {
    /// Which side of the handshake this end is.
    public enum Role: Sendable { case client, server }

    private let lower: any ByteStream
    private let channel: EmbeddedChannel
    private let watcher: HandshakeWatcher
    private let lock = NSLock()
    private var pending: [UInt8] = []
    private var closed = false
    /// What the stream is, for messages.
    public let name: String

    /// Makes the TLS end and completes the handshake before `deadline`. `certificatePEM` and
    /// `privateKeyPEM` are this end's identity (a client's may be nil); the peer's certificate
    /// is not verified (lockdown's certificates are the pair record's own, self-issued ones).
    public init(
        over lower: any ByteStream, role: Role, certificatePEM: String?, privateKeyPEM: String?, name: String,
        deadline: ContinuousClock.Instant
    ) throws(LetheError) {
        self.lower = lower
        self.name = name
        var configuration: TLSConfiguration
        do {
            switch role {
            case .client:
                configuration = TLSConfiguration.makeClientConfiguration()
            case .server:
                guard let certificatePEM, let privateKeyPEM else {
                    throw LetheError(.invalidArgument, path: name, "a TLS server needs a certificate and a key")
                }
                configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)))
            }
            configuration.certificateVerification = .none
            // Old iOS speaks TLS 1.0 to 1.2; the newest speak 1.3.
            configuration.minimumTLSVersion = .tlsv1
            if role == .client, let certificatePEM, let privateKeyPEM {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
            }
        } catch let error as LetheError {
            throw error
        } catch {
            throw LetheError(.invalidArgument, path: name, "the TLS certificate or key cannot be used: \(error)")
        }
        channel = EmbeddedChannel()
        watcher = HandshakeWatcher()
        do {
            let context = try NIOSSLContext(configuration: configuration)
            let handler: any ChannelHandler = role == .client
                ? try NIOSSLClientHandler(context: context, serverHostname: nil)
                : NIOSSLServerHandler(context: context)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.pipeline.syncOperations.addHandler(watcher)
            // Never wait on the in-memory loop: nothing else would run it.
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 62078), promise: nil)
            channel.embeddedEventLoop.run()
        } catch {
            throw LetheError(.ioFailure, path: name, "cannot start TLS: \(error)")
        }
        try handshake(deadline: deadline)
    }

    /// Sends what the TLS engine has for the peer.
    private func flushOutbound(deadline: ContinuousClock.Instant) throws(LetheError) {
        while true {
            let buffer: ByteBuffer?
            do { buffer = try channel.readOutbound(as: ByteBuffer.self) } catch {
                throw LetheError(.ioFailure, path: name, "TLS: \(error)")
            }
            guard let buffer else { return }
            try lower.write(Array(buffer.readableBytesView), deadline: deadline)
        }
    }

    /// Feeds ciphertext from the peer to the engine, keeping any plain text it yields.
    private func feed(_ bytes: [UInt8]) throws(LetheError) {
        do {
            // NIOSSL decrypts on channelReadComplete: fire both, as a socket read would.
            channel.pipeline.fireChannelRead(ByteBuffer(bytes: bytes))
            channel.pipeline.fireChannelReadComplete()
            channel.embeddedEventLoop.run()
            try channel.throwIfErrorCaught()
            while let plain = try channel.readInbound(as: ByteBuffer.self) { pending += plain.readableBytesView }
        } catch {
            throw LetheError(.unexpectedOutput, path: name, "TLS failed: \(error)")
        }
    }

    private func handshake(deadline: ContinuousClock.Instant) throws(LetheError) {
        try flushOutbound(deadline: deadline)
        while !watcher.completed {
            let bytes = try lower.read(upTo: 16 << 10, deadline: deadline)
            guard !bytes.isEmpty else {
                throw LetheError(.unexpectedOutput, path: name, "the peer closed the connection during the TLS handshake")
            }
            try feed(bytes)
            try flushOutbound(deadline: deadline)
        }
    }

    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LetheError) {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw LetheError(.ioFailure, path: name, "write after close") }
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
        channel.embeddedEventLoop.run()
        do { try channel.throwIfErrorCaught() } catch { throw LetheError(.ioFailure, path: name, "TLS: \(error)") }
        try flushOutbound(deadline: deadline)
    }

    public func read(upTo count: Int, deadline: ContinuousClock.Instant) throws(LetheError) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        while pending.isEmpty {
            guard !closed else { return [] }
            let bytes = try lower.read(upTo: 16 << 10, deadline: deadline)
            guard !bytes.isEmpty else { return [] }
            try feed(bytes)
            // Post-handshake messages (TLS 1.3 tickets, alerts) may need an answer.
            try flushOutbound(deadline: deadline)
        }
        let chunk = Array(pending.prefix(count))
        pending.removeFirst(chunk.count)
        return chunk
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        channel.close(promise: nil)
        channel.embeddedEventLoop.run()
        try? flushOutbound(deadline: .now + .seconds(1))
        lower.close()
    }
}

/// Notes when the TLS handshake has completed.
private final class HandshakeWatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private(set) var completed = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls { completed = true }
        context.fireUserInboundEventTriggered(event)
    }
}
