import Embedding
import FeatureMatch

/// Softmax regression fitted by L-BFGS on the whole training set at once (OpenBLAS and libLBFGS, in
/// libFeatureKernels.so): the label model's fit. Deterministic, and a few tens of milliseconds for a few
/// hundred embeddings, without libtorch, whose load alone takes a process 0.4 s.
public enum SoftmaxRegression {
    /// The threads OpenBLAS runs a product on (1 once the kernels are loaded: see `FeatureMatch.c`'s load;
    /// nil where that cannot be read).
    public static var blasThreads: Int? {
        let threads = dih_blas_threads()
        return threads > 0 ? Int(threads) : nil
    }

    /// L-BFGS iterations at most (a fit of a few hundred embeddings converges in 40–60).
    static let maxIterations = 300

    /// Weights (`classes` × `dims`, row-major) and biases minimising the class-weighted mean cross-entropy plus
    /// `decay`·‖W‖² over `examples`.
    public static func fit(_ examples: [Example], dims: Int, classes: Int, classWeights: [Float], decay: Double) throws
        -> (weights: [Float], bias: [Float], iterations: Int) {
        let x = examples.flatMap(\.vector), y = examples.map { Int32($0.label) }
        guard x.count == examples.count * dims, classWeights.count == classes else {
            throw TrainingError("softmax fit: \(examples.count) examples do not all have \(dims) dimensions")
        }
        var weights = [Float](repeating: 0, count: classes * dims), bias = [Float](repeating: 0, count: classes)
        var iterations: Int32 = 0
        var error: UnsafeMutablePointer<CChar>?
        guard dih_softmax_fit(x, y, Int32(examples.count), Int32(dims), Int32(classes), classWeights, decay, Int32(Self.maxIterations),
                              &weights, &bias, &iterations, &error) == 0 else {
            throw TrainingError(LocalFeatures.take(error))
        }
        return (weights, bias, Int(iterations))
    }
}
