import Embedding
import Foundation
import HubCore
import HubTesting
import Imaging
import Testing

@Suite("Embeddings")
struct EmbeddingTests {
    let backbone: Backbone

    init() throws { backbone = try TestModels.backbone.get() }

    func embed(_ bytes: Data) throws -> Embedding {
        try backbone.embed(try Image.modelInput(bytes, spec: backbone.input), count: 1)[0]
    }

    @Test("the converted backbone passes its self-check through our own pixels: a cat is a cat, coffee is espresso")
    func selfCheck() throws {
        let cat = try embed(try TestModels.skimagePhoto("chelsea.png"))
        #expect(["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"].contains(cat.tags[0].name), "\(cat.tags)")
        let coffee = try embed(try TestModels.skimagePhoto("coffee.png"))
        #expect(coffee.tags[0].name == "espresso", "\(coffee.tags)")
        #expect(coffee.tags[0].probability > 0.3, "\(coffee.tags)")  // 0.47 at 240 (0.93 at 224: the ImageNet head is less sure above the size it was trained at)
        #expect(cat.vector.count == 1904 && backbone.dimensions == 1904)
        #expect(abs(Vectors.dot(cat.vector, cat.vector) - 1) < 1e-4)
        // The descriptor: the head's pooled 1280 and the last three stages' 112, 192 and 320, each a unit vector
        // scaled by 1/2.
        var start = 0
        for part in [1280, 112, 192, 320] {
            let slice = Array(cat.vector[start..<start + part])
            #expect(abs(Vectors.dot(slice, slice) - 0.25) < 1e-4, "part of \(part) at \(start)")
            start += part
        }
        #expect(backbone.id.hasPrefix("efficientnet-lite0/"))
    }

    @Test("embeddings are deterministic, alone or in a batch")
    func deterministic() throws {
        let bytes = try TestModels.skimagePhoto("coffee.png")
        let a = try embed(bytes), b = try embed(bytes)
        #expect(a.vector == b.vector)
        let input = try Image.modelInput(bytes, spec: backbone.input)
        let other = try Image.modelInput(try TestModels.skimagePhoto("chelsea.png"), spec: backbone.input)
        let batch = try backbone.embed(other + input + other, count: 3)
        #expect(Vectors.dot(batch[1].vector, a.vector) > 0.99999)
        let stored = Vectors.decode(Vectors.encode(a.vector))
        #expect(Vectors.dot(stored, a.vector) > 0.9999)
    }

    @Test("a batch of any size keeps each image's vector and tags in its place (OpenVINO runs 15 as 8 + 4 + 2 + 1)")
    func batchesInChunks() throws {
        #expect(backbone.isOpenVINO)
        let photos = try ["coffee.png", "chelsea.png", "astronaut.png"].map { try Image.modelInput(try TestModels.skimagePhoto($0), spec: backbone.input) }
        let singles = try photos.map { try backbone.embed($0, count: 1)[0] }
        let order = [0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 0, 2, 0, 1, 2]
        let batch = try backbone.embed(order.flatMap { photos[$0] }, count: order.count)
        #expect(batch.count == order.count)
        for (position, photo) in order.enumerated() {
            #expect(Vectors.dot(batch[position].vector, singles[photo].vector) > 0.9999, "image \(position)")
            #expect(batch[position].tags.first?.name == singles[photo].tags.first?.name, "image \(position)")
            for other in 0..<photos.count where other != photo {
                #expect(Vectors.dot(batch[position].vector, singles[other].vector) < 0.9, "image \(position) is not photo \(other)")
            }
        }
    }

    @Test("OpenVINO's streams: one a thread by default, calls at once each on a stream of its own, a batch spread over the free ones; the vectors are one stream's")
    func streams() async throws {
        #expect(backbone.isOpenVINO)
        #expect(backbone.lanes == 2 && backbone.engineDescription.hasSuffix("2 threads in 2 streams"), "\(backbone.engineDescription)")
        let one = try Backbone(directory: TestModels.directory, threads: 2, streams: 1)
        #expect(one.lanes == 1 && !one.engineDescription.contains("streams"), "\(one.engineDescription)")
        #expect(try Backbone(directory: TestModels.directory, threads: 2, streams: 5).lanes == 2, "at most one a thread")
        let photos = try ["coffee.png", "chelsea.png", "astronaut.png"].map { try Image.modelInput(try TestModels.skimagePhoto($0), spec: backbone.input) }
        let reference = try photos.map { try one.embed($0, count: 1)[0].vector }
        // Three inputs on two free requests: 2 + 1 at once.
        let spread = try backbone.embed(photos.flatMap { $0 }, count: 3)
        for (i, e) in spread.enumerated() { #expect(Vectors.dot(e.vector, reference[i]) > 0.99999, "image \(i)") }
        // Six callers at once: each waits for a free request, none gets another's vectors.
        let model = backbone
        let results = await withTaskGroup(of: (Int, [Float]?).self) { group in
            for i in 0..<6 {
                group.addTask { (i, try? await offloadProcessing { try model.embed(photos[i % 3], count: 1)[0].vector }) }
            }
            return await group.reduce(into: [Int: [Float]]()) { $0[$1.0] = $1.1 }
        }
        for i in 0..<6 {
            guard let vector = results[i] ?? nil else { Issue.record("caller \(i) failed"); continue }
            #expect(Vectors.dot(vector, reference[i % 3]) > 0.99999, "caller \(i)")
        }
        // The embedder runs as many batches at once as the backbone has streams (eight requests arrive within
        // microseconds; a batch takes milliseconds).
        for (model, lanes) in [(backbone, 2), (one, 1)] {
            let embedder = Embedder(backbone: model, batchSize: 1, maxWait: .zero)
            let batched = await withTaskGroup(of: [Float]?.self) { group in
                for i in 0..<8 { group.addTask { try? await embedder.embed(photos[i % 3]).vector } }
                return await group.reduce(into: [[Float]?]()) { $0.append($1) }
            }
            #expect(batched.allSatisfy { $0 != nil })
            #expect(await embedder.batchSizes == Array(repeating: 1, count: 8))
            #expect(await embedder.mostAtOnce == lanes)
        }
    }

    @Test("OpenVINO runs the backbone by default and agrees with libtorch: the same features, the same tags")
    func enginesAgree() throws {
        #expect(backbone.isOpenVINO, "make setup installs OpenVINO; fell back: \(backbone.fallbackReason ?? "-")")
        #expect(backbone.engineDescription.hasPrefix("openvino 2026.4.1 f32"), "\(backbone.engineDescription)")
        let torch = try TestModels.torchBackbone.get()
        #expect(!torch.isOpenVINO && torch.id == backbone.id)
        let inputs = try ["chelsea.png", "coffee.png"].map { try Image.modelInput(try TestModels.skimagePhoto($0), spec: backbone.input) }
        let a = try backbone.embed(inputs.flatMap { $0 }, count: 2), b = try torch.embed(inputs.flatMap { $0 }, count: 2)
        for (x, y) in zip(a, b) {
            #expect(Vectors.dot(x.vector, y.vector) > 0.99999)
            #expect(x.tags.map(\.name) == y.tags.map(\.name))
            for (s, t) in zip(x.tags, y.tags) { #expect(abs(s.probability - t.probability) < 1e-3) }
        }
        // One image alone and inside a batch of another size: the same vector.
        let alone = try backbone.embed(inputs[1], count: 1)[0]
        #expect(Vectors.dot(alone.vector, a[1].vector) > 0.99999)
    }

    @Test("precision auto runs the set-up's int8 copy, under a backbone id of its own; its vectors and tags stay close to f32's")
    func automaticPrecisionIsInt8() throws {
        let auto = try Backbone(directory: backbone.directory, threads: 2, precision: "auto")
        #expect(auto.isOpenVINO && auto.isInt8 && auto.engineDescription.contains(" int8 ("), "\(auto.engineDescription)")
        let copy = try JSONSerialization.jsonObject(with: Data(contentsOf: backbone.directory.appendingPathComponent("embedder-int8.json"))) as? [String: Any]
        let hash = try #require(copy?["sha256"] as? String)
        #expect(auto.id == backbone.id + "/int8-" + hash.prefix(8), "int8 vectors are never compared with float ones")
        #expect(try Backbone(directory: backbone.directory, threads: 2, precision: "int8").id == auto.id)
        let names = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"]
        let inputs = try names.map { try Image.modelInput(try TestModels.skimagePhoto($0), spec: backbone.input) }
        let a = try auto.embed(inputs.flatMap { $0 }, count: inputs.count), b = try backbone.embed(inputs.flatMap { $0 }, count: inputs.count)
        for (i, (x, y)) in zip(a, b).enumerated() {
            // Measured: 0.979 at worst on these, 0.976–1 (mean 0.996) on 64 look-alike flowers; bf16 0.998.
            #expect(Vectors.dot(x.vector, y.vector) > 0.96, "\(names[i])")
            #expect(abs(Vectors.dot(x.vector, x.vector) - 1) < 1e-4)
            // The same class first, or a near one (rocket.jpg: missile against projectile) among its first three.
            #expect(x.tags.prefix(3).contains { $0.name == y.tags.first?.name }, "\(names[i]): \(x.tags) against \(y.tags)")
            if i < 2 { #expect(x.tags.first?.name == y.tags.first?.name, "\(names[i]): \(x.tags) against \(y.tags)") }
            for j in a.indices where j != i { #expect(Vectors.dot(x.vector, b[j].vector) < 0.9, "\(names[i]) is not \(names[j])") }
        }
        // libtorch runs the float network only: auto is f32 there, and int8 cannot be had.
        #expect(try Backbone(directory: backbone.directory, threads: 2, engine: .libtorch, precision: "auto").id == backbone.id)
        #expect(throws: BackboneError.self) { try Backbone(directory: backbone.directory, threads: 2, engine: .libtorch, precision: "int8") }
        #expect(try Backbone(directory: backbone.directory, threads: 2, precision: "bf16").id == backbone.id)
    }

    @Test("without the int8 copy, precision auto is bf16 exactly where the CPU computes it natively, and its vectors stay comparable with f32's")
    func automaticPrecisionWithoutInt8() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-float-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let models = try TestModels.withoutInt8(in: root)
        #expect(throws: BackboneError.self) { try Backbone(directory: models, threads: 2, precision: "int8") }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let native = cpuinfo.contains("avx512_bf16") || cpuinfo.contains("amx_bf16")
        let auto = try Backbone(directory: models, threads: 2, precision: "auto")
        #expect(auto.isOpenVINO && !auto.isInt8 && auto.engineDescription.contains(native ? " bf16," : " f32,"), "\(auto.engineDescription)")
        #expect(auto.id == backbone.id, "one backbone whatever the float precision: vectors are compared across nodes")
        let inputs = try ["chelsea.png", "coffee.png"].map { try Image.modelInput(try TestModels.skimagePhoto($0), spec: backbone.input) }
        let a = try auto.embed(inputs.flatMap { $0 }, count: 2), b = try backbone.embed(inputs.flatMap { $0 }, count: 2)
        for (x, y) in zip(a, b) {
            #expect(Vectors.dot(x.vector, y.vector) > 0.99, "far above every threshold the checks use (0.9 at most)")
            #expect(x.tags.first?.name == y.tags.first?.name)
        }
    }

    @Test("OpenVINO's threads run at the processing threads' lower priority, not at request handling's")
    func engineThreadsAreNice() throws {
        func threads() -> [Int: Int] {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            var out: [Int: Int] = [:]
            for tid in tasks.compactMap({ Int($0) }) {
                // Field 19 of stat is the nice value; the command name (field 2) may hold spaces, so count after ')'.
                guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 16, let nice = Int(fields[16]) { out[tid] = nice }
            }
            return out
        }
        let before = threads()
        // Loaded from a thread of ordinary priority (as `serve` does), used from a processing thread.
        let model = try Backbone(directory: TestModels.directory, threads: 2, engine: .openvino)
        let input = try Image.modelInput(try TestModels.skimagePhoto("coffee.png"), spec: model.input)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: [Embedding] = []
        let worker = Thread {
            lowerThreadPriority()
            result = (try? model.embed(input + input + input + input, count: 4)) ?? []
            done.signal()
        }
        worker.start()
        done.wait()
        #expect(result.count == 4)
        let started = threads().filter { before[$0.key] == nil }
        #expect(!started.isEmpty, "OpenVINO runs on threads of its own")
        #expect(started.values.allSatisfy { $0 >= Int(processingNiceness) }, "\(started)")
    }

    @Test("local features: a cropped, resized, recompressed copy fits one similarity transform; another picture does not")
    func localFeatures() throws {
        let original = try Image.load(try TestModels.skimagePhoto("chelsea.png"))
        let cx = original.width * 6 / 100, cy = original.height * 6 / 100
        let copy = try Image.load(try original.cropped(left: cx, top: cy, width: original.width - 2 * cx, height: original.height - 2 * cy)
            .fitted(longSide: original.longSide * 7 / 10).encoded(as: .jpeg, quality: 65))
        let other = try Image.load(try TestModels.skimagePhoto("coffee.png"))
        let a = try LocalFeatures(original), b = try LocalFeatures(copy), c = try LocalFeatures(other)
        #expect(a.count > 100 && b.count > 100 && c.count > 100, "\(a.count) \(b.count) \(c.count)")
        let same = try a.match(b)
        #expect(same.isCopy(), "\(same)")
        // Both are scaled to the same long side: the crop alone sets the scale (1 / 0.88 ≈ 1.14).
        #expect(abs(same.scale - 1.0 / 0.88) < 0.05, "\(same)")
        let different = try a.match(c)
        #expect(!different.isCopy(), "\(different)")
        // A small copy (200 px) is scaled up to the working side and still matches.
        let tiny = try LocalFeatures(try Image.load(try original.fitted(longSide: 200).encoded(as: .jpeg, quality: 70)))
        #expect(try a.match(tiny).isCopy())
        // Pixels held in memory (a decoded upload, the photos above) go to OpenCV as they are; a libvips
        // pipeline through libvips first. Either way the same photo: one transform of scale 1, the copy found.
        let pipeline = try original.cropped(left: 0, top: 0, width: original.width, height: original.height)
        #expect(original.isInMemory && !pipeline.isInMemory)
        let v = try LocalFeatures(pipeline)
        #expect(v.count > 100, "\(v.count)")
        let itself = try a.match(v)
        #expect(itself.isCopy() && abs(itself.scale - 1) < 0.02, "\(itself)")
        #expect(try v.match(b).isCopy() && !(try v.match(c).isCopy()))
        // The quick first look (the strongest keypoints of each side) keeps dozens of a copy's inliers and a
        // handful of another picture's: enough to set the other aside without the full match.
        let quickSame = try a.match(b, strongest: LocalFeatures.quickLook)
        let quickDifferent = try a.match(c, strongest: LocalFeatures.quickLook)
        #expect(quickSame.matches <= LocalFeatures.quickLook && quickSame.inliers >= 20, "\(quickSame)")
        #expect(quickDifferent.inliers < 5, "\(quickDifferent)")
        // The strongest keypoints are the ones that survive a copy: the first look keeps a larger share of the
        // full match's inliers than the keypoints it keeps.
        #expect(Double(quickSame.inliers) / Double(same.inliers) > Double(LocalFeatures.quickLook) / Double(a.count), "\(quickSame) \(same)")
        // A glance (the same detection on a smaller picture, fewer keypoints) tells them apart as well, the
        // small copy too; the pipeline looks there first.
        func glance(_ image: Image) throws -> LocalFeatures { try LocalFeatures(image, scale: .glance) }
        let ga = try glance(original), gb = try glance(copy), gc = try glance(other), gt = try glance(try Image.load(try original.fitted(longSide: 200).encoded(as: .jpeg, quality: 70)))
        #expect(ga.count <= LocalFeatures.Scale.glance.maxFeatures && ga.count > 2 * LocalFeatures.quickLook / 3, "\(ga.count)")
        for small in [gb, gt] {
            let look = try ga.match(small, strongest: LocalFeatures.quickLook)
            #expect(look.inliers >= 20, "\(look)")
        }
        let glanceDifferent = try ga.match(gc, strongest: LocalFeatures.quickLook)
        #expect(glanceDifferent.inliers < 5, "\(glanceDifferent)")
    }

    @Test("what a copy's match must show: enough inliers, most of the matches, a fair share of the keypoints in common, a sane scale")
    func copyRule() {
        #expect(GeometricMatch(matches: 100, inliers: 90, scale: 1.14, overlapping: 400).isCopy())
        #expect(!GeometricMatch(matches: 30, inliers: 20, scale: 1, overlapping: 60).isCopy(), "too few inliers")
        #expect(!GeometricMatch(matches: 200, inliers: 100, scale: 1, overlapping: 400).isCopy(), "half the matches: two shots of a scene")
        #expect(!GeometricMatch(matches: 153, inliers: 112, scale: 0.99, overlapping: 805).isCopy(), "14% of the shared keypoints: still parts only")
        #expect(!GeometricMatch(matches: 115, inliers: 82, scale: 0, overlapping: 300).isCopy(), "a degenerate fit")
    }

    @Test("the model input of pixels in memory (scaled by OpenCV) and of a libvips pipeline agree: the same embedding")
    func modelInputPaths() throws {
        let photo = try Image.load(try TestModels.skimagePhoto("chelsea.png"))
        // Scaled down (451 × 300 to the input's short side) and, from a photo smaller than that, up; a long, thin
        // strip is scaled up sevenfold, of which only the crop is computed.
        let strip = try photo.cropped(left: 0, top: 130, width: 451, height: 40).materialized()
        for image in [photo, try photo.reduced(longSide: 200), strip] {
            let pipeline = try image.cropped(left: 0, top: 0, width: image.width, height: image.height)
            #expect(image.isInMemory && !pipeline.isInMemory)
            let fast = try image.modelInput(backbone.input), slow = try pipeline.modelInput(backbone.input)
            #expect(fast.count == backbone.input.count && slow.count == fast.count)
            #expect(fast != slow, "two paths: OpenCV's resize, libvips's resize")
            // Samples are (x/255 − 0.498)/0.502: 0.03 is about four levels of 255. Scaled up, both paths are
            // bilinear on libvips's sampling grid: the same samples within rounding.
            let up = image.width < photo.width || image.height < photo.height
            let meanDifference = zip(fast, slow).map { abs($0 - $1) }.reduce(0, +) / Float(fast.count)
            #expect(meanDifference < (up ? 0.003 : 0.03), "\(meanDifference)")
            let vectors = try backbone.embed(fast + slow, count: 2).map(\.vector)
            let cosine = Vectors.dot(vectors[0], vectors[1])
            print("model input of \(image.width) × \(image.height) through OpenCV and through libvips: mean sample difference \(meanDifference), cosine \(cosine)")
            #expect(cosine > (up ? 0.9995 : 0.995))
        }
    }

    @Test("a model OpenVINO reads back from its cache embeds exactly as a fresh compile does")
    func compiledModelCache() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-ov-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let input = try Synthetic.photo(width: 320, height: 240, seed: 451).modelInput(backbone.input)
        let uncached = try Backbone(directory: TestModels.directory, threads: 2, engine: .openvino, compiledModels: nil)
        let first = try Backbone(directory: TestModels.directory, threads: 2, engine: .openvino, compiledModels: cache)
        let blobs = try FileManager.default.subpathsOfDirectory(atPath: cache.path).filter { $0.hasSuffix(".blob") }
        #expect(blobs.count == 1, "the compiled model is kept: \(blobs)")
        let folders = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        #expect(folders.count == 1, "in a folder of the model file's version: \(folders)")
        let second = try Backbone(directory: TestModels.directory, threads: 2, engine: .openvino, compiledModels: cache)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path) == folders, "the same file reads back its entry")
        let vectors = try [uncached, first, second].map { try $0.embed(input, count: 1)[0].vector }
        #expect(vectors[0] == vectors[1] && vectors[1] == vectors[2])

        #expect(Backbone.compiledModelCache(environment: ["XDG_CACHE_HOME": cache.path])?.path == cache.appendingPathComponent("imagehub/openvino").path)
        #expect(Backbone.compiledModelCache(environment: ["HOME": cache.path])?.path == cache.appendingPathComponent(".cache/imagehub/openvino").path)
        #expect(Backbone.compiledModelCache(environment: [:]) == nil)
    }

    @Test("OpenVINO's cache entries are kept per version of the model file: a file written again gets a folder of its own, the earlier one goes")
    func compiledModelFolders() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-ov-folders-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let cache = root.appendingPathComponent("cache"), models = root.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        let model = models.appendingPathComponent("embedder.onnx"), other = models.appendingPathComponent("other.onnx")
        try Data("version 1".utf8).write(to: model)
        try Data("another model".utf8).write(to: other)
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        try Data("compiled".utf8).write(to: cache.appendingPathComponent("1234.blob"))  // loose in the cache: read by nothing
        let first = try #require(Backbone.compiledModelFolder(in: cache, for: model)).lastPathComponent
        #expect(Backbone.compiledModelFolder(in: cache, for: model)?.lastPathComponent == first, "the same version, the same folder")
        let elsewhere = try #require(Backbone.compiledModelFolder(in: cache, for: other)).lastPathComponent
        #expect(elsewhere != first)
        // `make setup` writing a new conversion: a new file in the same place (new inode and modification time).
        try FileManager.default.removeItem(at: model)
        try Data("version 2, longer".utf8).write(to: model)  // a size of its own: file times may be coarse
        let second = try #require(Backbone.compiledModelFolder(in: cache, for: model)).lastPathComponent
        #expect(second != first)
        let kept = Set(try FileManager.default.contentsOfDirectory(atPath: cache.path))
        #expect(kept == [second, elsewhere], "the path's earlier version is removed, another file's kept")
        #expect(Backbone.compiledModelFolder(in: cache, for: models.appendingPathComponent("missing.onnx")) == nil)
    }

    @Test("a backbone loading in the background embeds as a loaded one once ready; a load that fails is thrown where it is waited for")
    func loadsInBackground() throws {
        let input = try Synthetic.photo(width: 320, height: 240, seed: 452).modelInput(backbone.input)
        let now = try Backbone(directory: TestModels.directory, threads: 2, engine: .openvino, compiledModels: nil)
        let later = try Backbone(directory: TestModels.directory, threads: 2, engine: .openvino, compiledModels: nil, inBackground: true)
        #expect(later.id == now.id && later.input == now.input, "the manifest is read at once")
        #expect(try later.embed(input, count: 1)[0].vector == now.embed(input, count: 1)[0].vector, "the first embed waits for the load")
        #expect(later.engineDescription == now.engineDescription && later.isOpenVINO)

        // A models folder whose network is not a model: the manifest reads, the engine does not load.
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-broken-model-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: broken) }
        let models = try TestModels.broken(in: broken)
        #expect(throws: BackboneError.self) { try Backbone(directory: models, threads: 2, engine: .openvino, compiledModels: nil) }
        let failing = try Backbone(directory: models, threads: 2, engine: .openvino, compiledModels: nil, inBackground: true)
        #expect(throws: BackboneError.self) { try failing.waitUntilLoaded() }
        #expect(throws: BackboneError.self) { try failing.embed(input, count: 1) }
        #expect(failing.engineDescription.hasPrefix("no engine: OpenVINO"), "\(failing.engineDescription)")
    }

    @Test("a resized, re-encoded, slightly cropped copy stays close; other photos of the class do not", needsSharedData)
    func copiesAreClose() throws {
        let photos = try SharedData.photos(in: "photos/dogs")
        let original = try SharedData.data(photos[0])
        let image = try Image.load(original)
        let copy = try image.cropped(left: image.width / 20, top: image.height / 20,
                                     width: image.width * 9 / 10, height: image.height * 9 / 10)
            .fitted(longSide: image.width * 2 / 3).encoded(as: .jpeg, quality: 70)
        let a = try embed(original), b = try embed(copy)
        let copyCosine = Vectors.dot(a.vector, b.vector)
        #expect(copyCosine > 0.9)
        var others: [Float] = []
        for path in photos.dropFirst() { others.append(Vectors.dot(a.vector, try embed(try SharedData.data(path)).vector)) }
        print("copy cosine \(copyCosine); same-class cosines max \(others.max()!) median \(others.sorted()[others.count / 2])")
        #expect(others.max()! < copyCosine)
    }
}
