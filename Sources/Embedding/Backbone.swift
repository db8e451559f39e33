import BlobStore
import Crypto
import Foundation
import HubCore
import Imaging
import OpenVINOBridge
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

    /// The manifest in `directory`, or an error that says to run the set-up.
    public static func read(directory: URL) throws -> BackboneManifest {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("manifest.json")) else {
            throw BackboneError(description: "no backbone in \(directory.path) (manifest.json is missing): run `make setup`")
        }
        return try JSONDecoder().decode(BackboneManifest.self, from: data)
    }

    /// How a photo becomes this backbone's input.
    public var inputSpec: ModelInputSpec {
        ModelInputSpec(size: input.size, resize: input.resize_short_side, mean: input.mean.first ?? 0.5, std: input.std.first ?? 0.5)
    }
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
    public init(description: String) { self.description = description }
}

/// Which library runs the backbone's forward pass.
public enum InferenceEngine: String, Sendable, CaseIterable, Codable {
    /// OpenVINO when its library and `embedder.onnx` are there, else libtorch.
    case auto
    /// OpenVINO's C API on `embedder.onnx` (the wheel `make setup` installs in models/openvino).
    case openvino
    /// libtorch on `embedder.pt` (TorchScript: features and ImageNet logits), frozen and optimized at load time.
    case libtorch
}

/// The pretrained feature extractor (EfficientNet-Lite0) and its ImageNet head, run by OpenVINO (the
/// default: about twice libtorch's speed on a CPU, the same features to 1e-6) or by libtorch. One forward
/// runs at a time; the engine parallelises inside it.
public final class Backbone: @unchecked Sendable {
    private enum Model {
        case openvino(OpaquePointer)
        case libtorch(OpaquePointer)
    }
    /// The backbone (`id`), how its engine runs (`engineDescription`) and why `auto` fell back to libtorch
    /// (nil when it did not).
    public struct EngineInfo: Sendable {
        public let id: String
        public let description: String
        public let fallbackReason: String?
        public init(id: String, description: String, fallbackReason: String?) {
            (self.id, self.description, self.fallbackReason) = (id, description, fallbackReason)
        }
    }
    /// The engine with the model loaded, how it runs, and why `auto` fell back to libtorch.
    private struct Engine {
        let model: Model
        let description: String
        let fallbackReason: String?
    }
    private let engine: Eventually<Engine>
    /// Names the weights and the conversion, e.g. `efficientnet-lite0/3/57934424`; stored with every
    /// embedding so a backbone change can re-embed in the background. Both engines give the same vectors
    /// (f32; bf16 within a cosine of 0.998), so the engine is not part of it; the int8 copy's vectors are of
    /// another kind, and its id names the copy too: `efficientnet-lite0/3/57934424/int8-6d949f7a`.
    public let id: String
    /// Whether OpenVINO runs the set-up's int8 copy (`embedder-int8.onnx`).
    public let isInt8: Bool
    public let dimensions: Int
    public let classNames: [String]
    public let input: ModelInputSpec
    public let directory: URL
    /// The engine that runs it and how, e.g. `openvino 2026.4.1 f32, 2 threads` or `libtorch, channels-last`
    /// (waits for a load in the background; says why when it failed).
    public var engineDescription: String {
        do { return try engine.value().description } catch { return "no engine: \(error)" }
    }
    /// Why `auto` fell back to libtorch (nil when it did not; waits for a load in the background).
    public var fallbackReason: String? { (try? engine.value())?.fallbackReason }

    /// Loads the backbone from `directory` (`manifest.json`, `imagenet_classes.txt`, and `embedder.onnx` or
    /// its int8 copy `embedder-int8.onnx` for OpenVINO, or `embedder.pt` for libtorch). `threads` is the engine's thread count (0: every
    /// core); `streams` OpenVINO's streams, the batches it runs at once with the threads shared out among
    /// them (0: one a thread; at most `threads`); `precision` OpenVINO's inference precision (`f32`; `bf16`; `int8`: the set-up's int8 copy,
    /// with bf16 where the CPU has it natively for the layers left in float; `auto`: `int8` where the copy
    /// and OpenVINO's library are there and the engine is not libtorch, else bf16 where the CPU has it
    /// natively, else f32);
    /// `openVINOLibrary` the path of libopenvino_c (default: `openVINOLibrary(near:)`); `compiledModels`
    /// OpenVINO's model cache (see `compiledModelCache`; nil: compile every time).
    /// With `inBackground` the engine loads on a thread of its own and the initialiser returns once the
    /// manifest is read: the first `embed` (or `waitUntilLoaded`) waits for it, and a failed load is thrown
    /// there instead. `whenLoaded` hears how the engine runs (or why it failed) once it is known, on the
    /// loading thread.
    public init(directory: URL, threads: Int = 0, streams: Int = 0, channelsLast: Bool = true, engine: InferenceEngine = .auto,
                precision: String = "f32", openVINOLibrary: URL? = nil, compiledModels: URL? = Backbone.compiledModelCache(),
                inBackground: Bool = false, whenLoaded: (@Sendable (Result<EngineInfo, any Error>) -> Void)? = nil) throws {
        let manifest = try BackboneManifest.read(directory: directory)
        classNames = try String(contentsOf: directory.appendingPathComponent("imagenet_classes.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        input = manifest.inputSpec
        let int8 = try Self.int8Copy(directory: directory, engine: engine, precision: precision, openVINOLibrary: openVINOLibrary)
        isInt8 = int8 != nil
        id = "\(manifest.backbone)/\(manifest.version)/\(manifest.weights_sha256.prefix(8))" + (int8.map { "/int8-\($0.sha256.prefix(8))" } ?? "")
        dimensions = manifest.dimensions
        self.directory = directory
        let threadCount = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        // The bridge keeps the streams within 1…threads.
        let streamCount = streams > 0 ? streams : threadCount
        let classCount = classNames.count, dimensions = self.dimensions, id = self.id, inputSize = input.size
        let load: @Sendable () throws -> Engine = {
            let loaded = Result {
                try Self.loadEngine(directory: directory, engine: engine, precision: precision, int8: int8 != nil, threadCount: threadCount,
                                    streamCount: streamCount, channelsLast: channelsLast, openVINOLibrary: openVINOLibrary, compiledModels: compiledModels,
                                    dimensions: dimensions, classCount: classCount, inputSize: inputSize)
            }
            whenLoaded?(loaded.map { EngineInfo(id: id, description: $0.description, fallbackReason: $0.fallbackReason) })
            return try loaded.get()
        }
        self.engine = inBackground ? Eventually(inBackground: load) : try Eventually(now: load)
    }

    /// What the set-up's quantiser wrote beside `embedder-int8.onnx` (`embedder-int8.json`).
    struct Int8Copy: Decodable {
        static let model = "embedder-int8.onnx", description = "embedder-int8.json"
        let sha256: String
    }

    /// The int8 copy this backbone runs, or nil where it runs in float: `int8` wants it (an error without
    /// it, or with libtorch: libtorch cannot make its vectors); `auto` takes it where it and OpenVINO's
    /// library are there and the engine is not libtorch.
    static func int8Copy(directory: URL, engine: InferenceEngine, precision: String, openVINOLibrary: URL?) throws -> Int8Copy? {
        guard precision == "int8" || precision == "auto" else { return nil }
        let wanted = precision == "int8"
        if engine == .libtorch {
            if wanted { throw BackboneError(description: "embedding precision int8 runs on OpenVINO, not on libtorch") }
            return nil
        }
        let model = directory.appendingPathComponent(Int8Copy.model), description = directory.appendingPathComponent(Int8Copy.description)
        guard let data = try? Data(contentsOf: description), FileManager.default.fileExists(atPath: model.path) else {
            if wanted { throw BackboneError(description: "\(model.path) or its \(Int8Copy.description) is missing: run `make setup`") }
            return nil
        }
        guard (openVINOLibrary ?? Backbone.openVINOLibrary(near: directory)) != nil else {
            if wanted { throw BackboneError(description: "embedding precision int8 needs OpenVINO's library: run `make setup`") }
            return nil
        }
        do { return try JSONDecoder().decode(Int8Copy.self, from: data) } catch {
            throw BackboneError(description: "\(description.path) cannot be read (\(error)): run `make setup`")
        }
    }

    /// The engine with the network loaded: with `int8`, the copy on OpenVINO (no fallback: libtorch cannot
    /// make its vectors), the layers left in float at the precision `auto` picks.
    private static func loadEngine(directory: URL, engine: InferenceEngine, precision: String, int8: Bool, threadCount: Int, streamCount: Int,
                                   channelsLast: Bool,
                                   openVINOLibrary: URL?, compiledModels: URL?, dimensions: Int, classCount: Int, inputSize: Int) throws -> Engine {
        var fallback: String?
        let engine = int8 ? .openvino : engine, precision = int8 ? "auto" : precision
        if engine != .libtorch {
            let onnx = directory.appendingPathComponent(int8 ? Int8Copy.model : "embedder.onnx")
            let library = openVINOLibrary ?? Backbone.openVINOLibrary(near: directory)
            do {
                guard let library else {
                    throw BackboneError(description: "no OpenVINO library (libopenvino_c.so.*) under \(directory.deletingLastPathComponent().appendingPathComponent("openvino").path): run `make setup`")
                }
                guard FileManager.default.fileExists(atPath: onnx.path) else {
                    throw BackboneError(description: "\(onnx.path) is missing: run `make setup`")
                }
                var error: UnsafeMutablePointer<CChar>?
                let cache = compiledModels.flatMap { Self.compiledModelFolder(in: $0, for: onnx) }
                guard let loaded = dih_ov_load(library.path, onnx.path, precision, Int32(threadCount), Int32(streamCount), processingNiceness,
                                               cache?.path, &error) else {
                    throw BackboneError(description: "OpenVINO: \(Self.takeOV(error))")
                }
                guard dih_ov_outputs(loaded) >= 2 else {
                    dih_ov_free(loaded)
                    throw BackboneError(description: "\(onnx.path) has no logits output: run `make setup`")
                }
                let hint = String(cString: dih_ov_precision(loaded))
                return Engine(model: .openvino(loaded), description: "openvino \(String(cString: dih_ov_version(loaded)).split(separator: "-").first ?? "") \(int8 ? "int8 (\(hint) elsewhere)" : hint), \(threadCount) threads"
                                  + (dih_ov_streams(loaded) > 1 ? " in \(dih_ov_streams(loaded)) streams" : ""),
                              fallbackReason: nil)
            } catch {
                if engine == .openvino { throw error }
                fallback = "\(error)"
            }
        }
        _ = dih_set_threads(Int32(threadCount))
        var error: UnsafeMutablePointer<CChar>?
        let embedder = directory.appendingPathComponent("embedder.pt").path
        guard let loaded = dih_backbone_load(embedder, Int32(inputSize), channelsLast ? 1 : 0, &error) else {
            throw BackboneError(description: "loading \(embedder): \(Self.take(error))")
        }
        guard Int(dih_backbone_dimensions(loaded)) == dimensions, Int(dih_backbone_classes(loaded)) == classCount else {
            dih_backbone_free(loaded)
            throw BackboneError(description: "\(directory.path): the model's outputs do not match its manifest")
        }
        return Engine(model: .libtorch(loaded), description: "libtorch, \(channelsLast ? "channels-last" : "nchw"), \(threadCount) threads",
                      fallbackReason: fallback)
    }

    deinit {
        guard let loaded = try? engine.value() else { return }
        switch loaded.model {
        case .openvino(let m): dih_ov_free(m)
        case .libtorch(let m): dih_backbone_free(m)
        }
    }

    /// Whether the engine's load is over (loaded or failed): asking about it would not wait.
    public var isLoaded: Bool { engine.isKnown }

    /// Waits for an engine loading in the background; throws why it could not be loaded.
    public func waitUntilLoaded() throws { _ = try engine.value() }

    /// How many `embed` calls run at once: OpenVINO's streams, 1 for libtorch (whose batch uses every
    /// thread). Waits for a load in the background (1 when it failed).
    public var lanes: Int {
        if case .openvino(let m) = (try? engine.value())?.model { return Int(dih_ov_streams(m)) }
        return 1
    }

    /// Whether OpenVINO runs this backbone.
    public var isOpenVINO: Bool {
        if case .openvino = (try? engine.value())?.model { return true }
        return false
    }

    /// libtorch's intra-op thread count (process-wide).
    public static func setThreads(_ threads: Int) { _ = dih_set_threads(Int32(threads)) }

    /// Embeds `count` images whose model inputs (each `input.count` floats, see `Image.modelInput`) lie
    /// one after another in `pixels`. Vectors come back unit length; `topK` tags per image.
    public func embed(_ pixels: [Float], count: Int, topK: Int = 5) throws -> [Embedding] {
        precondition(pixels.count == count * input.count, "pixels must hold count model inputs")
        return try embed(count: count, topK: topK, interleaved: { pixels }) { planes in
            pixels.withUnsafeBufferPointer { all in
                for i in 0..<count { Self.lay(all.baseAddress! + i * input.count, into: planes + i * input.count, size: input.size) }
            }
        }
    }

    /// Embeds one image per model input of `inputs` (each `input.count` floats), without putting them one
    /// after another first: OpenVINO's planes are laid out from each where it is.
    public func embed(_ inputs: [[Float]], topK: Int = 5) throws -> [Embedding] {
        precondition(inputs.allSatisfy { $0.count == input.count }, "each input must hold one model input")
        return try embed(count: inputs.count, topK: topK, interleaved: { Array(inputs.joined()) }) { planes in
            for (i, row) in inputs.enumerated() {
                row.withUnsafeBufferPointer { Self.lay($0.baseAddress!, into: planes + i * input.count, size: input.size) }
            }
        }
    }

    /// One model input's interleaved samples (H×W×3, as libvips writes them) as the three planes the ONNX
    /// graph reads (3×H×W).
    static func lay(_ source: UnsafePointer<Float>, into planes: UnsafeMutablePointer<Float>, size: Int) {
        let plane = size * size
        for p in 0..<plane {
            planes[p] = source[3 * p]
            planes[plane + p] = source[3 * p + 1]
            planes[2 * plane + p] = source[3 * p + 2]
        }
    }

    /// `count` images: libtorch is given the interleaved inputs one after another (`interleaved`), OpenVINO
    /// the planes `lay` writes into a buffer of `count` inputs.
    private func embed(count: Int, topK: Int, interleaved: () -> [Float], planes lay: (UnsafeMutablePointer<Float>) -> Void) throws -> [Embedding] {
        var features = [Float](repeating: 0, count: count * dimensions)
        var indices = [Int32](repeating: 0, count: count * topK)
        var probabilities = [Float](repeating: 0, count: count * topK)
        switch try engine.value().model {
        case .libtorch(let m):
            var error: UnsafeMutablePointer<CChar>?
            let status = dih_backbone_embed(m, interleaved(), Int32(count), Int32(input.size), &features,
                                            Int32(topK), &indices, &probabilities, &error)
            guard status == 0 else { throw BackboneError(description: "embedding: \(Self.take(error))") }
        case .openvino(let m):
            let planes = UnsafeMutablePointer<Float>.allocate(capacity: count * input.count)
            defer { planes.deallocate() }
            lay(planes)
            let classes = classNames.count
            var logits = [Float](repeating: 0, count: count * classes)
            var error: UnsafeMutablePointer<CChar>?
            let status = features.withUnsafeMutableBufferPointer { f in
                logits.withUnsafeMutableBufferPointer { l in
                    let outputs: [UnsafeMutablePointer<Float>?] = [f.baseAddress, l.baseAddress]
                    let widths: [Int32] = [Int32(dimensions), Int32(classes)]
                    return dih_ov_infer(m, planes, Int32(count), 3, Int32(input.size), 2, outputs, widths, &error)
                }
            }
            guard status == 0 else { throw BackboneError(description: "embedding: \(Self.takeOV(error))") }
            for i in 0..<count where topK > 0 {
                let top = Self.topK(softmax: logits[i * classes..<(i + 1) * classes], k: topK)
                for (j, (index, p)) in top.enumerated() {
                    indices[i * topK + j] = Int32(index)
                    probabilities[i * topK + j] = p
                }
            }
        }
        return (0..<count).map { i in
            var vector = Array(features[i * dimensions..<(i + 1) * dimensions])
            Vectors.normalize(&vector)
            let tags = (0..<topK).map { j in
                Tag(name: classNames[Int(indices[i * topK + j])], probability: Double(probabilities[i * topK + j]))
            }
            return Embedding(vector: vector, tags: tags)
        }
    }

    /// The `k` most probable classes of one row of logits, with their softmax probabilities (ties to the
    /// lower class).
    static func topK(softmax logits: ArraySlice<Float>, k: Int) -> [(Int, Float)] {
        let peak = logits.max() ?? 0
        var sum: Float = 0
        for x in logits { sum += expf(x - peak) }
        let base = logits.startIndex
        // One pass keeping the best k in order (k is 5 of 1,000: no sort of the whole row).
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in logits.indices where best.count < k || logits[i] > logits[best[best.count - 1]] {
            var at = best.count
            while at > 0 && logits[i] > logits[best[at - 1]] { at -= 1 }
            best.insert(i, at: at)
            if best.count > k { best.removeLast() }
        }
        return best.map { ($0 - base, expf(logits[$0] - peak) / sum) }
    }

    /// libopenvino_c from the wheel `make setup` installs next to the backbone's directory
    /// (`models/openvino/openvino/libs/libopenvino_c.so.*`), or nil.
    public static func openVINOLibrary(near directory: URL) -> URL? {
        let libs = directory.deletingLastPathComponent().appendingPathComponent("openvino/openvino/libs")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: libs.path) else { return nil }
        return names.filter { $0.hasPrefix("libopenvino_c.so") }.sorted().last.map { libs.appendingPathComponent($0) }
    }

    private static func takeOV(_ error: UnsafeMutablePointer<CChar>?) -> String {
        guard let error else { return "unknown error" }
        defer { dih_ov_string_free(error) }
        return String(cString: error)
    }

    private static func take(_ error: UnsafeMutablePointer<CChar>?) -> String {
        guard let error else { return "unknown error" }
        defer { dih_string_free(error) }
        return String(cString: error)
    }

    /// Where OpenVINO keeps compiled models between processes: `imagehub/openvino` in the user's cache
    /// directory (`XDG_CACHE_HOME`, else `~/.cache`), made on first use; nil where it cannot be made, and
    /// then every process compiles the model itself. A compiled model read back (without reading the ONNX
    /// file) takes 0.03 s against 0.16 s for a compile of Lite0 in bf16 (0.12 s read first, then found in
    /// the cache). Each model file's compiled versions sit in a folder of their own: `compiledModelFolder`.
    public static func compiledModelCache(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        let base: URL
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            base = URL(fileURLWithPath: xdg)
        } else if let home = environment["HOME"], home.hasPrefix("/") {
            base = URL(fileURLWithPath: home).appendingPathComponent(".cache")
        } else {
            return nil
        }
        let cache = base.appendingPathComponent("imagehub/openvino")
        guard (try? FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)) != nil,
              FileManager.default.isWritableFile(atPath: cache.path) else { return nil }
        return cache
    }

    /// The folder of `cache` for the compiled versions of the model file `model`: OpenVINO keys what it
    /// caches by the file's path and the settings, never by its contents, so each version of the file (its
    /// path, device, inode, size, modification and change times: `make setup` writing a new conversion changes them)
    /// gets a folder of its own, and the folders of the path's earlier versions are removed. Nil (compile
    /// every time) where the file cannot be examined or the folder cannot be made.
    public static func compiledModelFolder(in cache: URL, for model: URL) -> URL? {
        let path = model.standardizedFileURL.path
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        func digest(_ text: String) -> String { String(SHA256.hash(data: Data(text.utf8)).hexString.prefix(16)) }
        let prefix = digest(path)
        let (m, c) = (info.st_mtim, info.st_ctim)
        let name = "\(prefix)-" + digest("\(info.st_dev) \(info.st_ino) \(info.st_size) \(m.tv_sec).\(m.tv_nsec) \(c.tv_sec).\(c.tv_nsec)")
        let fm = FileManager.default
        // Also compiled models lying directly in the cache: nothing reads them back now that every file has a folder.
        for earlier in (try? fm.contentsOfDirectory(atPath: cache.path)) ?? []
        where (earlier.hasPrefix(prefix + "-") && earlier != name) || earlier.hasSuffix(".blob") {
            try? fm.removeItem(at: cache.appendingPathComponent(earlier))
        }
        let folder = cache.appendingPathComponent(name)
        guard (try? fm.createDirectory(at: folder, withIntermediateDirectories: true)) != nil else { return nil }
        return folder
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

/// A value computed now, or on a thread of its own and waited for by whoever asks first.
final class Eventually<Value>: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<Value, any Error>?

    init(now body: () throws -> Value) throws {
        result = .success(try body())
    }

    init(inBackground body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            let outcome = Result { try body() }
            condition.lock()
            result = outcome
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "backbone load"
        thread.start()
    }

    /// Whether the value (or why there is none) is known: `value()` would not wait.
    var isKnown: Bool {
        condition.lock()
        defer { condition.unlock() }
        return result != nil
    }

    func value() throws -> Value {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return try result!.get()
    }
}
