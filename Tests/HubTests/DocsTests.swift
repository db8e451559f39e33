import Foundation
import HubServer
import HubTesting
import Testing

/// The README and docs/ say what the hub has: no internal link leads nowhere, and every route of the API and
/// every command of the CLI is mentioned somewhere (a route or command added without a word fails here).
@Suite struct DocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func documents() throws -> [(url: URL, text: String)] {
        let docs = root.appendingPathComponent("docs")
        let pages = try FileManager.default.contentsOfDirectory(atPath: docs.path).filter { $0.hasSuffix(".md") }.sorted()
        return try ([root.appendingPathComponent("README.md")] + pages.map { docs.appendingPathComponent($0) }).map {
            ($0, try String(contentsOf: $0, encoding: .utf8))
        }
    }

    @Test("every internal link in README.md and docs/ leads to a file that exists")
    func noDeadInternalLinks() throws {
        let link = /\]\(([^)\s]+)\)/
        var checked = 0
        for (url, text) in try Self.documents() {
            for match in text.matches(of: link) {
                let target = String(match.1)
                guard !target.contains("://"), !target.hasPrefix("mailto:"), !target.hasPrefix("#") else { continue }
                let path = String(target.split(separator: "#", maxSplits: 1).first ?? "")
                let resolved = url.deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL
                #expect(FileManager.default.fileExists(atPath: resolved.path), "\(url.lastPathComponent) links to \(target), which does not exist")
                checked += 1
            }
        }
        #expect(checked >= 10)
    }

    @Test("every reason code the README lists is produced and checked by some test")
    func everyReasonCodeIsTested() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let table = readme.components(separatedBy: "### Reason codes").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        let codes = Set(table.matches(of: /`([a-z_]+\.[a-z_]+)`/).map { String($0.1) })
        #expect(codes.count >= 25, "\(codes.sorted())")
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let text = try FileManager.default.contentsOfDirectory(atPath: tests.path).filter { $0.hasSuffix(".swift") && $0 != "DocsTests.swift" }
            .map { try String(contentsOf: tests.appendingPathComponent($0), encoding: .utf8) }.joined(separator: "\n")
        let untested = codes.filter { !text.contains("\"\($0)\"") }.sorted()
        #expect(untested.isEmpty, "reason codes no test checks: \(untested)")
    }

    @Test("every route of the API is mentioned in README.md or docs/")
    func everyRouteIsDocumented() throws {
        let t = try TestHub()
        defer { t.remove() }
        let text = try Self.documents().map(\.text).joined(separator: "\n")
        let routes = routeTable(hub: t.hub).map { method, path in
            (method, "/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/"))
        }
        #expect(routes.count >= 30)
        let missing = routes.filter { !text.contains($0.1) }.map { "\($0.0.uppercased()) \($0.1)" }
        #expect(missing.isEmpty, "mentioned nowhere in README.md or docs/: \(missing)")
    }

    @Test("every command of the CLI is mentioned in README.md or docs/")
    func everyCommandIsDocumented() async throws {
        let text = try Self.documents().map(\.text).joined(separator: "\n")
        func subcommands(_ path: [String]) async throws -> [String] {
            let (_, output) = try await runProgram(HubProcess.binary, path + ["--help"])
            let help = String(decoding: output, as: UTF8.self)
            guard let section = help.range(of: "SUBCOMMANDS:\n") else { return [] }
            return help[section.upperBound...].split(separator: "\n").compactMap { line in
                // A command's line starts two spaces in; its description's continuation lines further.
                guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
                return line.split(separator: " ").first.map(String.init)
            }.filter { $0 != "See" && $0 != "help" }
        }
        var queue: [[String]] = [[]], commands: [String] = []
        while let path = queue.popLast() {
            for sub in try await subcommands(path) {
                queue.append(path + [sub])
                commands.append((["imagehub"] + path + [sub]).joined(separator: " "))
            }
        }
        #expect(commands.count >= 20, "\(commands)")
        let missing = commands.filter { !text.contains($0) }
        #expect(missing.isEmpty, "mentioned nowhere in README.md or docs/: \(missing)")
    }
}
