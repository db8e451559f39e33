import Embedding
import Foundation
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
        #expect(coffee.tags[0].probability > 0.5)
        #expect(cat.vector.count == 1280 && backbone.dimensions == 1280)
        #expect(abs(Vectors.dot(cat.vector, cat.vector) - 1) < 1e-4)
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
