// Softmax regression (multinomial logistic regression) for the label model, as dihf_softmax_*: the
// objective and its gradient are two matrix products (OpenBLAS's sgemm), minimised by libLBFGS. Deterministic:
// the whole training set each step, no sampling. The label model refits this way in tens of milliseconds,
// without loading libtorch (0.4 s a process; libtorch stays for the models people train).
#include "FeatureKernels.h"

#include <cblas.h>
#include <lbfgs.h>

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

namespace {

struct Problem {
    const float *x;
    const int32_t *y;
    int n, dims, classes;
    double decay;
    std::vector<float> sampleWeight;  // per example, summing to 1
    std::vector<float> w, logits, g, gw;
    std::vector<double> biasGradient;  // allocated before the search: nothing may throw through libLBFGS
    int iterations = 0;
};

/// Weighted mean cross-entropy + decay·‖W‖² (the bias unpenalised) and its gradient at `theta` = W (classes ×
/// dims, row-major), then the bias; variables past those (padding) keep a zero gradient.
lbfgsfloatval_t evaluate(void *instance, const lbfgsfloatval_t *theta, lbfgsfloatval_t *gradient, const int count,
                         const lbfgsfloatval_t) {
    auto &p = *static_cast<Problem *>(instance);
    const int n = p.n, d = p.dims, c = p.classes, wc = c * d;
    for (int k = 0; k < wc; k++) p.w[k] = static_cast<float>(theta[k]);
    // logits (n × c) = X (n × d) · Wᵀ
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, c, d, 1.0f, p.x, d, p.w.data(), d, 0.0f, p.logits.data(), c);
    double loss = 0;
    std::vector<double> &biasGradient = p.biasGradient;
    std::fill(biasGradient.begin(), biasGradient.end(), 0.0);
    for (int i = 0; i < n; i++) {
        float *z = &p.logits[static_cast<size_t>(i) * c];
        float top = -INFINITY;
        for (int j = 0; j < c; j++) {
            z[j] += static_cast<float>(theta[wc + j]);
            if (z[j] > top) top = z[j];
        }
        double sum = 0;
        for (int j = 0; j < c; j++) sum += std::exp(static_cast<double>(z[j] - top));
        const double logSum = std::log(sum), weight = p.sampleWeight[i];
        loss -= weight * (static_cast<double>(z[p.y[i]] - top) - logSum);
        float *gi = &p.g[static_cast<size_t>(i) * c];
        for (int j = 0; j < c; j++) {
            const double probability = std::exp(static_cast<double>(z[j] - top) - logSum);
            gi[j] = static_cast<float>(weight * (probability - (j == p.y[i] ? 1.0 : 0.0)));
            biasGradient[j] += gi[j];
        }
    }
    // ∂/∂W (c × d) = Gᵀ (c × n) · X (n × d)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, d, n, 1.0f, p.g.data(), c, p.x, d, 0.0f, p.gw.data(), d);
    for (int k = 0; k < wc; k++) {
        loss += p.decay * theta[k] * theta[k];
        gradient[k] = p.gw[k] + 2 * p.decay * theta[k];
    }
    for (int j = 0; j < c; j++) gradient[wc + j] = biasGradient[j];
    for (int k = wc + c; k < count; k++) gradient[k] = 0;
    return loss;
}

}  // namespace

extern "C" int dihf_softmax_fit(const float *x, const int32_t *y, int n, int dims, int classes, const float *class_weights,
                                double decay, int max_iterations, float *weights, float *bias, int *iterations, char **error) {
    if (n < 1 || dims < 1 || classes < 2 || max_iterations < 1 || !(decay >= 0)) {
        if (error) *error = strdup("softmax fit: needs at least one example, one dimension, two classes and a decay >= 0");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= classes) {
            if (error) *error = strdup("softmax fit: a label is out of range");
            return -1;
        }
    }
    Problem p{x, y, n, dims, classes, decay, {}, {}, {}, {}, {}, {}, 0};
    try {
        p.sampleWeight.resize(n);
        double total = 0;
        for (int i = 0; i < n; i++) total += class_weights ? class_weights[y[i]] : 1.0f;
        for (int i = 0; i < n; i++) p.sampleWeight[i] = static_cast<float>((class_weights ? class_weights[y[i]] : 1.0f) / total);
        p.w.resize(static_cast<size_t>(classes) * dims);
        p.gw.resize(p.w.size());
        p.logits.resize(static_cast<size_t>(n) * classes);
        p.g.resize(p.logits.size());
        p.biasGradient.resize(classes);
    } catch (const std::bad_alloc &) {
        if (error) *error = strdup("softmax fit: out of memory");
        return -1;
    }
    // libLBFGS's vector code wants a multiple of 16 variables; the padding never moves.
    const int used = classes * dims + classes, count = (used + 15) / 16 * 16;
    lbfgsfloatval_t *theta = lbfgs_malloc(count);
    if (!theta) {
        if (error) *error = strdup("softmax fit: out of memory");
        return -1;
    }
    for (int k = 0; k < count; k++) theta[k] = 0;
    lbfgs_parameter_t parameters;
    lbfgs_parameter_init(&parameters);
    parameters.max_iterations = max_iterations;
    lbfgsfloatval_t final = 0;
    auto progress = [](void *instance, const lbfgsfloatval_t *, const lbfgsfloatval_t *, const lbfgsfloatval_t,
                       const lbfgsfloatval_t, const lbfgsfloatval_t, const lbfgsfloatval_t, int, int k, int) -> int {
        static_cast<Problem *>(instance)->iterations = k;
        return 0;
    };
    const int status = lbfgs(count, theta, &final, evaluate, progress, &p, &parameters);
    // A trial step of the line search may overflow; what counts is the point it ends on.
    bool finite = std::isfinite(final);
    for (int k = 0; k < used && finite; k++) finite = std::isfinite(theta[k]);
    // A line search that cannot improve further rolls back to the last point and says so: that point is the fit.
    // What remains an error: bad parameters, memory, or an objective that stopped being a number.
    const bool failed = status == LBFGSERR_OUTOFMEMORY || status == LBFGSERR_UNKNOWNERROR || status == LBFGSERR_LOGICERROR ||
                        (status >= LBFGSERR_INVALID_N && status <= LBFGSERR_INVALID_ORTHANTWISE_END) || !finite;
    if (failed) {
        lbfgs_free(theta);
        if (error) *error = strdup(finite ? "softmax fit: L-BFGS failed" : "softmax fit: the objective is not finite");
        return -1;
    }
    for (int k = 0; k < classes * dims; k++) weights[k] = static_cast<float>(theta[k]);
    for (int j = 0; j < classes; j++) bias[j] = static_cast<float>(theta[classes * dims + j]);
    if (iterations) *iterations = p.iterations;
    lbfgs_free(theta);
    return 0;
}

extern "C" void dihf_softmax_probabilities(const float *x, int n, int dims, const float *weights, const float *bias, int classes,
                                          float *probabilities) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, classes, dims, 1.0f, x, dims, weights, dims, 0.0f, probabilities, classes);
    for (int i = 0; i < n; i++) {
        float *z = &probabilities[static_cast<size_t>(i) * classes];
        float top = -INFINITY;
        for (int j = 0; j < classes; j++) {
            z[j] += bias[j];
            if (z[j] > top) top = z[j];
        }
        float sum = 0;
        for (int j = 0; j < classes; j++) sum += (z[j] = std::exp(z[j] - top));
        for (int j = 0; j < classes; j++) z[j] /= sum;
    }
}
