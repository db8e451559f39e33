import CVips
import FeatureMatch
import Foundation
import Logging

/// Process-wide libvips set-up: initialise once, block untrusted loaders, route GLib warnings to our logger.
public enum Vips {
    private static let logger = Logger(label: "imagehub.vips")
    private static let started: Bool = {
        guard cvips_init("imagehub") == 0 else { return false }
        cvips_set_log_handler { domain, level, message, _ in
            let text = message.map { String(cString: $0) } ?? ""
            let dom = domain.map { String(cString: $0) } ?? "VIPS"
            Vips.logger.debug("\(dom): \(text)")
        }
        // OpenCV loads on a thread of its own while the process goes on (after libvips opened its modules:
        // a load holds the dynamic loader's lock).
        dih_features_preload()
        return true
    }()

    /// Initialises libvips; safe to call from anywhere, any number of times.
    public static func start(concurrency: Int? = nil) {
        precondition(started, "libvips failed to initialise")
        if let concurrency { cvips_concurrency_set(Int32(concurrency)) }
    }

    /// Whether libvips has the operation `name` (for example `heifload_buffer`): the loaders of modules it
    /// did not open are missing (`cvips_only_heif_module`).
    public static func hasOperation(_ name: String) -> Bool {
        start()
        return vips_type_find("VipsOperation", name) != 0
    }

    /// Sets the allocator up for image buffers (see `cvips_keep_freed_memory`). Call it first thing in
    /// `main`: the arena limit only holds for threads started after it. `start` calls it too.
    /// It also points libvips at its HEIF module alone (`cvips_only_heif_module`), before any other thread
    /// can read the environment it changes.
    public static func tuneAllocator() {
        cvips_keep_freed_memory()
        cvips_only_heif_module()
    }

    /// Takes the process-global libvips error buffer as a trimmed string.
    static func takeError() -> String {
        guard let raw = cvips_error_take() else { return "unknown libvips error" }
        defer { cvips_free(raw) }
        return String(cString: raw).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
