import Foundation
@testable import LetheReports
import Testing

/// A signed report is written whole or not at all (issue 15, item 12): an EINTR from write(2)
/// used to end the loop as if it had succeeded, and the truncated file was renamed in place.
@Suite struct WriterTests {
    @Test func anInterruptedWriteGoesOnUntilEveryByteIsWritten() throws {
        let path = NSTemporaryDirectory() + "lethe-writer-\(UUID().uuidString)"
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        let data = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        var calls = 0
        let failure = data.withUnsafeBytes { raw in
            ReportWriter.writeAll(fd, raw) { fd, pointer, count in
                calls += 1
                // Every other call is interrupted by a signal; the rest write at most 1000 bytes.
                if calls % 2 == 1 {
                    errno = EINTR
                    return -1
                }
                return Glibc.write(fd, pointer, min(count, 1000))
            }
        }
        close(fd)
        #expect(failure == nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
        // A real error is reported, never a success.
        let bad = data.withUnsafeBytes { raw in ReportWriter.writeAll(-1, raw) { _, _, _ in errno = ENOSPC; return -1 } }
        #expect(bad == ENOSPC)
    }
}
