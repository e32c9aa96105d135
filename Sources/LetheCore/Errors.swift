/// A Linux error number, named. LetheCore holds no C, so the handful of values the engine
/// reasons about are spelled out here (they are the Linux x86-64/arm64 values).
public struct ErrorNumber: Hashable, Sendable, CustomStringConvertible {
    /// The raw errno value.
    public var rawValue: Int32

    /// Wraps a raw errno value.
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static let notPermitted = ErrorNumber(1)       // EPERM
    public static let noEntry = ErrorNumber(2)            // ENOENT
    public static let interrupted = ErrorNumber(4)        // EINTR
    public static let io = ErrorNumber(5)                 // EIO
    public static let noSuchDeviceOrAddress = ErrorNumber(6) // ENXIO
    public static let badFile = ErrorNumber(9)            // EBADF
    public static let tryAgain = ErrorNumber(11)          // EAGAIN
    public static let accessDenied = ErrorNumber(13)      // EACCES
    public static let busy = ErrorNumber(16)              // EBUSY
    public static let noSuchDevice = ErrorNumber(19)      // ENODEV
    public static let invalid = ErrorNumber(22)           // EINVAL
    public static let noSpace = ErrorNumber(28)           // ENOSPC
    public static let noData = ErrorNumber(61)            // ENODATA
    public static let badMessage = ErrorNumber(74)        // EBADMSG
    public static let illegalSequence = ErrorNumber(84)   // EILSEQ
    public static let shutdown = ErrorNumber(108)         // ESHUTDOWN
    public static let timedOut = ErrorNumber(110)         // ETIMEDOUT
    public static let remoteIO = ErrorNumber(121)         // EREMOTEIO
    public static let noMedium = ErrorNumber(123)         // ENOMEDIUM

    /// The conventional symbolic name, such as `EIO`, or `errno N`.
    public var description: String {
        switch rawValue {
        case 1: "EPERM"
        case 2: "ENOENT"
        case 4: "EINTR"
        case 5: "EIO"
        case 6: "ENXIO"
        case 9: "EBADF"
        case 11: "EAGAIN"
        case 13: "EACCES"
        case 16: "EBUSY"
        case 19: "ENODEV"
        case 22: "EINVAL"
        case 28: "ENOSPC"
        case 61: "ENODATA"
        case 74: "EBADMSG"
        case 84: "EILSEQ"
        case 108: "ESHUTDOWN"
        case 110: "ETIMEDOUT"
        case 121: "EREMOTEIO"
        case 123: "ENOMEDIUM"
        default: "errno \(rawValue)"
        }
    }

    /// The device is gone: unplugged, its driver unbound, or its medium removed. No retry helps.
    public var meansDeviceGone: Bool {
        self == .noSuchDevice || self == .noSuchDeviceOrAddress || self == .shutdown || self == .noMedium
    }

    /// A medium or transport error on some sectors: worth a retry, then narrowing down.
    public var meansMediumError: Bool {
        self == .io || self == .noData || self == .badMessage || self == .illegalSequence
            || self == .timedOut || self == .remoteIO
    }
}

/// A failed read, write or flush on a block device, with where it happened.
///
/// Modelled on swift-server's extensible error structs: a small set of codes, and the
/// context (path, errno, byte offset) that makes the message useful at 3 a.m.
public struct IOFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which operation failed.
    public enum Operation: String, Sendable, Hashable {
        case read, write, flush, open
    }

    /// The operation that failed.
    public var operation: Operation
    /// The device or file path.
    public var path: String
    /// The errno reported by the kernel (or injected by a fake).
    public var errno: ErrorNumber
    /// The byte offset of the failed request.
    public var offset: UInt64
    /// The length of the failed request in bytes.
    public var length: Int
    /// Set when the whole device stopped answering (every request fails, including probes of
    /// sectors that worked before): why, in plain words. Such a failure is fatal, never a list
    /// of bad sectors.
    public var unresponsive: String?

    /// Creates a failure record.
    public init(operation: Operation, path: String, errno: ErrorNumber, offset: UInt64, length: Int) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.offset = offset
        self.length = length
    }

    public var description: String {
        "\(path): \(operation) of \(length) bytes at offset \(offset) failed: \(errno)"
    }
}

/// Lethe's user-facing error: a code a program can match on, plus the device or file, the errno
/// and a plain-words message a technician can act on.
public struct LetheError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, as a stable, extensible code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let deviceNotFound = Code("deviceNotFound")
        public static let notABlockDevice = Code("notABlockDevice")
        public static let protectedDevice = Code("protectedDevice")
        public static let deviceTooSmall = Code("deviceTooSmall")
        public static let unalignedSize = Code("unalignedSize")
        public static let unknownMethod = Code("unknownMethod")
        public static let serialMismatch = Code("serialMismatch")
        public static let confirmationRequired = Code("confirmationRequired")
        public static let deviceVanished = Code("deviceVanished")
        public static let ioFailure = Code("ioFailure")
        public static let invalidArgument = Code("invalidArgument")
        public static let permissionDenied = Code("permissionDenied")
        /// A device or tool answered with something Lethe cannot read (the path names the command).
        public static let unexpectedOutput = Code("unexpectedOutput")
        /// No answer within the time allowed.
        public static let timedOut = Code("timedOut")
        /// A service Lethe needs (the adb server) is missing or not running.
        public static let unavailable = Code("unavailable")
        /// The device refused Lethe (a phone whose USB debugging was not approved).
        public static let unauthorized = Code("unauthorized")
        /// The drive lacks the firmware erase asked for, or is in a state that refuses it
        /// (security frozen, a hidden area left closed).
        public static let unsupported = Code("unsupported")
        /// Stopped by the operator (a signal, an abort) before the work was done.
        public static let cancelled = Code("cancelled")
        /// iPhones: the phone shows "Trust this computer?" and waits for the technician's tap.
        public static let pairingPending = Code("pairingPending")
        /// iPhones: the technician tapped "Don't Trust".
        public static let pairingDenied = Code("pairingDenied")
        /// iPhones: the phone is locked with a passcode; it must be unlocked to pair.
        public static let passcodeLocked = Code("passcodeLocked")
        /// iPhones: the phone no longer accepts the host's pair record (it was erased, or the
        /// record was made on another host): delete the record and pair again.
        public static let pairRecordRejected = Code("pairRecordRejected")
        /// The device at the path is not the one that was checked or docked (another device
        /// number, serial, WWN or size): a different drive took its place.
        public static let identityChanged = Code("identityChanged")
    }

    /// The error's code.
    public var code: Code
    /// The device or file it concerns, when there is one.
    public var path: String?
    /// The errno behind it, when there is one.
    public var errno: ErrorNumber?
    /// Plain words: what happened and, where possible, what to do.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, path: String? = nil, errno: ErrorNumber? = nil, _ message: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.message = message
    }

    /// One line: `PATH: message (ERRNO)`.
    public var description: String {
        var line = path.map { "\($0): \(message)" } ?? message
        if let errno { line += " (\(errno))" }
        return line
    }
}

extension LetheError {
    /// `host:port` from a `--listen` value, or an error naming the option.
    public static func listenAddress(_ listen: String) throws(LetheError) -> (host: String, port: Int) {
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
            throw LetheError(.invalidArgument, path: "--listen", "\"\(listen)\" is not host:port")
        }
        return (String(parts[0]), port)
    }
}
