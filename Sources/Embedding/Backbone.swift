import Foundation
import Imaging
import TorchBridge

/// What the set-up's conversion wrote next to the weights (`manifest.json`).
public struct BackboneManifest: Decodable, Sendable {
    public struct Input: Decodable, Sendable {
        public let size: Int
        public let resize_short_side: Int
        public let mean: [Double]
        public let std: [Double]
    }
    public let backbone: String
    public let version: String
    public let weights_sha256: String
    public let dimensions: Int
    public let input: Input
}

/// An automatic tag: an ImageNet class the backbone's head sees, with its probability.
public struct Tag: Codable, Sendable, Equatable {
    public let name: String
    public let probability: Double

    public init(name: String, probability: Double) {
        self.name = name
        self.probability = probability
    }
}

/// One image's embedding: a unit-length feature vector and the head's top classes.
public struct Embedding: Sendable {
    public var vector: [Float]
    public var tags: [Tag]
}

public struct BackboneError: Error, CustomStringConvertible {
    public let description: String
}

/// The pretrained feature extractor (EfficientNet-Lite0 as TorchScript), frozen and optimized for
/// inference by libtorch at load time. One forward runs at a time; libtorch parallelises inside it.
public final class Backbone: @unchecked Sendable {
    private let model: OpaquePointer
    /// Names the weights and the conversion, e.g. `efficientnet-lite0/1/57934424`; stored with every
    /// embedding so a backbone change can re-embed in the background.
    public let id: String
    public let dimensions: Int
    public let classNames: [String]
    public let input: ModelInputSpec
    public let directory: URL

    /// Loads `features.pt`, `head.pt`, `manifest.json` and `imagenet_classes.txt` from `directory`.
    public init(directory: URL, threads: Int = 0, channelsLast: Bool = true) throws {
        let manifestURL = directory.appendingPathComponent("manifest.json")
        guard let data = try? Data(contentsOf: manifestURL) else {
            throw BackboneError(description: "no backbone in \(directory.path) (manifest.json is missing): run `make setup`")
        }
        let manifest = try JSONDecoder().decode(BackboneManifest.self, from: data)
        classNames = try String(contentsOf: directory.appendingPathComponent("imagenet_classes.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        input = ModelInputSpec(size: manifest.input.size, resize: manifest.input.resize_short_side,
                               mean: manifest.input.mean.first ?? 0.5, std: manifest.input.std.first ?? 0.5)
        id = "\(manifest.backbone)/\(manifest.version)/\(manifest.weights_sha256.prefix(8))"
        self.directory = directory
        _ = dih_set_threads(Int32(threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount))
        var error: UnsafeMutablePointer<CChar>?
        let features = directory.appendingPathComponent("features.pt").path
        let head = directory.appendingPathComponent("head.pt").path
        guard let model = dih_backbone_load(features, head, channelsLast ? 1 : 0, &error) else {
            throw BackboneError(description: "loading \(features): \(Self.take(error))")
        }
        self.model = model
        dimensions = Int(dih_backbone_dimensions(model))
        guard dimensions == manifest.dimensions, Int(dih_backbone_classes(model)) == classNames.count else {
            dih_backbone_free(model)
            throw BackboneError(description: "\(directory.path): the model's outputs do not match its manifest")
        }
    }

    deinit { dih_backbone_free(model) }

    /// libtorch's intra-op thread count (process-wide).
    public static func setThreads(_ threads: Int) { _ = dih_set_threads(Int32(threads)) }

    /// Embeds `count` images whose model inputs (each `input.count` floats, see `Image.modelInput`) lie
    /// one after another in `pixels`. Vectors come back unit length; `topK` tags per image.
    public func embed(_ pixels: [Float], count: Int, topK: Int = 5) throws -> [Embedding] {
        precondition(pixels.count == count * input.count, "pixels must hold count model inputs")
        var features = [Float](repeating: 0, count: count * dimensions)
        var indices = [Int32](repeating: 0, count: count * topK)
        var probabilities = [Float](repeating: 0, count: count * topK)
        var error: UnsafeMutablePointer<CChar>?
        let status = dih_backbone_embed(model, pixels, Int32(count), Int32(input.size), &features,
                                        Int32(topK), &indices, &probabilities, &error)
        guard status == 0 else { throw BackboneError(description: "embedding: \(Self.take(error))") }
        return (0..<count).map { i in
            var vector = Array(features[i * dimensions..<(i + 1) * dimensions])
            Vectors.normalize(&vector)
            let tags = (0..<topK).map { j in
                Tag(name: classNames[Int(indices[i * topK + j])], probability: Double(probabilities[i * topK + j]))
            }
            return Embedding(vector: vector, tags: tags)
        }
    }

    private static func take(_ error: UnsafeMutablePointer<CChar>?) -> String {
        guard let error else { return "unknown error" }
        defer { dih_string_free(error) }
        return String(cString: error)
    }

    /// Where the set-up puts the backbone: `$IMAGEHUB_MODELS` or `embedding.models`, else
    /// `models/efficientnet-lite0` under the working directory, else next to the executable's checkout.
    public static func defaultDirectory(configured: String?) -> URL {
        if let configured, !configured.isEmpty { return URL(fileURLWithPath: configured) }
        let local = URL(fileURLWithPath: "models/efficientnet-lite0")
        if FileManager.default.fileExists(atPath: local.appendingPathComponent("manifest.json").path) { return local }
        // .build/<config>/imagehub → the checkout's models/
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("models/efficientnet-lite0")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("manifest.json").path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return local
    }
}
