import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `lethe daemon` with a real loop device and real HTTP on 127.0.0.1: the device is detected
/// and waits for the technician (no shipped profile starts by itself), the start request erases
/// and certifies it, the certificate is served and verifies, the public verify page says so,
/// and SIGTERM stops the daemon cleanly.
@Suite struct DaemonTests {
    struct Reply {
        var status: Int
        var body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
    }

    static func http(_ method: String, _ url: String, token: String? = nil, body: String? = nil) -> Reply? {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.timeoutInterval = 5
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var reply: Reply?
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let response = response as? HTTPURLResponse { reply = Reply(status: response.statusCode, body: data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        return reply
    }

    static func poll<T>(_ seconds: Double, _ probe: () -> T?) -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let value = probe() { return value }
            usleep(100_000)
        }
        return nil
    }

    @Test func detectStartEraseCertifyServe() throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        let state = NSTemporaryDirectory() + "lethe-daemon-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let tech = try Host.lethe("tokens", "add", "bench", "--role", "technician", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let qa = try Host.lethe("tokens", "add", "auditor", "--role", "qa", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(tech.hasPrefix("lethe_") && qa.hasPrefix("lethe_") && tech != qa)
        #expect(!(try String(contentsOfFile: "\(state)/tokens.json", encoding: .utf8)).contains(tech), "tokens are stored hashed")
        let profiles = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("profiles").path
        let port = Host.freePort()
        let base = "http://127.0.0.1:\(port)"
        let daemon = try LineWatcher(Host.lethe, ["daemon", "--no-phones", "--state-dir", state, "--profiles", profiles, "--listen", "127.0.0.1:\(port)"])
        defer { daemon.stop() }
        #expect(Self.poll(20) { Self.http("GET", "\(base)/healthz")?.status == 200 ? true : nil } == true, "daemon did not come up: \(daemon.stderr)")

        // Auth: 401 without a token or with an unknown one, 403 for the wrong role.
        #expect(Self.http("GET", "\(base)/api/v1/jobs")?.status == 401)
        #expect(Self.http("GET", "\(base)/api/v1/jobs", token: "lethe_nope")?.status == 401)
        #expect(Self.http("GET", "\(base)/api/v1/jobs", token: qa)?.status == 200)
        // Live events: a Server-Sent Events stream, token in the query (EventSource sends no headers).
        #expect(Self.http("GET", "\(base)/api/v1/events")?.status == 401)
        let events = try LineWatcher("/usr/bin/curl", ["-sN", "--max-time", "120", "\(base)/api/v1/events?token=\(qa)"])
        defer { events.stop() }
        let loop = try LoopDevice(sizeBytes: 32 << 20, fill: 0x77)
        let job: [String: Any]? = Self.poll(10) {
            // Another suite's loop device may have had this path a moment ago: its job is not ours.
            (Self.http("GET", "\(base)/api/v1/jobs", token: qa)?.json as? [[String: Any]])?.first {
                $0["device"] as? String == loop.path && $0["state"] as? String == "waiting"
            }
        }
        let waiting = try #require(job, "no job for \(loop.path): \(daemon.stderr)")
        #expect(waiting["state"] as? String == "waiting")
        #expect(waiting["profile"] as? String == "demo-loop")
        #expect(try loop.contents().prefix(4096).allSatisfy { $0 == 0x77 }, "written before anyone pressed start")
        let id = try #require(waiting["id"] as? String)

        let forbidden = Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: qa)
        #expect(forbidden?.status == 403)
        let forbiddenText = String(decoding: forbidden?.body ?? Data(), as: UTF8.self)
        #expect(forbiddenText.contains("role qa"))
        // A start's optional body: only a TCG revert may replace the method, a PSID is 32
        // letters and digits, and a body that is not JSON is named; none of them starts it.
        let startNotJSON = Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech, body: "psid=123")
        #expect(startNotJSON?.status == 400 && String(decoding: startNotJSON?.body ?? Data(), as: UTF8.self).contains("the body must be empty, or JSON"))
        let otherMethod = Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech, body: #"{"method": "gutmann"}"#)
        #expect(otherMethod?.status == 400 && String(decoding: otherMethod?.body ?? Data(), as: UTF8.self).contains("only tcg-psid-revert, tcg-revert-sp or tcg-crypto-erase"))
        let shortPSID = Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech, body: #"{"method": "tcg-psid-revert", "psid": "1234"}"#)
        #expect(shortPSID?.status == 400 && String(decoding: shortPSID?.body ?? Data(), as: UTF8.self).contains("a PSID is 32 letters and digits"))
        let noPassword = Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech, body: #"{"method": "tcg-crypto-erase"}"#)
        #expect(noPassword?.status == 400 && String(decoding: noPassword?.body ?? Data(), as: UTF8.self).contains("password: tcg-crypto-erase needs the owner's Admin1 password"))
        #expect((Self.http("GET", "\(base)/api/v1/jobs/\(id)", token: qa)?.json as? [String: Any])?["state"] as? String == "waiting")
        #expect(Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        #expect(Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 409)
        #expect(Self.http("GET", "\(base)/api/v1/jobs/NOSUCHJOB", token: qa)?.status == 404)
        let finished: [String: Any]? = Self.poll(60) {
            guard let j = Self.http("GET", "\(base)/api/v1/jobs/\(id)", token: qa)?.json as? [String: Any], j["step"] as? String == "grade" else { return nil }
            return j
        }
        let done = try #require(finished, "job did not finish: \(daemon.stderr)")
        #expect(done["state"] as? String == "erased", "\(done)")
        #expect(done["certified"] as? Bool == true)
        #expect(try loop.contents().allSatisfy { $0 == 0 })
        let reportId = try #require(done["reportId"] as? String)

        // The certificate through the API verifies with the station's key.
        let certificate = try #require(Self.http("GET", "\(base)/api/v1/reports/\(reportId)"))
        #expect(certificate.status == 200)
        let file = "\(state)/downloaded.json"
        try certificate.body.write(to: URL(fileURLWithPath: file))
        #expect(try Host.lethe("report", "verify", file, "--state-dir", state).status == 0)
        let pdf = try #require(Self.http("GET", "\(base)/api/v1/reports/\(reportId).pdf"))
        #expect(pdf.status == 200 && pdf.body.starts(with: Data("%PDF".utf8)))
        #expect(Self.http("GET", "\(base)/api/v1/reports/NOT-AN-ID")?.status == 400)
        #expect(Self.http("GET", "\(base)/api/v1/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0")?.status == 404)
        #expect(Self.http("GET", "\(base)/api/v1/reports")?.status == 401)
        let listed = Self.http("GET", "\(base)/api/v1/reports", token: qa)?.json as? [[String: Any]]
        #expect(listed?.contains { $0["id"] as? String == reportId } == true)

        // The public verify page the QR code points at.
        let page = try #require(Self.http("GET", "\(base)/verify/\(reportId)"))
        let text = String(decoding: page.body, as: UTF8.self)
        #expect(text.contains("Erase certified") && text.contains("the signature is valid"), "\(text)")
        let wrong = String(decoding: Self.http("GET", "\(base)/verify/\(reportId)?d=AAAA")?.body ?? Data(), as: UTF8.self)
        #expect(wrong.contains("does not match"))
        let dashboard = String(decoding: Self.http("GET", "\(base)/")?.body ?? Data(), as: UTF8.self)
        #expect(dashboard.contains("Lethe bench"))

        // The cosmetic grade, then the refurb report. Bad requests are 4xx with a message.
        let gradeURL = "\(base)/api/v1/jobs/\(id)/grade"
        #expect(done["refurbReportId"] == nil, "the refurb report waits for the cosmetic grade")
        #expect(Self.http("POST", gradeURL, token: qa, body: #"{"grade":"B"}"#)?.status == 403)
        let notJSON = Self.http("POST", gradeURL, token: tech, body: "grade=B")
        #expect(notJSON?.status == 400 && String(decoding: notJSON?.body ?? Data(), as: UTF8.self).contains("must be JSON"))
        let noGrade = Self.http("POST", gradeURL, token: tech, body: #"{"notes":"x"}"#)
        #expect(noGrade?.status == 400 && ((noGrade?.json as? [String: Any])?["message"] as? String)?.contains("field \"grade\" is missing") == true)
        let badGrade = Self.http("POST", gradeURL, token: tech, body: #"{"grade":"F"}"#)
        #expect(badGrade?.status == 400 && String(decoding: badGrade?.body ?? Data(), as: UTF8.self).contains("A, B, C, D, E"))
        #expect(Self.http("POST", "\(base)/api/v1/jobs/NOSUCHJOB/grade", token: tech, body: #"{"grade":"B"}"#)?.status == 404)
        let graded = Self.http("POST", gradeURL, token: tech, body: #"{"grade":"b","notes":"light scratches on the lid"}"#)
        #expect(graded?.status == 200, "\(String(decoding: graded?.body ?? Data(), as: UTF8.self))")
        let gradedJob = try #require(graded?.json as? [String: Any])
        #expect(gradedJob["cosmeticGrade"] as? String == "B" && gradedJob["step"] as? String == "done")
        #expect(Self.http("POST", gradeURL, token: tech, body: #"{"grade":"A"}"#)?.status == 409, "graded once only")
        let refurbId = try #require(gradedJob["refurbReportId"] as? String)
        let refurbFile = try #require(Self.http("GET", "\(base)/api/v1/reports/\(refurbId)"))
        let refurb = try #require((try JSONSerialization.jsonObject(with: refurbFile.body) as? [String: Any])?["report"] as? [String: Any])
        let cosmetic = refurb["cosmetic"] as? [String: Any]
        #expect(cosmetic?["grade"] as? String == "B" && cosmetic?["gradedBy"] as? String == "bench" && cosmetic?["notes"] as? String == "light scratches on the lid")
        // A loop device has no SMART (functional grade C): the sale grade is the worse of the two.
        #expect(refurb["grade"] as? String == "C", "\(refurb["grade"] ?? "nil") \(refurb["gradeReason"] ?? "")")
        try refurbFile.body.write(to: URL(fileURLWithPath: "\(state)/refurb.json"))
        #expect(try Host.lethe("report", "verify", "\(state)/refurb.json", "--state-dir", state).status == 0)
        if let pdftotext = Host.which("pdftotext") {
            let pdf = try #require(Self.http("GET", "\(base)/api/v1/reports/\(refurbId).pdf"))
            try pdf.body.write(to: URL(fileURLWithPath: "\(state)/refurb.pdf"))
            let text = try Host.run(pdftotext, ["\(state)/refurb.pdf", "-"]).stdout
            #expect(text.contains("Cosmetic grade") && text.contains("light scratches on the lid"), "\(text)")
        }

        // Tokens are read again when the file changes (issue 15, item 11): a new one works, a
        // removed one stops working, without a restart.
        let late = try Host.lethe("tokens", "add", "late", "--role", "qa", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Self.poll(5) { Self.http("GET", "\(base)/api/v1/jobs", token: late)?.status == 200 ? true : nil } == true, "a token added while running was not accepted")
        #expect(try Host.lethe("tokens", "remove", "late", "--state-dir", state).status == 0)
        #expect(Self.poll(5) { Self.http("GET", "\(base)/api/v1/jobs", token: late)?.status == 401 ? true : nil } == true, "a removed token was still accepted")
        #expect(try Host.lethe("tokens", "remove", "nobody", "--state-dir", state).status != 0)
        #expect(Self.http("GET", "\(base)/api/v1/jobs", token: qa)?.status == 200)

        // /metrics (public, counts only) in Prometheus text format, read by the reference parser.
        let metrics = try #require(Self.http("GET", "\(base)/metrics"))
        #expect(metrics.status == 200)
        let exposition = String(decoding: metrics.body, as: UTF8.self)
        #expect(exposition.contains("lethe_jobs_finished_total{status=\"erased\",certified=\"true\"} 1"), "\(exposition)")
        #expect(exposition.contains("lethe_bytes_written_total \(32 << 20)"))
        #expect(!exposition.contains(loop.path), "no device identities in metrics")
        let parsed = try Host.run("/usr/bin/env", ["python3", "-c", """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            families = {f.name: f for f in text_string_to_metric_families(sys.argv[1])}
            print(sorted(families))
            assert families["lethe_jobs_finished"].type == "counter"
            assert families["lethe_job_duration_seconds"].type == "histogram"
            """, exposition])
        #expect(parsed.status == 0, "prometheus_client could not parse /metrics: \(parsed.stderr)")

        // The stream saw the device docked, and the job go from waiting through running to erased.
        let frames = events.stdoutLines.filter { $0.hasPrefix("data: ") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any]
        }
        #expect(frames.contains { $0["path"] as? String == loop.path }, "no device event: \(events.stdoutLines.prefix(5))")
        let states = frames.filter { $0["id"] as? String == id && $0["step"] as? String != "grading" }.compactMap { $0["state"] as? String }
        #expect(states.first == "waiting" && states.contains("running") && states.last == "erased", "\(states)")
        let progress = frames.filter { $0["id"] as? String == id && $0["state"] as? String == "running" }.compactMap { $0["percent"] as? Double }
        #expect(progress == progress.sorted(), "progress only goes up: \(progress)")

        // Graceful stop, with the event stream still open.
        #expect(events.process.isRunning)
        let stopAsked = Date()
        kill(daemon.process.processIdentifier, SIGTERM)
        daemon.process.waitUntilExit()
        #expect(Date().timeIntervalSince(stopAsked) < 10, "an open event stream held up the shutdown")
        events.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0, "\(daemon.stderr)")
        #expect(daemon.stderr.contains("stopped"))
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }
}

extension DaemonTests {
    /// scripts/dashboard-screenshot.sh: headless Chromium saves the dashboard with a bay
    /// mid-erase (the script leaves the job's JSON on stdout: it was running, with progress).
    @Test func dashboardScreenshotShowsABayWithProgress() throws {
        guard Host.canLoop, FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), Host.which("curl") != nil else {
            print("skipped: needs root, loop devices, chromium and curl")
            return
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let png = NSTemporaryDirectory() + "lethe-dashboard-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: png) }
        let result = try Host.run("/bin/bash", [repo.appendingPathComponent("scripts/dashboard-screenshot.sh").path, png, Host.lethe], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let job = result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.first
        #expect(job?["state"] as? String == "running", "\(result.stdout)")
        #expect((job?["percent"] as? Double ?? 0) > 0)
        // The live dashboard (event stream, not polling) moved the bay's bar between two readings.
        let live = result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { $0["first"] != nil }
        if let live {
            let first = live["first"] as? [String: Any], second = live["second"] as? [String: Any]
            #expect(first?["live"] as? String == "live" && second?["live"] as? String == "live", "\(live)")
            // The script's own drive (other tests may have loop devices docked at the same time).
            let drive = job?["device"] as? String ?? "?"
            func width(_ reading: [String: Any]?) -> Double? {
                ((reading?["cards"] as? [[String: Any]])?.first { $0["bay"] as? String == drive })?["width"] as? Double
            }
            let (a, b) = (width(first), width(second))
            #expect(a != nil && b != nil && b! > a!, "the bar did not move: \(a ?? -1) then \(b ?? -1)")
        } else {
            Issue.record("no live-dashboard reading (is websocket-client installed?): \(result.stdout)")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: png))
        #expect(data.starts(with: [0x89, 0x50, 0x4e, 0x47]))
        #expect(data.count > 10_000, "a blank page would be smaller")
    }
}

extension DaemonTests {
    /// schemathesis (PyPI) fuzzes every operation of api/openapi.yaml against a live daemon:
    /// no response may be a server error.
    @Test func schemathesisFindsNoServerErrors() throws {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/schemathesis" }
        guard let schemathesis = path.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipped: schemathesis is not installed (python3 -m pip install schemathesis)")
            return
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let state = NSTemporaryDirectory() + "lethe-fuzz-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let token = try Host.lethe("tokens", "add", "fuzz", "--role", "technician", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let port = Host.freePort()
        let daemon = try LineWatcher(Host.lethe, [
            "daemon", "--no-phones", "--state-dir", state, "--profiles", repo.appendingPathComponent("profiles").path, "--listen", "127.0.0.1:\(port)",
        ])
        defer { daemon.stop() }
        #expect(Self.poll(20) { Self.http("GET", "http://127.0.0.1:\(port)/healthz")?.status == 200 ? true : nil } == true)
        let run = try Host.run(schemathesis, [
            "run", repo.appendingPathComponent("api/openapi.yaml").path, "-u", "http://127.0.0.1:\(port)", "-c", "not_a_server_error",
            "-H", "Authorization: Bearer \(token)", "-n", "30", "--seed", "1",
            // The event stream never ends by design; DaemonTests reads it with curl instead.
            "--exclude-path", "/api/v1/events",
        ], timeout: 300)
        #expect(run.status == 0, "\(run.stdout.suffix(3000))")
        #expect(run.stdout.contains("passed"))
    }
}

extension DaemonTests {
    /// A malformed config stops the daemon before it starts, naming file, line and field.
    @Test func daemonRefusesABadConfig() throws {
        let file = NSTemporaryDirectory() + "lethe-config-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "# comments are fine\nstation:\n  name: Bench 9\n  verifyBaseURL: not a url\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Host.run(Host.lethe, ["daemon", "--no-phones", "--config", file], timeout: 30)
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(file):4:18") && result.stderr.contains("station.verifyBaseURL"), "\(result.stderr)")
        let check = try Host.run(Host.lethe, ["config", "check", file], timeout: 30)
        #expect(check.status == 2)
    }
}

extension DaemonTests {
    /// kill -9 in the middle of a wipe, then a restart: the job is `interrupted` with no
    /// certificate; the resume picks up from the last checkpoint with the recorded seeds and
    /// certifies; the audit chain records all of it and verifies.
    @Test func killDashNineMidWipeThenResumeCertifies() throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        let state = NSTemporaryDirectory() + "lethe-crash-\(UUID().uuidString)"
        let profiles = "\(state)/profiles"
        try FileManager.default.createDirectory(atPath: profiles, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        // Many passes, so there is time to kill it mid-pass.
        try """
            name: crash-loop
            priority: 50
            match: {kind: drive, transport: loop}
            diagnostics: {smart: false}
            erase: {method: gutmann, verification: last}
            start: manual
            """.write(toFile: "\(profiles)/crash-loop.yaml", atomically: true, encoding: .utf8)
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let tech = try Host.lethe("tokens", "add", "bench", "--role", "technician", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let port = Host.freePort()
        let base = "http://127.0.0.1:\(port)"
        let arguments = ["daemon", "--no-phones", "--state-dir", state, "--profiles", profiles, "--listen", "127.0.0.1:\(port)", "--checkpoint-seconds", "0.05"]
        let loop = try LoopDevice(sizeBytes: 128 << 20, fill: 0x77)

        func jobOnLoop(_ where: ([String: Any]) -> Bool) -> [String: Any]? {
            (Self.http("GET", "\(base)/api/v1/jobs", token: tech)?.json as? [[String: Any]])?.first { $0["device"] as? String == loop.path && `where`($0) }
        }
        let first = try LineWatcher(Host.lethe, arguments)
        defer { first.stop() }
        let waiting = try #require(Self.poll(20) { jobOnLoop { $0["state"] as? String == "waiting" } }, "no job: \(first.stderr)")
        let id = try #require(waiting["id"] as? String)
        #expect(Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        // Wait until a few passes are on the medium, then pull the plug on the process.
        let midway = Self.poll(60) { () -> Double? in
            guard let j = jobOnLoop({ $0["id"] as? String == id }), j["state"] as? String == "running",
                let percent = j["percent"] as? Double, percent > 15 else { return nil }
            return percent
        }
        #expect(midway != nil && midway! < 90, "job never got midway: \(first.stderr)")
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        #expect(first.process.terminationReason == .uncaughtSignal)

        let second = try LineWatcher(Host.lethe, arguments)
        defer { second.stop() }
        #expect(second.waitForStderr("as interrupted: \(id)", timeout: 20), "\(second.stderr)")
        let interrupted = try #require(Self.poll(20) { jobOnLoop { $0["id"] as? String == id } }, "\(second.stderr)")
        #expect(interrupted["state"] as? String == "interrupted")
        #expect(interrupted["resumable"] as? Bool == true)
        #expect(interrupted["reportId"] == nil && interrupted["certified"] == nil, "an interrupted job has no certificate")
        let resumedFrom = try #require(interrupted["percent"] as? Double)
        #expect(resumedFrom > 0, "the checkpoint says how far it got")
        let reports = Self.http("GET", "\(base)/api/v1/reports", token: tech)?.json as? [[String: Any]]
        #expect(reports?.isEmpty == true, "nothing was certified")
        #expect(second.waitForStderr("was interrupted at", timeout: 10), "the technician is told: \(second.stderr)")
        // The new waiting job for the same device is not resumable; an unknown one is 404.
        if let fresh = jobOnLoop({ $0["state"] as? String == "waiting" }), let freshId = fresh["id"] as? String {
            #expect(Self.http("POST", "\(base)/api/v1/jobs/\(freshId)/resume", token: tech)?.status == 409)
        }
        #expect(Self.http("POST", "\(base)/api/v1/jobs/NOSUCHJOB/resume", token: tech)?.status == 404)

        #expect(Self.http("POST", "\(base)/api/v1/jobs/\(id)/resume", token: tech)?.status == 202)
        let finished = try #require(Self.poll(120) { () -> [String: Any]? in
            guard let j = jobOnLoop({ $0["id"] as? String == id }), ["grade", "done"].contains(j["step"] as? String ?? "") else { return nil }
            return j
        }, "resume did not finish: \(second.stderr)")
        #expect(finished["state"] as? String == "erased", "\(finished)\n\(second.stderr)")
        #expect(finished["certified"] as? Bool == true)
        let reportId = try #require(finished["reportId"] as? String)
        let file = try #require(Self.http("GET", "\(base)/api/v1/reports/\(reportId)", token: tech))
        let document = try #require((try JSONSerialization.jsonObject(with: file.body) as? [String: Any])?["report"] as? [String: Any])
        let passes = try #require((document["sanitization"] as? [String: Any])?["passes"] as? [[String: Any]])
        #expect(passes.count == 35)
        #expect(passes.allSatisfy { $0["completed"] as? Bool == true })
        let resumed = passes.filter { $0["resumedAt"] != nil }
        #expect(resumed.count <= 1, "at most the interrupted pass picked up mid-way: \(resumed)")
        // It went on from the checkpoint, not from pass 1.
        let line = second.stderr.split(separator: "\n").first { $0.contains("resuming at pass") }.map(String.init) ?? ""
        let pass = Int(line.components(separatedBy: "resuming at pass ").last?.split(separator: " ").first ?? "") ?? 0
        #expect(pass > 1, "resumed at pass \(pass): \(second.stderr)")
        #expect(passes.allSatisfy { ($0["bytesWritten"] as? Int) == 128 << 20 })
        let downloaded = "\(state)/resumed.json"
        try file.body.write(to: URL(fileURLWithPath: downloaded))
        #expect(try Host.lethe("report", "verify", downloaded, "--state-dir", state).status == 0)
        let contents = try loop.contents()
        #expect(contents.filter { $0 == 0x77 }.count < contents.count / 100, "the old content is gone")

        kill(second.process.processIdentifier, SIGTERM)
        second.process.waitUntilExit()
        let audit = try Host.lethe("audit", "log", "--state-dir", state).stdout
        for kind in ["job.started", "job.interrupted", "job.resumed", "job.finished", "report.issued"] {
            #expect(audit.contains(kind), "audit log lacks \(kind)")
        }
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }
}

extension DaemonTests {
    /// A daemon profile with a firmware method and a surface scan, on a real loop device: the
    /// job reads the surface first (step `surface` on the event stream), `nist-purge` finds no
    /// firmware erase and falls back to Clear with the reason on the certificate, and the refurb
    /// report carries the scan judged by the profile's own thresholds.
    @Test func firmwareProfileWithSurfaceScan() throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        let state = NSTemporaryDirectory() + "lethe-daemon-purge-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let tech = try Host.lethe("tokens", "add", "bench", "--role", "technician", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.createDirectory(atPath: "\(state)/profiles", withIntermediateDirectories: true)
        try """
            name: loop-purge
            priority: 10
            match: {kind: drive, transport: loop}
            diagnostics:
              smart: false
              surface: {scan: full, slowMilliseconds: 5000, unreadableSectorsFail: 8}
            erase: {method: nist-purge, openHiddenAreas: true}
            start: manual
            """.write(toFile: "\(state)/profiles/loop-purge.yaml", atomically: true, encoding: .utf8)
        let port = Host.freePort()
        let base = "http://127.0.0.1:\(port)"
        let daemon = try LineWatcher(Host.lethe, ["daemon", "--no-phones", "--state-dir", state, "--profiles", "\(state)/profiles", "--listen", "127.0.0.1:\(port)"])
        defer { daemon.stop() }
        #expect(Self.poll(20) { Self.http("GET", "\(base)/healthz")?.status == 200 ? true : nil } == true, "daemon did not come up: \(daemon.stderr)")
        let events = try LineWatcher("/usr/bin/curl", ["-sN", "--max-time", "120", "\(base)/api/v1/events?token=\(tech)"])
        defer { events.stop() }
        let loop = try LoopDevice(sizeBytes: 32 << 20, fill: 0x44)
        let job: [String: Any]? = Self.poll(10) {
            (Self.http("GET", "\(base)/api/v1/jobs", token: tech)?.json as? [[String: Any]])?.first { $0["device"] as? String == loop.path }
        }
        let waiting = try #require(job, "no job for \(loop.path): \(daemon.stderr)")
        #expect(waiting["profile"] as? String == "loop-purge" && waiting["method"] as? String == "nist-purge")
        let id = try #require(waiting["id"] as? String)
        #expect(Self.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        let finished: [String: Any]? = Self.poll(60) {
            guard let j = Self.http("GET", "\(base)/api/v1/jobs/\(id)", token: tech)?.json as? [String: Any], j["step"] as? String == "grade" else { return nil }
            return j
        }
        let done = try #require(finished, "job did not finish: \(daemon.stderr)")
        #expect(done["state"] as? String == "erased" && done["certified"] as? Bool == true, "\(done)")
        #expect(try loop.contents().allSatisfy { $0 == 0 })
        #expect(daemon.stderr.contains("reading the surface (full) before erasing"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("surface scan pass: every read succeeded, none slower than 5000 ms"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("fell back to NIST Clear"), "\(daemon.stderr)")

        // The certificate says Clear, and why not Purge.
        let reportId = try #require(done["reportId"] as? String)
        let certificate = try #require(Self.http("GET", "\(base)/api/v1/reports/\(reportId)"))
        let signed = (try JSONSerialization.jsonObject(with: certificate.body) as? [String: Any])?["report"] as? [String: Any]
        let sanitization = signed?["sanitization"] as? [String: Any]
        #expect(sanitization?["method"] as? String == "nist-clear" && sanitization?["category"] as? String == "Clear")
        #expect((sanitization?["choice"] as? String ?? "").contains("a loop device has no firmware erase commands"), "\(String(describing: sanitization))")

        // The refurb report, once graded, carries the scan with the profile's thresholds.
        let graded = Self.http("POST", "\(base)/api/v1/jobs/\(id)/grade", token: tech, body: #"{"grade":"A"}"#)
        #expect(graded?.status == 200)
        let refurbId = try #require((graded?.json as? [String: Any])?["refurbReportId"] as? String)
        let refurbFile = try #require(Self.http("GET", "\(base)/api/v1/reports/\(refurbId)"))
        let refurb = (try JSONSerialization.jsonObject(with: refurbFile.body) as? [String: Any])?["report"] as? [String: Any]
        let surface = try #require((refurb?["diagnostics"] as? [String: Any])?["surface"] as? [String: Any], "\(String(describing: refurb))")
        #expect(surface["mode"] as? String == "full" && surface["bytesRead"] as? Int == 32 << 20 && surface["verdict"] as? String == "pass")
        let limits = surface["thresholds"] as? [String: Any]
        #expect(limits?["slowMilliseconds"] as? Int == 5000 && limits?["unreadableSectorsFail"] as? Int == 8 && limits?["unreadableSectorsWarn"] as? Int == 1)
        try refurbFile.body.write(to: URL(fileURLWithPath: "\(state)/refurb.json"))
        if let python = try Host.pythonVerifyCertificate("\(state)/refurb.json", state: state, schema: "refurb-report") {
            #expect(python.stdout.hasPrefix("VALID"), "\(python.stdout) \(python.stderr)")
        }

        // The event stream showed the scan as its own step, before the erase.
        let steps = events.stdoutLines.filter { $0.hasPrefix("data: ") }.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any]).flatMap { $0["id"] as? String == id ? $0["step"] as? String : nil }
        }
        let surfaceAt = steps.firstIndex(of: "surface")
        let certifyAt = steps.firstIndex(of: "certify")
        #expect(surfaceAt != nil && certifyAt != nil && surfaceAt! < certifyAt!, "\(steps)")
        kill(daemon.process.processIdentifier, SIGTERM)
        daemon.process.waitUntilExit()
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }
}
