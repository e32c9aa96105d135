import Crypto
import Foundation
import LetheCore
import X509
import _CryptoExtras

/// What a host keeps after pairing with an iPhone (usbmuxd stores it as
/// `/var/lib/lockdown/UDID.plist`): the host's identity (HostID, the system's BUID), a root
/// certificate authority and a host certificate with their private keys, and the device
/// certificate the root issued for the phone's own key. The phone keeps the public half; a
/// session on it needs both.
public struct PairRecord: Sendable, Equatable {
    public var hostID: String
    public var systemBUID: String
    public var deviceCertificatePEM: String
    public var hostCertificatePEM: String
    public var hostPrivateKeyPEM: String
    public var rootCertificatePEM: String
    public var rootPrivateKeyPEM: String
    /// What the phone returns on a successful pair (it unlocks its keybag for the host).
    public var escrowBag: Data?
    public var wifiAddress: String?

    /// A new record for a phone whose key is `devicePublicKeyPEM` (lockdown's
    /// `DevicePublicKey`, PKCS#1 PEM): RSA-2048 root and host keys and three X.509 v3
    /// certificates valid ten years, the root a CA, the host's and the device's issued by it.
    public static func make(devicePublicKeyPEM: String, systemBUID: String, now: Date = Date()) throws(LetheError) -> PairRecord {
        do {
            let device = try _RSA.Signing.PublicKey(unsafePEMRepresentation: devicePublicKeyPEM)
            let rootKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let hostKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let notBefore = now.addingTimeInterval(-86_400)
            let notAfter = now.addingTimeInterval(10 * 365 * 86_400)
            let name = try DistinguishedName { CommonName("Lethe pairing") }
            func issue(_ key: Certificate.PublicKey, serial: Int, authority: Bool) throws -> Certificate {
                try Certificate(
                    version: .v3, serialNumber: Certificate.SerialNumber(bytes: [UInt8(serial)]), publicKey: key,
                    notValidBefore: notBefore, notValidAfter: notAfter, issuer: name, subject: name,
                    signatureAlgorithm: .sha256WithRSAEncryption,
                    extensions: try Certificate.Extensions {
                        Critical(authority ? BasicConstraints.isCertificateAuthority(maxPathLength: nil) : BasicConstraints.notCertificateAuthority)
                        if !authority { Critical(KeyUsage(digitalSignature: true, keyEncipherment: true)) }
                    },
                    issuerPrivateKey: Certificate.PrivateKey(rootKey))
            }
            let root = try issue(Certificate.PublicKey(rootKey.publicKey), serial: 0, authority: true)
            let host = try issue(Certificate.PublicKey(hostKey.publicKey), serial: 1, authority: false)
            let deviceCertificate = try issue(Certificate.PublicKey(device), serial: 2, authority: false)
            return PairRecord(
                hostID: UUID().uuidString.uppercased(), systemBUID: systemBUID,
                deviceCertificatePEM: try deviceCertificate.serializeAsPEM().pemString,
                hostCertificatePEM: try host.serializeAsPEM().pemString, hostPrivateKeyPEM: hostKey.pemRepresentation,
                rootCertificatePEM: try root.serializeAsPEM().pemString, rootPrivateKeyPEM: rootKey.pemRepresentation)
        } catch {
            throw LetheError(.unexpectedOutput, path: "lockdown DevicePublicKey", "cannot make a pair record for this key: \(error)")
        }
    }

    /// The record as usbmuxd stores it (`SavePairRecord`'s `PairRecordData`).
    public var plist: [String: Any] {
        var record: [String: Any] = [
            "HostID": hostID, "SystemBUID": systemBUID,
            "DeviceCertificate": Data(deviceCertificatePEM.utf8), "HostCertificate": Data(hostCertificatePEM.utf8),
            "HostPrivateKey": Data(hostPrivateKeyPEM.utf8), "RootCertificate": Data(rootCertificatePEM.utf8),
            "RootPrivateKey": Data(rootPrivateKeyPEM.utf8),
        ]
        if let escrowBag { record["EscrowBag"] = escrowBag }
        if let wifiAddress { record["WiFiMACAddress"] = wifiAddress }
        return record
    }

    /// What a `Pair` request carries: the certificates and the host's identity, no private key.
    public var pairRequestRecord: [String: Any] {
        [
            "DeviceCertificate": Data(deviceCertificatePEM.utf8), "HostCertificate": Data(hostCertificatePEM.utf8),
            "RootCertificate": Data(rootCertificatePEM.utf8), "HostID": hostID, "SystemBUID": systemBUID,
        ]
    }

    /// Reads a stored record (from usbmuxd, or written by libimobiledevice's `idevicepair`);
    /// an error names the missing or mistyped field.
    public init(plist: [String: Any], what: String) throws(LetheError) {
        func text(_ key: String) throws(LetheError) -> String {
            if let value = plist[key] as? String { return value }
            if let data = plist[key] as? Data { return String(decoding: data, as: UTF8.self) }
            throw LetheError(.unexpectedOutput, path: what, "the pair record has no \(key)")
        }
        hostID = try text("HostID")
        systemBUID = try text("SystemBUID")
        deviceCertificatePEM = try text("DeviceCertificate")
        hostCertificatePEM = try text("HostCertificate")
        hostPrivateKeyPEM = try text("HostPrivateKey")
        rootCertificatePEM = try text("RootCertificate")
        rootPrivateKeyPEM = try text("RootPrivateKey")
        escrowBag = plist["EscrowBag"] as? Data
        wifiAddress = plist["WiFiMACAddress"] as? String
    }

    /// A record from its parts.
    public init(
        hostID: String, systemBUID: String, deviceCertificatePEM: String, hostCertificatePEM: String, hostPrivateKeyPEM: String,
        rootCertificatePEM: String, rootPrivateKeyPEM: String, escrowBag: Data? = nil, wifiAddress: String? = nil
    ) {
        self.hostID = hostID
        self.systemBUID = systemBUID
        self.deviceCertificatePEM = deviceCertificatePEM
        self.hostCertificatePEM = hostCertificatePEM
        self.hostPrivateKeyPEM = hostPrivateKeyPEM
        self.rootCertificatePEM = rootCertificatePEM
        self.rootPrivateKeyPEM = rootPrivateKeyPEM
        self.escrowBag = escrowBag
        self.wifiAddress = wifiAddress
    }
}
