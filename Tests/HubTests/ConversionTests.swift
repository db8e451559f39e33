import Foundation
import Testing

/// The set-up's conversion script, run for real (Debian's python3-torch) into a fresh directory.
@Suite struct ConversionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func convert(_ out: URL) async throws -> (status: Int32, output: String) {
        let (status, data) = try await runProgram(URL(fileURLWithPath: "/usr/bin/python3"),
                                                  [Self.root.appendingPathComponent("scripts/convert_backbone.py").path,
                                                   Self.root.appendingPathComponent("models/pip").path, out.path], mergeErrors: true)
        return (status, String(decoding: data, as: UTF8.self))
    }

    @Test("the conversion checks itself on real photos, writes every artifact, and is a no-op when up to date")
    func conversionSelfCheck() async throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-convert-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let first = try await convert(out)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("self-check chelsea.png: Egyptian cat") || first.output.contains("self-check chelsea.png: tabby")
                || first.output.contains("self-check chelsea.png: tiger cat"), "\(first.output)")
        #expect(first.output.contains("self-check coffee.png: espresso"), "\(first.output)")
        for artifact in ["features.pt", "embedder.pt", "backbone.onnx", "embedder.onnx", "imagenet_classes.txt", "manifest.json"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(artifact).path), "\(artifact)")
        }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        #expect(manifest["dimensions"] as? Int == 1904 && (manifest["weights_sha256"] as? String)?.count == 64)
        #expect(manifest["parts"] as? [Int] == [1280, 112, 192, 320] && manifest["version"] as? String == "3")
        let input = try #require(manifest["input"] as? [String: Any])
        #expect(input["size"] as? Int == 240 && input["resize_short_side"] as? Int == 274)
        // backbone.onnx takes any picture size (the shared onnxruntime script feeds it 224); onnxruntime, independently.
        let (status, data) = try await runProgram(Self.root.appendingPathComponent(".venv/bin/python"), ["-c", """
            import sys, numpy as np, onnxruntime as ort
            s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            for n in (224, 240):
                print(n, s.run(None, {"image": np.zeros((2, 3, n, n), np.float32)})[0].shape)
            """, out.appendingPathComponent("backbone.onnx").path], mergeErrors: true)
        let printed = String(decoding: data, as: UTF8.self)
        #expect(status == 0 && printed.contains("224 (2, 1904)") && printed.contains("240 (2, 1904)"), "\(printed)")
        let modified = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("features.pt").path)[.modificationDate] as? Date
        let second = try await convert(out)
        #expect(second.status == 0 && second.output.isEmpty, "up to date: nothing to do, nothing printed: \(second.output)")
        #expect(try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("features.pt").path)[.modificationDate] as? Date == modified)

        // The int8 copy: quantised from the fresh conversion in the set-up's virtual environment, it checks
        // itself, and a second run does nothing.
        func quantize() async throws -> (status: Int32, output: String) {
            let (status, data) = try await runProgram(Self.root.appendingPathComponent("models/venv/bin/python"), [
                Self.root.appendingPathComponent("scripts/quantize_backbone.py").path, out.path,
                "/usr/lib/python3/dist-packages/skimage/data"], mergeErrors: true)
            return (status, String(decoding: data, as: UTF8.self))
        }
        let quantised = try await quantize()
        #expect(quantised.status == 0 && quantised.output.contains("quantize_backbone: wrote"), "\(quantised.output)")
        let copy = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("embedder-int8.json"))) as? [String: Any])
        let checks = try #require(copy["self_check"] as? [String: [String: Any]])
        #expect((281...285).contains(checks["chelsea.png"]?["top1"] as? Int ?? 0) && checks["coffee.png"]?["top1"] as? Int == 967, "\(checks)")
        #expect((copy["min_cosine_to_f32"] as? Double ?? 0) >= 0.95)
        #expect((copy["sha256"] as? String)?.count == 64)
        // The conversion writes the set-up's embedder.onnx byte for byte, and the same source gives the same int8
        // file: nodes that each run the set-up share one backbone id.
        let setUp = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent("models/efficientnet-lite0/embedder-int8.json"))) as? [String: Any]
        #expect(setUp?["source_sha256"] as? String == copy["source_sha256"] as? String)
        #expect(setUp?["sha256"] as? String == copy["sha256"] as? String)
        let written = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("embedder-int8.onnx").path)[.modificationDate] as? Date
        let again = try await quantize()
        #expect(again.status == 0 && again.output.isEmpty, "up to date: \(again.output)")
        #expect(try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("embedder-int8.onnx").path)[.modificationDate] as? Date == written)
    }
}
