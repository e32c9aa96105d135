/// One locking range, as its row of the Locking SP's Locking table reads (Opal SSC 2.02
/// §4.3.5.2: columns RangeStart 3 to ActiveKey 10).
public struct TCGLockingRange: Sendable, Equatable, CustomStringConvertible {
    /// The row's UID (Locking_GlobalRange, or Locking_Range1 …).
    public var uid: [UInt8]
    /// 0 for the global range, n for Locking_Range n.
    public var number: Int
    /// First LBA and length in LBAs (both 0 for the global range, which covers every LBA no
    /// other range does).
    public var start: UInt64
    public var length: UInt64
    public var readLockEnabled: Bool
    public var writeLockEnabled: Bool
    public var readLocked: Bool
    public var writeLocked: Bool
    /// The UID of the range's media encryption key (a K_AES_128 or K_AES_256 row).
    public var activeKey: [UInt8]

    /// Reads and writes in the range fail now.
    public var locked: Bool { (readLockEnabled && readLocked) || (writeLockEnabled && writeLocked) }

    public var name: String { number == 0 ? "the global range" : "range \(number)" }

    public var description: String {
        let extent = number == 0 ? "every LBA outside the other ranges" : "LBA \(start), \(length) LBAs"
        return "\(name) (\(extent)\(locked ? ", locked" : ""))"
    }

    /// The UID of Locking_GlobalRange (0) or Locking_Range`number`.
    public static func uid(_ number: Int) -> [UInt8] {
        number == 0 ? TCGUID.globalRange : [0, 0, 0x08, 0x02, 0, 0x03, UInt8(number >> 8 & 0xFF), UInt8(number & 0xFF)]
    }
}

/// Cryptographic erase of an owned Opal drive, authorised by the Locking SP's Admin1 password
/// (the owner's, given by their IT department): GenKey on the active key of every locking
/// range (Opal SSC 2.02 §4.3.5.2, Core 2.01 §5.3.3.16), so each range's data reads as noise.
/// Unlike a revert it keeps the owner's configuration: the drive is still theirs afterwards.
public enum TCGCryptoErase {
    /// Starts a read-write session on the Locking SP as Admin1 with `password`.
    public static func startSession(_ host: TCGHost, password: [UInt8], purpose: String = "") throws(TCGFailure) {
        do {
            try host.startSession(
                sp: TCGUID.lockingSP, authority: TCGUID.admin1Authority, challenge: password, step: "\(purpose)StartSession on the Locking SP as Admin1")
        } catch {
            throw error.advising(
                notAuthorized: "the Admin1 password was not accepted; ask the drive's owner for the Locking SP's Admin1 password, or revert the drive with its PSID (tcg-psid-revert)",
                lockedOut: "the drive refuses Admin1 after too many wrong tries; power-cycle the drive (unplug it), then try once more with the right password")
        }
    }

    /// Every locking range: the global range and Locking_Range1 … MaxRanges (LockingInfo,
    /// column 4), each row's columns 3 to 10.
    public static func ranges(_ host: TCGHost) throws(TCGFailure) -> [TCGLockingRange] {
        let infoStep = "Get MaxRanges (LockingInfo, column 4)"
        let info = try host.get(TCGUID.lockingInfo, columns: 4...4, step: infoStep)
        guard case .uint(let maxRanges)? = info[4], maxRanges <= 1024 else {
            throw TCGFailure(step: infoStep, detail: "the answer gives no MaxRanges below 1024: \(info)")
        }
        var ranges: [TCGLockingRange] = []
        for number in 0...Int(maxRanges) {
            let uid = TCGLockingRange.uid(number)
            let step = "Get \(number == 0 ? "Locking_GlobalRange" : "Locking_Range\(number)") (columns 3 to 10)"
            let row = try host.get(uid, columns: 3...10, step: step)
            func uint(_ column: UInt64) -> UInt64? { if case .uint(let value)? = row[column] { value } else { nil } }
            guard case .bytes(let key)? = row[10], key.count == 8 else {
                throw TCGFailure(step: step, detail: "the row gives no ActiveKey UID (column 10): \(row)")
            }
            ranges.append(TCGLockingRange(
                uid: uid, number: number, start: uint(3) ?? 0, length: uint(4) ?? 0, readLockEnabled: uint(5) == 1, writeLockEnabled: uint(6) == 1,
                readLocked: uint(7) == 1, writeLocked: uint(8) == 1, activeKey: key))
        }
        return ranges
    }

    /// Opens every locked range for reading and writing (ReadLocked and WriteLocked to false)
    /// and, when asked, marks the shadow MBR done so the first LBAs show the media.
    public static func unlock(_ host: TCGHost, _ ranges: [TCGLockingRange], mbrDone: Bool) throws(TCGFailure) {
        for range in ranges where range.locked {
            let step = "to write the known data: unlock \(range.name) (Set ReadLocked and WriteLocked to False)"
            try host.set(range.uid, values: [(7, 0), (8, 0)], step: step)
        }
        if mbrDone {
            try host.set(TCGUID.mbrControl, values: [(2, 1)], step: "to write the known data: hide the shadow MBR (Set MBRControl Done to True)")
        }
    }

    /// GenKey on each range's active key. A failure names the ranges already given new keys.
    public static func regenerateKeys(_ host: TCGHost, _ ranges: [TCGLockingRange]) throws(TCGFailure) {
        var done: [String] = []
        for range in ranges {
            let step = "GenKey on \(range.name)'s key \(TCGUID.text(range.activeKey))"
            do throws(TCGFailure) {
                let response = try host.call(TCGMethodCall(invoking: range.activeKey, method: TCGUID.genKey), step: step)
                guard response.status == .success else { throw TCGFailure(step: step, status: response.status) }
            } catch {
                var failure = error
                let before = done.isEmpty ? "no range had a new key yet" : "new keys so far: \(done.joined(separator: ", "))"
                failure.detail += (failure.detail.isEmpty ? "" : "; ") + before
                throw failure
            }
            done.append(range.name)
        }
    }
}

extension TCGMethodResponse {
    /// The `name : value` pairs of a Get's answer (`[ [ {3: …} {4: …} ] ]`), by column.
    /// Pairs whose name is no integer, or whose value is a list, are left out.
    public var namedValues: [UInt64: TCGToken] {
        var values: [UInt64: TCGToken] = [:]
        var index = 0
        while index + 3 < results.count {
            if results[index] == .startName, case .uint(let name) = results[index + 1], results[index + 3] == .endName {
                values[name] = results[index + 2]
                index += 4
            } else {
                index += 1
            }
        }
        return values
    }
}
