// swift-tools-version:6.1
// Lethe: refurbishment-bench daemon and CLI. See ../shared/DESIGN.md (layout) and README.md.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Lethe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lethe", targets: ["lethe"]),
        .library(name: "LetheCore", targets: ["LetheCore"]),
        .library(name: "LetheWipe", targets: ["LetheWipe"]),
        .library(name: "LetheLinux", targets: ["LetheLinux"]),
        .library(name: "LetheTesting", targets: ["LetheTesting"]),
        .library(name: "LetheDiagnostics", targets: ["LetheDiagnostics"]),
        .library(name: "LetheReports", targets: ["LetheReports"]),
        .library(name: "LethePhones", targets: ["LethePhones"]),
        .library(name: "LetheHub", targets: ["LetheHub"]),
        .executable(name: "lethe-hub", targets: ["lethe-hub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Linux constants and ioctls Swift cannot import (O_DIRECT, BLKGETSIZE64, ...).
        .target(name: "CLethe"),
        // The random passes' AES-128-CTR keystream, from OpenSSL's libcrypto (libssl-dev).
        .target(name: "CKeystream", linkerSettings: [.linkedLibrary("crypto")]),
        // libudev (enumeration, monitor) and libusb (descriptors, hotplug), from Debian's -dev packages.
        .systemLibrary(name: "CUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        .systemLibrary(name: "CUsb", pkgConfig: "libusb-1.0", providers: [.apt(["libusb-1.0-0-dev"])]),
        // cairo + pango (PDF), libqrencode (QR codes).
        .systemLibrary(name: "CCairo", pkgConfig: "pangocairo", providers: [.apt(["libcairo2-dev", "libpango1.0-dev"])]),
        .systemLibrary(name: "CQrencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        // Pure values and protocols: methods, pass plans, verification policy, outcomes, errors.
        .target(name: "LetheCore", swiftSettings: strict),
        // The only module that touches the OS: block devices, sysfs, mount table, the guard.
        .target(name: "LetheLinux", dependencies: ["LetheCore", "CLethe", "CUdev", "CUsb"], swiftSettings: strict),
        // Canonical JSON, JWS signing and verification, station keys, PDF + QR rendering.
        .target(
            name: "LetheReports",
            dependencies: ["LetheCore", "CCairo", "CQrencode", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // Profiles and station config from YAML (comments allowed; errors with file, line, field).
        .target(name: "LetheConfig", dependencies: ["LetheCore", .product(name: "Yams", package: "Yams")], swiftSettings: strict),
        // The store: SQLite through GRDB (WAL, numbered migrations), jobs, reports, audit chain.
        .target(
            name: "LetheStore",
            dependencies: ["LetheCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // Catalog sync: the outbox over the store, its delivery (AsyncHTTPClient, HMAC, backoff,
        // dead letters) and the reference receiver (`lethe catalog serve`).
        .target(
            name: "LetheSync",
            dependencies: [
                "LetheCore", "LetheStore", "LetheReports", "LetheConfig",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
            ],
            swiftSettings: strict),
        // The daemon's library: jobs (erase, certify, record), the bench state, services, HTTP.
        .target(
            name: "LetheAgent",
            dependencies: [
                "LetheCore", "LetheLinux", "LetheWipe", "LetheDiagnostics", "LetheReports", "LetheConfig", "LetheStore", "LetheSync", "LethePhones",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The fleet hub: station registry, ingest, forwarding, public verification, QA and supply
        // quality, on PostgreSQL through PostgresNIO. Stateless: every instance shares the database.
        .target(
            name: "LetheHub",
            dependencies: [
                "LetheCore", "LetheReports", "LetheSync", "LetheConfig",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The hub's thin executable.
        .executableTarget(
            name: "lethe-hub",
            dependencies: [
                "LetheCore", "LetheHub", "LetheReports", "LetheSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // TLS over a blocking byte stream (lockdown's mid-connection TLS): swift-nio-ssl's
        // handler in an in-memory channel. Shared by the iPhone client and its simulator.
        .target(
            name: "LetheTLS",
            dependencies: [
                "LetheCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // libplist, the property-list library libimobiledevice and usbmuxd use.
        .systemLibrary(name: "CPlist", pkgConfig: "libplist-2.0", providers: [.apt(["libplist-dev"])]),
        // Phones. Android: the adb server's host protocol, probes (getprop, dumpsys battery,
        // trade-in mode) and factory-reset flows. iPhones: usbmux, lockdown, pairing, services.
        .target(
            name: "LethePhones",
            dependencies: [
                "LetheCore", "LetheWipe", "LetheTLS", "CPlist",
                // iPhones: the pairing certificates (swift-certificates, RSA from swift-crypto's extras).
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict),
        // SMART (smartctl JSON) parsing and health grading.
        .target(name: "LetheDiagnostics", dependencies: ["LetheCore"], swiftSettings: strict),
        // The erase engine: runs a pass plan against any BlockDevice.
        .target(
            name: "LetheWipe",
            dependencies: [
                "LetheCore",
                "CKeystream",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        // Fakes shipped as a library: in-memory block device with fault injection.
        .target(
            name: "LetheTesting",
            dependencies: [
                "LetheCore", "LetheTLS",
                // The simulated iPhone makes its own device key and signs with the pair record's.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict),
        // The thin executable.
        .executableTarget(
            name: "lethe",
            dependencies: [
                "LetheCore", "LetheLinux", "LetheWipe", "LetheDiagnostics", "LetheReports", "LetheConfig", "LetheStore", "LetheAgent", "LetheSync", "LethePhones",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "LetheCoreTests", dependencies: ["LetheCore"], swiftSettings: strict),
        .testTarget(name: "LethePhonesTests", dependencies: ["LethePhones", "LetheCore", "LetheTesting"], swiftSettings: strict),
        .testTarget(name: "LetheConfigTests", dependencies: ["LetheConfig", "LetheCore"], swiftSettings: strict),
        .testTarget(
            name: "LetheDiagnosticsTests", dependencies: ["LetheDiagnostics", "LetheCore", "LetheTesting", "LetheWipe"],
            resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(
            name: "LetheReportsTests", dependencies: ["LetheReports", "LetheCore", "lethe"],
            exclude: ["verify_jws.py", "Fixtures"],  // run with Debian's python3 by the tests; signed documents of earlier schemas
            swiftSettings: strict),
        .testTarget(
            name: "LetheWipeTests",
            dependencies: ["LetheWipe", "LetheTesting", .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto")],
            swiftSettings: strict),
        .testTarget(
            name: "LetheLinuxTests",
            dependencies: ["LetheLinux", "LetheWipe", "LetheCore", "LetheStore", "LetheSync", "LetheReports", "LethePhones", "LetheTesting", "LetheAgent", "LetheConfig", "lethe"],
            exclude: ["Testbeds"],  // umockdev files, read from the source tree by umockdev-run
            swiftSettings: strict
        ),
        .testTarget(
            name: "LetheHubTests",
            dependencies: [
                "LetheHub", "LetheCore", "LetheReports", "LetheSync", "lethe-hub", "lethe",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .testTarget(name: "LabTests", dependencies: ["LetheCore", "lethe"], swiftSettings: strict),
    ]
)

// The fuzzers (scripts/fuzz.sh): built only with LETHE_FUZZ=1 and `-sanitize=fuzzer`, where
// libFuzzer supplies `main`; a normal build never sees this target.
if Context.environment["LETHE_FUZZ"] == "1" {
    package.targets.append(.executableTarget(
        name: "LetheFuzz", dependencies: ["LetheCore", "LethePhones", "LetheDiagnostics", "LetheConfig", "LetheTesting"],
        swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]))
    package.products.append(.executable(name: "lethe-fuzz", targets: ["LetheFuzz"]))
}
