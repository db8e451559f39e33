import Foundation
import HubTesting
import Testing

/// What CI must never skip silently. Tests that need the real photos (or the browser) skip with a message
/// where they are missing, so that a user's clone without `../shared` still passes; `.ci/run` sets
/// `IMAGEHUB_REQUIRE_SHARED_DATA=1` and `IMAGEHUB_REQUIRE_BROWSER=1`, and then a missing data directory or
/// browser fails the run here instead of skipping a dozen tests (the embed stage, training, GPS end to
/// end, tuspy, the Open Images import, the dashboard in Chromium).
@Suite struct RequirementsTests {
    static func required(_ name: String) -> Bool { ProcessInfo.processInfo.environment[name] == "1" }

    @Test("with IMAGEHUB_REQUIRE_SHARED_DATA=1 the real photos must be there")
    func sharedDataWhenRequired() {
        guard Self.required("IMAGEHUB_REQUIRE_SHARED_DATA") else { return }
        #expect(SharedData.available, "IMAGEHUB_REQUIRE_SHARED_DATA=1 but \(SharedData.skipReason)")
        if let directory = SharedData.directory {
            for folder in ["photos", "photos-phone", "lookalike", "openimages"] {
                #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(folder).path), "\(folder) is missing from \(directory.path)")
            }
        }
    }

    @Test("with IMAGEHUB_REQUIRE_BROWSER=1 headless Chromium, its driver and selenium must be there")
    func browserWhenRequired() {
        guard Self.required("IMAGEHUB_REQUIRE_BROWSER") else { return }
        #expect(BrowserTests.available, "IMAGEHUB_REQUIRE_BROWSER=1 but chromium, chromium-driver or ./.venv's selenium is missing")
    }
}
