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

    /// A backbone folder under `root` whose manifest and class names are the set-up's and whose network is
    /// not one (the manifest reads, the engine cannot load), with the set-up's OpenVINO linked beside it.
    public static func broken(in root: URL) throws -> URL {
        let models = try folder(in: root)
        for file in ["manifest.json", "imagenet_classes.txt"] {
            try FileManager.default.copyItem(at: directory.appendingPathComponent(file), to: models.appendingPathComponent(file))
        }
        try Data("not a network".utf8).write(to: models.appendingPathComponent("embedder.onnx"))
        return models
    }

    /// A backbone folder under `root` with every file of the set-up's but its int8 copy (each a link to the
    /// set-up's), with the set-up's OpenVINO linked beside it.
    public static func withoutInt8(in root: URL) throws -> URL { try linked(in: root, except: "embedder-int8") }

    /// A backbone folder under `root` with every file of the set-up's whose name does not start with
    /// `except` (each a link to the set-up's), with the set-up's OpenVINO linked beside it.
    public static func linked(in root: URL, except: String) throws -> URL {
        let models = try folder(in: root)
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) where !file.hasPrefix(except) {
            try FileManager.default.createSymbolicLink(at: models.appendingPathComponent(file), withDestinationURL: directory.appendingPathComponent(file))
        }
        return models
    }

    /// `root/models/efficientnet-lite0`, made empty, with `root/models/openvino` a link to the set-up's.
    private static func folder(in root: URL) throws -> URL {
        let models = root.appendingPathComponent("models/efficientnet-lite0")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("models/openvino"),
                                                   withDestinationURL: directory.deletingLastPathComponent().appendingPathComponent("openvino"))
        return models
    }

    /// A photo shipped with Debian's python3-skimage (installed by `make setup`): `chelsea.png` is a cat,
    /// `coffee.png` an espresso cup.
    public static func skimagePhoto(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: "/usr/lib/python3/dist-packages/skimage/data/\(name)"))
    }
}
