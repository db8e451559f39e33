import Foundation
import HubCore
import HubTesting
import Imaging
import Testing

/// The dashboard in a real browser: `scripts/dashboard_browser_test.py` drives headless Chromium through
/// selenium (both installed by `make test`'s set-up) against a hub served on a real socket.
@Suite("Dashboard in a browser", .serialized)
struct BrowserTests {
    static let python = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".venv/bin/python")
    static let script = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("scripts/dashboard_browser_test.py")

    static var available: Bool {
        ["/usr/bin/chromium", "/usr/bin/chromedriver", python.path].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test("sign in, browse a label's thumbnails, reject a near duplicate with the keyboard, CSRF, sign out, a supplier without Review who uploads three photos",
          .enabled(if: BrowserTests.available, "needs chromium, chromium-driver and selenium in ./.venv (make test installs them)"))
    func dashboard() async throws {
        let t = try TestHub(labels: ["Banana", "<script>alert(1)</script>"])
        defer { t.remove() }
        let (original, copy) = try DashboardTests.photoAndNearCopy(seed: 351)
        try await t.serving { base in
            try await t.withClient { client in
                for seed in [352, 353] {
                    _ = try await client.upload(try Fixtures.image(seed: seed), label: "Banana", as: t.bearer(.supplier),
                                                fields: ["device": "Pixel 8", "lat": "52.5\(seed)", "lon": "13.4\(seed)"])
                }
                _ = try await client.upload(try Fixtures.image(seed: 354), label: "<script>alert(1)</script>", as: t.bearer(.supplier))
                _ = try await client.upload(original, label: "Banana", as: t.bearer(.supplier))
                await t.drain()
                let copyId = try await client.upload(copy, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
                await t.drain()
                #expect(try t.hub.catalog.image(id: copyId)?.status == .quarantined)
                let shots = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
                    .appendingPathComponent(".build/test-artifacts/dashboard")
                // Three photos a person picks in the Upload page's file dialog.
                let folder = t.directory.appendingPathComponent("to-upload")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                var photos: [String] = []
                for seed in 356...358 {
                    let path = folder.appendingPathComponent("photo-\(seed).jpg")
                    try Fixtures.image(seed: seed).write(to: path)
                    photos.append(path.path)
                }
                let (status, output) = try await runProgram(BrowserTests.python, [BrowserTests.script.path, base, t.keys[.admin]!,
                                                                                  t.keys[.supplier]!, shots.path] + photos, mergeErrors: true)
                let text = String(decoding: output, as: UTF8.self)
                print(text)
                #expect(status == 0, "\(text.suffix(3000))")
                #expect(try t.hub.catalog.image(id: copyId)?.status == .rejected, "the r key rejected the near duplicate")
                #expect(try t.hub.catalog.label(named: "Cherry") != nil && (try t.hub.catalog.label(named: "Plum")) == nil)
                #expect(FileManager.default.fileExists(atPath: shots.appendingPathComponent("review.png").path))
                let banana = try #require(try t.hub.catalog.labelId(named: "Banana"))
                let accepted = try t.hub.catalog.images(labelIds: [banana], status: .accepted, after: nil, limit: 100)
                #expect(accepted.count == 6, "three photos before, the original, and three from the Upload page")
            }
        }
    }

    @Test("""
        an admin relabels from Review a photo uploaded under the wrong label; a trainer trains two labels from the Training page, \
        follows the job, reads the report and downloads the ONNX model
        """,
          .enabled(if: BrowserTests.available, "needs chromium, chromium-driver and selenium in ./.venv (make test installs them)"),
          needsSharedData)
    func training() async throws {
        let t = try TestHub(labels: ["airplanes", "flowers"], embeddings: true) { $0.verifyMinImages = 10 }
        defer { t.remove() }
        try await t.serving { base in
            try await t.withClient { client in
                for label in ["airplanes", "flowers"] {
                    for path in try SharedData.photos(in: "photos/\(label)").prefix(12) {
                        _ = try await client.upload(try SharedData.data(path), label: label, as: t.bearer(.supplier))
                    }
                }
                await t.drain()
                let shots = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/test-artifacts/dashboard")
                // A flower sent as an airplane waits for review, and is relabelled there (the background pass
                // first fits the label model on the labels' images).
                try t.hub.embedStage!.maintain()
                let flower = try #require(try SharedData.photos(in: "photos/flowers").dropFirst(12).first)
                let wrong = try await client.upload(try SharedData.data(flower), label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String
                await t.drain()
                #expect(try t.hub.catalog.image(id: wrong)?.reasonCodes == ["label.mismatch"])
                let (relabelled, said) = try await runProgram(BrowserTests.python, [BrowserTests.script.path, "--relabel", base, t.keys[.admin]!,
                                                                                    shots.path], mergeErrors: true)
                print(String(decoding: said, as: UTF8.self))
                #expect(relabelled == 0, "\(String(decoding: said, as: UTF8.self).suffix(3000))")
                let moved = try #require(try t.hub.catalog.image(id: wrong))
                #expect(try moved.status == .accepted && moved.labelId == t.hub.catalog.labelId(named: "flowers")
                        && moved.reasonCodes == ["label.mismatch", "review.relabelled"])
                let (status, output) = try await runProgram(BrowserTests.python, [BrowserTests.script.path, "--train", base, t.keys[.trainer]!,
                                                                                  shots.path, "airplanes", "flowers"], mergeErrors: true)
                let text = String(decoding: output, as: UTF8.self)
                print(text)
                #expect(status == 0, "\(text.suffix(3000))")
                #expect(try t.hub.catalog.models().count == 1)
            }
        }
    }
}
