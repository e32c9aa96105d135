import Foundation
import Testing

/// `--help` teaches: every command of `lethe` and `lethe-hub` shows examples, and every command
/// line in the help, the README and docs/ names commands and flags that exist. The commands
/// are read from the binaries themselves (`--experimental-dump-help`, as generate-manual reads
/// them), so a renamed flag fails here, not in front of a technician.
@Suite struct HelpTests {
    @Test func everyCommandShowsExamplesThatParse() throws {
        let lethe = try CommandTree.load("lethe")
        // The checker itself catches what it is for.
        #expect(lethe.problem(in: "lethe wipe /dev/sdb --methd zero")?.contains("no flag --methd") == true)
        #expect(lethe.problem(in: "lethe keys generate")?.contains("no subcommand generate") == true)
        #expect(lethe.problem(in: "lethe tokens add bench-3 --role technician | tee token") == nil)
        for exe in ["lethe", "lethe-hub"] {
            let tree = exe == "lethe" ? lethe : try CommandTree.load(exe)
            for node in tree.all where node.visible && node.name != "help" {
                let examples = node.examples
                #expect(!examples.isEmpty, "`\(node.path) --help` shows no example")
                for line in examples {
                    #expect(line.hasPrefix(node.path), "`\(node.path)` shows an example of another command: \(line)")
                    if let problem = tree.problem(in: line) { Issue.record("`\(node.path) --help`: \(problem)") }
                }
            }
        }
    }

    @Test func everyCommandLineInTheDocsExists() throws {
        let trees = ["lethe": try CommandTree.load("lethe"), "lethe-hub": try CommandTree.load("lethe-hub")]
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let docs = ((try? FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("docs").path)) ?? [])
            .filter { $0.hasSuffix(".md") }.map { "docs/\($0)" }
        var checked = 0
        for file in ["README.md"] + docs.sorted() {
            let text = try String(contentsOf: repo.appendingPathComponent(file), encoding: .utf8)
            var inCode = false
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("```") { inCode.toggle(); continue }
                // Command lines in code blocks, and `lethe ...` spans in the prose.
                let candidates = inCode ? [line] : Self.codeSpans(line)
                for candidate in candidates {
                    var command = candidate
                    for prefix in ["$ ", "# ", "sudo "] where command.hasPrefix(prefix) { command.removeFirst(prefix.count) }
                    guard let exe = command.split(separator: " ").first.map(String.init), let tree = trees[exe] else { continue }
                    checked += 1
                    if let problem = tree.problem(in: command) { Issue.record("\(file):\(number + 1): \(problem)") }
                }
            }
        }
        #expect(checked > 50, "only \(checked) command lines found in the docs")
    }

    static func codeSpans(_ line: String) -> [String] {
        let parts = line.split(separator: "`", omittingEmptySubsequences: false)
        return stride(from: 1, to: parts.count, by: 2).map { String(parts[$0]) }
    }
}

/// One executable's commands and their flags, from `--experimental-dump-help`.
struct CommandTree {
    final class Node {
        let name: String
        let path: String
        let visible: Bool
        let flags: Set<String>
        let discussion: String
        var children: [String: Node] = [:]

        init(_ json: [String: Any], parent: String?) {
            let name = json["commandName"] as? String ?? ""
            self.name = name
            path = parent.map { "\($0) \(name)" } ?? name
            visible = json["shouldDisplay"] as? Bool ?? true
            discussion = json["discussion"] as? String ?? ""
            var flags: Set<String> = ["--help", "-h", "--version"]
            for argument in json["arguments"] as? [[String: Any]] ?? [] {
                for name in argument["names"] as? [[String: Any]] ?? [] {
                    guard let kind = name["kind"] as? String, let text = name["name"] as? String else { continue }
                    flags.insert(kind == "short" ? "-\(text)" : "--\(text)")
                }
            }
            self.flags = flags
            for child in json["subcommands"] as? [[String: Any]] ?? [] {
                let node = Node(child, parent: path)
                children[node.name] = node
            }
        }

        /// The lines under "Examples:" in the discussion, each a command line (a line ending
        /// in a backslash goes on in the next).
        var examples: [String] {
            guard let range = discussion.range(of: "Examples:\n") else { return [] }
            var lines: [String] = []
            var continued = false
            for raw in discussion[range.upperBound...].split(separator: "\n").prefix(while: { $0.hasPrefix("  ") }) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if continued, let last = lines.popLast() { lines.append(last.dropLast().trimmingCharacters(in: .whitespaces) + " " + line) } else { lines.append(line) }
                continued = line.hasSuffix("\\")
            }
            return lines.filter { !$0.hasPrefix("(") && !$0.isEmpty }
        }
    }

    let root: Node

    static func load(_ exe: String) throws -> CommandTree {
        let path = URL(fileURLWithPath: Host.lethe).deletingLastPathComponent().appendingPathComponent(exe).path
        let result = try Host.run(path, ["--experimental-dump-help"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return CommandTree(root: Node(try #require(json["command"] as? [String: Any]), parent: nil))
    }

    var all: [Node] {
        var out: [Node] = []
        func walk(_ node: Node) {
            out.append(node)
            for key in node.children.keys.sorted() { walk(node.children[key]!) }
        }
        walk(root)
        return out
    }

    /// What is wrong with a command line: an unknown subcommand or flag, or nil.
    func problem(in line: String) -> String? {
        var words = Self.words(line)
        guard words.first == root.name else { return "not a \(root.name) command: \(line)" }
        words.removeFirst()
        var node = root
        while let next = words.first, let child = node.children[next] {
            node = child
            words.removeFirst()
        }
        if !node.children.isEmpty, let next = words.first, !next.hasPrefix("-") {
            return "`\(node.path)` has no subcommand \(next): \(line)"
        }
        for word in words where word.hasPrefix("-") && word.count > 1 && !word.hasPrefix("---") {
            let flag = String(word.prefix { $0 != "=" })
            if Int(flag) != nil { continue }  // a negative number
            if !node.flags.contains(flag) { return "`\(node.path)` has no flag \(flag): \(line)" }
        }
        return nil
    }

    /// Shell words up to the first pipe, redirection, separator or comment; quotes group.
    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var started = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
                continue
            }
            if character == "\"" || character == "'" { quote = character; started = true; continue }
            if character == " " || character == "\t" {
                if started { words.append(current) }
                current = ""
                started = false
                continue
            }
            current.append(character)
            started = true
        }
        if started { words.append(current) }
        let stops: Set<String> = ["|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<", "#", "&", "\\"]
        return Array(words.prefix { !stops.contains($0) && !$0.hasPrefix("(") && !$0.hasPrefix(">") && !$0.hasPrefix("2>") })
    }
}
