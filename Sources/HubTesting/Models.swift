import Embedding
import Foundation

/// The backbone the set-up converted, loaded once for the whole test run (loading freezes and optimizes it).
public enum TestModels {
    public static let backbone: Result<Backbone, any Error> = Result {
        try Backbone(directory: Backbone.defaultDirectory(configured: ProcessInfo.processInfo.environment["IMAGEHUB_MODELS"]),
                     threads: 2)
    }

    /// A photo shipped with Debian's python3-skimage (installed by `make setup`): `chelsea.png` is a cat,
    /// `coffee.png` an espresso cup.
    public static func skimagePhoto(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: "/usr/lib/python3/dist-packages/skimage/data/\(name)"))
    }
}
