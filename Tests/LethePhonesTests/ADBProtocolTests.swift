import LetheCore
import LetheTesting
import Testing

@testable import LethePhones

/// The host protocol against scripted servers: the exact request bytes, FAIL messages turned
/// into errors a technician can act on, garbage and silence.
@Suite struct ADBProtocolTests {
    static func client(_ stream: ScriptedByteStream, timeout: Duration = .seconds(2)) -> ADBClient {
        ADBClient(server: "127.0.0.1:5037", timeout: timeout, connector: { _ throws(LetheError) in stream })
    }

    @Test func versionRequestAndAnswer() throws {
        let stream = ScriptedByteStream("OKAY00040029")
        #expect(try Self.client(stream).version() == 41)
        #expect(stream.written == "000chost:version")
    }

    @Test func devicesLongList() throws {
        let list = "R3CTEST0S24            device usb:1-2 product:e1qzcx model:SM_S9210 device:e1q transport_id:3\nemulator-5554 offline\n0123 no permissions (missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html] usb:1-3 transport_id:4\n"
        let stream = ScriptedByteStream("OKAY" + ADBClient.hex4(list.utf8.count) + list)
        let devices = try Self.client(stream).devices()
        #expect(devices.count == 3)
        #expect(devices[0] == ADBDevice(serial: "R3CTEST0S24", state: "device", product: "e1qzcx", model: "SM_S9210", device: "e1q", transportId: 3))
        #expect(devices[1].state == "offline" && devices[1].stateDescription.contains("re-plug"))
        #expect(devices[2].state == "no permissions" && devices[2].transportId == 4)
    }

    @Test(arguments: [
        ("device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set", LetheError.Code.unauthorized),
        ("device 'R3CTEST0S24' not found", .deviceVanished),
        ("device offline", .deviceVanished),
        ("closed", .unexpectedOutput),
    ])
    func failMessagesBecomeNamedErrors(message: String, code: LetheError.Code) {
        let reply = "FAIL" + ADBClient.hex4(message.utf8.count) + message
        // Each connection gets the same answer (the features query, then the transport).
        let client = ADBClient(server: "127.0.0.1:5037", timeout: .seconds(2), connector: { _ throws(LetheError) in ScriptedByteStream(reply) })
        do {
            _ = try client.shell(serial: "R3CTEST0S24", "getprop")
            Issue.record("no error for \(message)")
        } catch {
            #expect(error.code == code, "\(message): \(error)")
        }
    }

    @Test func garbageAndSilenceAreClearErrors() {
        do {
            _ = try Self.client(ScriptedByteStream("HTTP/1.1 400 Bad Request\r\n")).version()
            Issue.record("garbage accepted")
        } catch {
            #expect(error.code == .unexpectedOutput && error.message.contains("is something else listening"), "\(error)")
        }
        do {
            _ = try Self.client(ScriptedByteStream("OKAY00zz")).version()
            Issue.record("a bad length accepted")
        } catch {
            #expect(error.code == .unexpectedOutput && error.message.contains("four hex digits"))
        }
        do {
            _ = try Self.client(ScriptedByteStream("", stall: true), timeout: .milliseconds(200)).devices()
            Issue.record("silence accepted")
        } catch {
            #expect(error.code == .timedOut)
        }
        do {
            _ = try Self.client(ScriptedByteStream("OKAY0010abc")).devices()
            Issue.record("a truncated answer accepted")
        } catch {
            #expect(error.code == .unexpectedOutput && error.message.contains("closed after"))
        }
    }

    @Test func shellV2FramesAndATruncatedOne() throws {
        func frame(_ id: UInt8, _ text: String) -> [UInt8] {
            let bytes = Array(text.utf8)
            let n = UInt32(bytes.count)
            return [id, UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + bytes
        }
        let good = frame(1, "hello ") + frame(2, "warn\n") + frame(1, "world\n") + [3, 1, 0, 0, 0, 2]
        let result = try ADBClient.readShellV2(ScriptedByteStream(reply: good), deadline: .now + .seconds(1), what: "t")
        #expect(result == ShellResult(stdout: "hello world\n", stderr: "warn\n", exitCode: 2))
        do {
            _ = try ADBClient.readShellV2(ScriptedByteStream(reply: frame(1, "partial")), deadline: .now + .seconds(1), what: "t")
            Issue.record("no exit status accepted")
        } catch {
            #expect(error.code == .deviceVanished)
        }
        do {
            _ = try ADBClient.readShellV2(ScriptedByteStream(reply: [1, 0xff, 0xff, 0xff, 0x7f]), deadline: .now + .seconds(1), what: "t")
            Issue.record("a 2 GiB frame accepted")
        } catch {
            #expect(error.code == .unexpectedOutput)
        }
    }
}
