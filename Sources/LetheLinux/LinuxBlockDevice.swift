import CLethe
import Foundation
import LetheCore

/// A Linux block device (or, when allowed, a regular file such as a disk image) opened for the
/// wipe engine: O_DIRECT with aligned buffers, so writes and verification reads bypass the
/// page cache; O_EXCL on block devices, so nothing can mount or claim it while it is erased.
public final class LinuxBlockDevice: BlockDevice {
    /// How to open.
    public enum Access: Sendable {
        case readOnly, readWrite
    }

    public let path: String
    /// The path after following symlinks (`/dev/disk/by-id/...` → `/dev/sdb`).
    public let resolvedPath: String
    public let sizeBytes: UInt64
    public let logicalSectorSize: Int
    public let physicalSectorSize: Int
    public let bufferAlignment: Int
    /// Whether this is a regular file rather than a block device.
    public let isRegularFile: Bool
    /// Whether the page cache is bypassed (false only for files on file systems without O_DIRECT).
    public let isDirect: Bool
    /// The block device number (nil for files).
    public let number: DeviceNumber?
    /// What sysfs and udev say about it (nil for files).
    public let identity: BlockIdentity?
    private let fd: Int32

    /// What `inspect` learns without opening the device for writing.
    public struct Target: Sendable {
        /// The path as given.
        public var path: String
        /// The resolved path.
        public var resolvedPath: String
        /// Block device number, or nil for a regular file.
        public var number: DeviceNumber?
        /// sysfs/udev identity (nil for a regular file).
        public var identity: BlockIdentity?
        /// Why the guard refuses it (empty when it may be written).
        public var protection: [ProtectionReason]
        /// The size sysfs gave when it was inspected (nil for a regular file).
        public var sizeBytes: UInt64?
    }

    /// Resolves `path` and runs the safety guard, without opening anything for writing.
    public static func inspect(_ path: String, allowFile: Bool) throws(LetheError) -> Target {
        guard let resolvedC = realpath(path, nil) else {
            let code = lethe_errno()
            throw LetheError(
                code == EACCES ? .permissionDenied : .deviceNotFound, path: path, errno: ErrorNumber(code),
                code == EACCES ? "permission denied (run as root)" : "no such device or file")
        }
        let resolved = String(cString: resolvedC)
        free(resolvedC)
        var info = stat()
        guard stat(resolved, &info) == 0 else {
            throw LetheError(.deviceNotFound, path: path, errno: ErrorNumber(lethe_errno()), "cannot stat \(resolved)")
        }
        switch info.st_mode & S_IFMT {
        case S_IFBLK:
            let number = DeviceNumber(UInt64(info.st_rdev))
            return Target(
                path: path, resolvedPath: resolved, number: number, identity: BlockIdentity.read(number),
                protection: SafetyGuard.reasons(for: number),
                sizeBytes: Sysfs.blockDirectory(for: number).flatMap { Sysfs.read("\($0)/size") }.flatMap(UInt64.init).map { $0 * 512 })
        case S_IFREG:
            guard allowFile else {
                throw LetheError(.notABlockDevice, path: path, "is a regular file, not a block device; pass --allow-file to erase a disk image")
            }
            return Target(path: path, resolvedPath: resolved, number: nil, identity: nil, protection: [])
        default:
            throw LetheError(.notABlockDevice, path: path, "is not a block device")
        }
    }

    /// Opens a device the guard has cleared. For `readWrite` on a block device the open is
    /// exclusive (O_EXCL): if the kernel or another program holds it, this fails with EBUSY.
    ///
    /// After the open, the descriptor is checked to be the device inspected: its `st_rdev`,
    /// its size, and its serial and WWN read again. A path names a device only for a moment;
    /// a mismatch throws `.identityChanged` and nothing is written.
    public convenience init(target: Target, access: Access) throws(LetheError) {
        try self.init(target: target, access: access, claim: nil)
    }

    /// Opens the same device again, read-write, after its size changed under Lethe (hidden
    /// areas opened and the kernel rescan done): without O_EXCL, because `claimed` still holds
    /// the exclusive claim (a second O_EXCL open by the same process fails with EBUSY, shown on
    /// a real kernel by `GuardTests`), and kept alive with this one. The device number and the
    /// serial must still match; the size may have grown.
    public convenience init(reopening claimed: LinuxBlockDevice, target: Target) throws(LetheError) {
        try self.init(target: target, access: .readWrite, claim: claimed)
    }

    /// The exclusive open this one relies on (see ``init(reopening:target:)``).
    private let claim: LinuxBlockDevice?

    private init(target: Target, access: Access, claim: LinuxBlockDevice?) throws(LetheError) {
        self.claim = claim
        path = target.path
        resolvedPath = target.resolvedPath
        number = target.number
        identity = target.identity
        isRegularFile = target.number == nil
        var flags = (access == .readWrite ? O_RDWR : O_RDONLY) | O_CLOEXEC
        if access == .readWrite, !isRegularFile, claim == nil { flags |= O_EXCL }
        var direct = true
        var descriptor = open(resolvedPath, flags | lethe_o_direct())
        if descriptor < 0, lethe_errno() == EINVAL, isRegularFile {
            // tmpfs and some FUSE file systems refuse O_DIRECT; images there go through the cache.
            direct = false
            descriptor = open(resolvedPath, flags)
        }
        guard descriptor >= 0 else {
            let code = lethe_errno()
            switch code {
            case EBUSY:
                throw LetheError(.protectedDevice, path: path, errno: .busy,
                    "is in use: mounted, part of a RAID/LVM/dm device, or open exclusively by another program")
            case EACCES, EPERM:
                throw LetheError(.permissionDenied, path: path, errno: ErrorNumber(code), "permission denied (run as root)")
            case ENOENT, ENXIO, ENODEV:
                throw LetheError(.deviceVanished, path: path, errno: ErrorNumber(code), "device is gone")
            default:
                throw LetheError(.ioFailure, path: path, errno: ErrorNumber(code), "cannot open")
            }
        }
        fd = descriptor
        isDirect = direct
        if isRegularFile {
            var info = stat()
            fstat(fd, &info)
            sizeBytes = UInt64(info.st_size)
            logicalSectorSize = 512
            physicalSectorSize = 4096
        } else {
            var size: UInt64 = 0
            var logical: Int32 = 512
            var physical: UInt32 = 512
            guard lethe_blk_size64(fd, &size) == 0 else {
                let code = lethe_errno()
                close(fd)
                throw LetheError(.ioFailure, path: path, errno: ErrorNumber(code), "cannot read the device size (BLKGETSIZE64)")
            }
            _ = lethe_blk_logical_sector(fd, &logical)
            _ = lethe_blk_physical_sector(fd, &physical)
            sizeBytes = size
            logicalSectorSize = Int(logical)
            physicalSectorSize = Int(physical)
        }
        bufferAlignment = max(4096, logicalSectorSize)
        if !isRegularFile, let problem = Self.identityProblem(fd: fd, target: target, size: sizeBytes, resized: claim != nil) {
            close(fd)
            throw LetheError(.identityChanged, path: path, "\(problem): not the device that was checked, so nothing was written; look at it again (lethe devices) and start over")
        }
    }

    /// What says the descriptor is not the device `target` describes, or nil.
    private static func identityProblem(fd: Int32, target: Target, size: UInt64, resized: Bool) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFBLK else { return "the opened node is no longer a block device" }
        let opened = DeviceNumber(UInt64(info.st_rdev))
        guard opened == target.number else { return "the node now names device \(opened), not \(target.number.map(\.description) ?? "?")" }
        if !resized, let expected = target.sizeBytes, expected != size {
            return "its size changed from \(expected) to \(size) bytes"
        }
        let now = BlockIdentity.read(opened)
        if now.serial != target.identity?.serial {
            return "its serial changed from \(target.identity?.serial ?? "none") to \(now.serial ?? "none")"
        }
        if now.wwn != target.identity?.wwn {
            return "its WWN changed from \(target.identity?.wwn ?? "none") to \(now.wwn ?? "none")"
        }
        if now.backingFile != target.identity?.backingFile {
            return "its backing file changed from \(target.identity?.backingFile ?? "none") to \(now.backingFile ?? "none")"
        }
        return nil
    }

    deinit { close(fd) }

    /// Whether the device is still attached (its sysfs node exists and has a non-zero size).
    public var isPresent: Bool {
        guard let number else { return FileManager.default.fileExists(atPath: resolvedPath) }
        guard let dir = Sysfs.blockDirectory(for: number), let sectors = Sysfs.read("\(dir)/size").flatMap(UInt64.init) else {
            return false
        }
        // sysfs counts 512-byte units whatever the logical sector size.
        return sectors * 512 == sizeBytes
    }

    private func failure(_ operation: IOFailure.Operation, offset: UInt64, length: Int) -> IOFailure {
        var code = ErrorNumber(lethe_errno())
        // An unplugged disk answers EIO, or ENOSPC once the kernel has shrunk it to 0 bytes.
        // If its node is gone or its size changed, say what really happened.
        if code != .interrupted, !code.meansDeviceGone, !isPresent { code = .noSuchDevice }
        return IOFailure(operation: operation, path: path, errno: code, offset: offset, length: length)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int {
        let count = pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset))
        guard count >= 0 else { throw failure(.write, offset: offset, length: buffer.count) }
        try checkEndOfDevice(count, .write, offset: offset, length: buffer.count)
        return count
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int {
        let count = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
        guard count >= 0 else { throw failure(.read, offset: offset, length: buffer.count) }
        try checkEndOfDevice(count, .read, offset: offset, length: buffer.count)
        return count
    }

    /// The kernel shrinks a deleted disk to 0 bytes, so I/O inside the old size returns 0
    /// (end of device) instead of an error. Inside the size we opened, that means it is gone.
    private func checkEndOfDevice(_ count: Int, _ operation: IOFailure.Operation, offset: UInt64, length: Int) throws(IOFailure) {
        guard count == 0, length > 0, offset < sizeBytes else { return }
        let code: ErrorNumber = isPresent ? .noSpace : .noSuchDevice
        throw IOFailure(operation: operation, path: path, errno: code, offset: offset, length: length)
    }

    public func synchronize() throws(IOFailure) {
        guard fdatasync(fd) == 0 else { throw failure(.flush, offset: 0, length: 0) }
        // Without O_DIRECT, drop the cached pages so verification reads come from the file.
        if !isDirect { _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED)) }
    }
}
