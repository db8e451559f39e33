import Embedding
import Foundation

/// The backbone the set-up converted, loaded once for the whole test run (loading freezes and optimizes it).
public enum TestModels {
    /// With the default engine (OpenVINO once `make setup` has run).
    public static let backbone: Result<Backbone, any Error> = Result {
        try Backbone(directory: directory, threads: 2)
    }

    /// The same weights run by libtorch, to compare the engines.
    public static let torchBackbone: Result<Backbone, any Error> = Result {
        try Backbone(directory: directory, threads: 2, engine: .libtorch)
    }

    public static var directory: URL {
        Backbone.defaultDirectory(configured: ProcessInfo.processInfo.environment["IMAGEHUB_MODELS"])
    }

    /// A photo shipped with Debian's python3-skimage (installed by `make setup`): `chelsea.png` is a cat,
    /// `coffee.png` an espresso cup.
    public static func skimagePhoto(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: "/usr/lib/python3/dist-packages/skimage/data/\(name)"))
    }
}
