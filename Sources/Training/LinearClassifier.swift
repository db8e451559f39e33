import Embedding
import FeatureMatch
import Foundation
import TorchBridge

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A trained head: softmax regression over backbone features (logits = x·Wᵀ + b), labels in output order.
public struct LinearClassifier: Codable, Sendable, Equatable {
    public let labels: [String]
    public let dimensions: Int
    /// `labels.count × dimensions`, row-major.
    public let weights: [Float]
    public let bias: [Float]

    public init(labels: [String], dimensions: Int, weights: [Float], bias: [Float]) {
        precondition(weights.count == labels.count * dimensions && bias.count == labels.count)
        self.labels = labels
        self.dimensions = dimensions
        self.weights = weights
        self.bias = bias
    }

    /// Class probabilities for each feature row (rows lie one after another in `features`): OpenBLAS's sgemm
    /// in libFeatureKernels.so, so that judging an upload never loads libtorch.
    public func probabilities(_ features: [Float]) throws -> [[Float]] {
        let n = features.count / dimensions
        guard n > 0, features.count == n * dimensions else { return [] }
        var out = [Float](repeating: 0, count: n * labels.count)
        var error: UnsafeMutablePointer<CChar>?
        guard dih_softmax_probabilities(features, Int32(n), Int32(dimensions), weights, bias, Int32(labels.count), &out, &error) == 0 else {
            throw TrainingError("predict: \(LocalFeatures.take(error))")
        }
        return (0..<n).map { Array(out[$0 * labels.count..<($0 + 1) * labels.count]) }
    }
}

func takeError(_ error: UnsafeMutablePointer<CChar>?) -> String {
    guard let error else { return "unknown error" }
    defer { dih_string_free(error) }
    return String(cString: error)
}
