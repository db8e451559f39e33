import Foundation
import SwiftProtobuf

public struct ONNXExportError: Error, CustomStringConvertible {
    public let description: String
}

/// Builds one ONNX file a phone can run: the backbone graph the set-up exported (`image` N×3×H×W →
/// `features` N×D) with L2 normalisation (ReduceL2 + Div), the trained linear head (Gemm) and Softmax
/// appended, so the output `probabilities` is N×C; the input is fixed at the backbone's input size, S×S. The label order, normalisation and input size go into `metadata_props`,
/// and with them the model card (`model_card`, JSON: per-class figures, dataset version, preprocessing, split rule).
public enum ModelExport {
    public static func classifier(backbone: Data, labels: [String], weights: [Float], bias: [Float],
                                  mean: [Double], std: [Double], inputSize: Int, resize: Int, modelId: String,
                                  card: String? = nil, convolutions: [String: (weight: [Float], bias: [Float])] = [:]) throws -> Data {
        var model = try Onnx_ModelProto(serializedBytes: backbone)
        // A fine-tuned model's own convolutions replace the backbone's (by module path, batch norms folded).
        for (module, values) in convolutions {
            let (weight, bias) = try convolutionInputs(model.graph, module: module)
            for (name, replacement) in [(weight, values.weight), (bias, values.bias)] {
                guard let i = model.graph.initializer.firstIndex(where: { $0.name == name }) else {
                    throw ONNXExportError(description: "the backbone graph has no initializer \(name) for \(module)")
                }
                let shape = model.graph.initializer[i].dims.map(Int.init)
                guard shape.reduce(1, *) == replacement.count else {
                    throw ONNXExportError(description: "\(module): \(replacement.count) values do not fit \(name)'s shape \(shape)")
                }
                model.graph.initializer[i] = tensor(name, shape: shape, values: replacement)
            }
        }
        guard model.graph.output.count == 1, let features = model.graph.output.first?.name else {
            throw ONNXExportError(description: "the backbone graph must have exactly one output")
        }
        let classes = labels.count
        guard classes >= 2, bias.count == classes, weights.count % classes == 0 else {
            throw ONNXExportError(description: "head shape does not match \(classes) labels")
        }
        let dims = weights.count / classes
        // The set-up's graph takes any picture size (so that other tools can feed it theirs); a phone's model
        // takes the size it was trained at, fixed.
        guard var image = model.graph.input.first, image.type.tensorType.shape.dim.count == 4,
              image.type.tensorType.shape.dim[1].dimValue == 3 else {
            throw ONNXExportError(description: "the backbone graph must take one N×3×H×W input")
        }
        for axis in 2...3 {
            image.type.tensorType.shape.dim[axis] = Onnx_TensorShapeProto.Dimension()
            image.type.tensorType.shape.dim[axis].dimValue = Int64(inputSize)
        }
        model.graph.input[0] = image

        model.graph.initializer.append(tensor("head.weight", shape: [classes, dims], values: weights))
        model.graph.initializer.append(tensor("head.bias", shape: [classes], values: bias))
        // The hub trains and predicts on unit-length features: normalise inside the graph too.
        var norm = Onnx_NodeProto()
        norm.opType = "ReduceL2"
        norm.name = "feature_norm"
        norm.input = [features]
        norm.output = ["feature_norm"]
        norm.attribute = [intsAttribute("axes", [1]), intAttribute("keepdims", 1)]
        var divide = Onnx_NodeProto()
        divide.opType = "Div"
        divide.name = "normalise"
        divide.input = [features, "feature_norm"]
        divide.output = ["unit_features"]
        var gemm = Onnx_NodeProto()
        gemm.opType = "Gemm"
        gemm.name = "head"
        gemm.input = ["unit_features", "head.weight", "head.bias"]
        gemm.output = ["logits"]
        gemm.attribute = [intAttribute("transB", 1)]
        var softmax = Onnx_NodeProto()
        softmax.opType = "Softmax"
        softmax.name = "softmax"
        softmax.input = ["logits"]
        softmax.output = ["probabilities"]
        softmax.attribute = [intAttribute("axis", 1)]
        model.graph.node += [norm, divide, gemm, softmax]

        var output = Onnx_ValueInfoProto()
        output.name = "probabilities"
        var type = Onnx_TypeProto.Tensor()
        type.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = "batch"
        var width = Onnx_TensorShapeProto.Dimension()
        width.dimValue = Int64(classes)
        type.shape.dim = [batch, width]
        output.type.tensorType = type
        model.graph.output = [output]
        model.graph.name = "deep-images-hub-classifier"

        func json(_ value: some Encodable) throws -> String { String(decoding: try JSONEncoder().encode(value), as: UTF8.self) }
        model.metadataProps = try [
            entry("labels", json(labels)),
            entry("mean", json(mean)),
            entry("std", json(std)),
            entry("input_size", String(inputSize)),
            entry("input_layout", "RGB, N×3×\(inputSize)×\(inputSize), short side resized to \(resize), centre crop, (x/255 − mean)/std"),
            entry("model_id", modelId),
        ] + (card.map { [entry("model_card", $0)] } ?? [])
        model.producerName = "deep-images-hub"
        model.docString = "EfficientNet-Lite0 features, L2-normalised, + linear head + softmax; outputs `probabilities` in the order of metadata `labels`."
        return try model.serializedData()
    }

    /// The names of the weight and bias initializers of the convolution of a module of the set-up's
    /// descriptor (`_blocks.15._expand_conv`): the ONNX export names its node `/features/_blocks.15/_expand_conv/Conv`.
    static func convolutionInputs(_ graph: Onnx_GraphProto, module: String) throws -> (weight: String, bias: String) {
        let name = "/features/" + module.replacingOccurrences(of: "._", with: "/_") + "/Conv"
        guard let node = graph.node.first(where: { $0.name == name && $0.opType == "Conv" }), node.input.count == 3 else {
            throw ONNXExportError(description: "the backbone graph has no convolution with a bias named \(name)")
        }
        return (node.input[1], node.input[2])
    }

    /// The weight and bias of a module's convolution in an ONNX file (see `convolutionInputs`).
    public static func convolution(_ data: Data, module: String) throws -> (weight: [Float], bias: [Float]) {
        let model = try Onnx_ModelProto(serializedBytes: data)
        let (weight, bias) = try convolutionInputs(model.graph, module: module)
        func values(_ name: String) throws -> [Float] {
            guard let t = model.graph.initializer.first(where: { $0.name == name }) else {
                throw ONNXExportError(description: "no initializer \(name)")
            }
            if !t.floatData.isEmpty { return t.floatData }
            return t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return (try values(weight), try values(bias))
    }

    /// Reads the `metadata_props` of an ONNX file.
    public static func metadata(_ data: Data) throws -> [String: String] {
        let model = try Onnx_ModelProto(serializedBytes: data)
        return Dictionary(model.metadataProps.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    }

    static func tensor(_ name: String, shape: [Int], values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.dims = shape.map(Int64.init)
        // raw_data is little-endian IEEE 754, as on every platform the hub runs on.
        t.rawData = values.withUnsafeBytes { Data($0) }
        return t
    }

    static func intAttribute(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func intsAttribute(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func entry(_ key: String, _ value: String) -> Onnx_StringStringEntryProto {
        var e = Onnx_StringStringEntryProto()
        e.key = key
        e.value = value
        return e
    }
}
