// libtorch's side of TorchBridge: built as its own shared library (libTorchKernels.so) that the bridge
// opens on first use, so that a process that never trains or runs the TorchScript backbone never loads
// libtorch (some 280 shared libraries, most of a second of start-up). The functions are TorchBridge.h's,
// named dihk_ instead of dih_.
#include "TorchBridge.h"

#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

struct dih_backbone {
    torch::jit::Module model;
    bool channels_last = false;
    int dimensions = 0;
    int classes = 0;
    std::mutex lock;  // one forward at a time per model: libtorch parallelises inside the batch
};

namespace {

void set_error(char **error, const std::string &message) {
    if (error) *error = strdup(message.c_str());
}

// Runs `body`, turning any C++ exception into an error string (c10::Error without its backtrace).
template <typename F>
bool guarded(char **error, F &&body) {
    try {
        body();
        return true;
    } catch (const c10::Error &e) {
        set_error(error, e.what_without_backtrace());
    } catch (const std::exception &e) {
        set_error(error, e.what());
    } catch (...) {
        set_error(error, "unknown C++ exception in libtorch");
    }
    return false;
}

/// The model's features and logits (undefined when it returns features alone).
std::pair<torch::Tensor, torch::Tensor> forward(torch::jit::Module &model, const torch::Tensor &input) {
    auto result = model.forward({input});
    if (!result.isTuple()) return {result.toTensor(), torch::Tensor()};
    auto elements = result.toTuple()->elements();
    if (elements.size() != 2) throw std::runtime_error("the model must return N×D features or a pair (features, logits)");
    return {elements[0].toTensor(), elements[1].toTensor()};
}

}  // namespace

extern "C" int dihk_set_threads(int threads) {
    if (threads > 0) at::set_num_threads(threads);
    return at::get_num_threads();
}

extern "C" dih_backbone *dihk_backbone_open(const char *path, int input_size, int channels_last, char **error) {
    auto model = new dih_backbone();
    bool ok = guarded(error, [&] {
        c10::InferenceMode guard;
        auto module = torch::jit::load(path);
        module.eval();
        auto frozen = torch::jit::freeze(module);
        model->model = torch::jit::optimize_for_inference(frozen);
        model->channels_last = channels_last != 0;
        // One probe forward at the input size, in the layout embeds use: learns the output sizes and warms
        // oneDNN's kernels up.
        auto probe = torch::zeros({1, 3, input_size, input_size});
        probe = model->channels_last ? probe.contiguous(at::MemoryFormat::ChannelsLast) : probe;
        auto [out, logits] = forward(model->model, probe);
        if (out.dim() != 2) throw std::runtime_error("the model's features must be N×D");
        model->dimensions = static_cast<int>(out.size(1));
        if (logits.defined()) model->classes = static_cast<int>(logits.size(1));
    });
    if (!ok) {
        delete model;
        return nullptr;
    }
    return model;
}

extern "C" int dihk_backbone_dimensions(const dih_backbone *model) { return model->dimensions; }
extern "C" int dihk_backbone_classes(const dih_backbone *model) { return model->classes; }

extern "C" int dihk_backbone_embed(dih_backbone *model, const float *pixels, int n, int size, float *features,
                                  int topk, int32_t *topk_index, float *topk_probability, char **error) {
    bool ok = guarded(error, [&] {
        if (n <= 0 || size <= 0) throw std::invalid_argument("empty batch");
        std::lock_guard<std::mutex> hold(model->lock);
        c10::InferenceMode guard;
        // NHWC memory viewed as NCHW: a channels-last tensor, no copy.
        auto input = torch::from_blob(const_cast<float *>(pixels), {n, size, size, 3}, torch::kFloat32)
                         .permute({0, 3, 1, 2});
        input = model->channels_last ? input.contiguous(at::MemoryFormat::ChannelsLast) : input.contiguous();
        auto [features_out, logits] = forward(model->model, input);
        auto out = features_out.contiguous();
        if (out.size(0) != n || out.size(1) != model->dimensions) throw std::runtime_error("unexpected output shape");
        std::memcpy(features, out.data_ptr<float>(), sizeof(float) * n * model->dimensions);
        if (topk > 0 && logits.defined()) {
            auto probabilities = torch::softmax(logits, 1);
            auto best = torch::topk(probabilities, topk, 1);
            auto values = std::get<0>(best).contiguous();
            auto indices = std::get<1>(best).to(torch::kInt32).contiguous();
            std::memcpy(topk_probability, values.data_ptr<float>(), sizeof(float) * n * topk);
            std::memcpy(topk_index, indices.data_ptr<int32_t>(), sizeof(int32_t) * n * topk);
        }
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_train_linear(const float *train_x, const int32_t *train_y, int n_train, const float *val_x,
                                const int32_t *val_y, int n_val, int dims, int classes, const float *class_weights,
                                dih_train_options options, dih_epoch_callback on_epoch, void *context, float *weights,
                                float *bias, float *history, int *epochs_run, int *best_epoch, char **error) {
    bool ok = guarded(error, [&] {
        if (n_train <= 0 || dims <= 0 || classes < 2) throw std::invalid_argument("need training rows, dims and 2+ classes");
        if (options.max_epochs <= 0 || options.batch_size <= 0) throw std::invalid_argument("bad options");
        auto x = torch::from_blob(const_cast<float *>(train_x), {n_train, dims}, torch::kFloat32).clone();
        auto y = torch::from_blob(const_cast<int32_t *>(train_y), {n_train}, torch::kInt32).to(torch::kLong);
        torch::Tensor vx, vy;
        if (n_val > 0) {
            vx = torch::from_blob(const_cast<float *>(val_x), {n_val, dims}, torch::kFloat32).clone();
            vy = torch::from_blob(const_cast<int32_t *>(val_y), {n_val}, torch::kInt32).to(torch::kLong);
        }
        auto cw = torch::from_blob(const_cast<float *>(class_weights), {classes}, torch::kFloat32).clone();
        auto w = torch::zeros({classes, dims}, torch::requires_grad());
        auto b = torch::zeros({classes}, torch::requires_grad());
        torch::optim::Adam optimizer({w, b}, torch::optim::AdamOptions(options.learning_rate).weight_decay(options.weight_decay));
        auto generator = at::detail::createCPUGenerator(options.seed);
        namespace F = torch::nn::functional;
        auto loss_of = [&](const torch::Tensor &features, const torch::Tensor &target) {
            return F::cross_entropy(torch::addmm(b, features, w.t()), target, F::CrossEntropyFuncOptions().weight(cw));
        };
        auto accuracy_of = [&](const torch::Tensor &features, const torch::Tensor &target) {
            return torch::addmm(b, features, w.t()).argmax(1).eq(target).to(torch::kFloat32).mean().item<float>();
        };
        float best = std::numeric_limits<float>::infinity();
        auto best_w = w.detach().clone(), best_b = b.detach().clone();
        *best_epoch = 0;
        *epochs_run = 0;
        for (int epoch = 1; epoch <= options.max_epochs; ++epoch) {
            auto order = torch::randperm(n_train, generator, torch::kLong);
            double loss_sum = 0, correct = 0;
            for (int64_t start = 0; start < n_train; start += options.batch_size) {
                auto index = order.slice(0, start, std::min<int64_t>(start + options.batch_size, n_train));
                auto bx = x.index_select(0, index), by = y.index_select(0, index);
                optimizer.zero_grad();
                auto logits = torch::addmm(b, bx, w.t());
                auto loss = F::cross_entropy(logits, by, F::CrossEntropyFuncOptions().weight(cw));
                loss.backward();
                optimizer.step();
                // Training figures are the running means over the epoch's batches (no extra pass).
                loss_sum += loss.item<double>() * index.size(0);
                correct += logits.detach().argmax(1).eq(by).sum().item<double>();
            }
            float metrics[4];
            {
                torch::NoGradGuard no_grad;
                metrics[0] = static_cast<float>(loss_sum / n_train);
                metrics[1] = static_cast<float>(correct / n_train);
                metrics[2] = n_val > 0 ? loss_of(vx, vy).item<float>() : NAN;
                metrics[3] = n_val > 0 ? accuracy_of(vx, vy) : NAN;
            }
            std::memcpy(history + (epoch - 1) * 4, metrics, sizeof(metrics));
            *epochs_run = epoch;
            if (on_epoch) on_epoch(context, epoch, metrics);
            float watched = n_val > 0 ? metrics[2] : metrics[0];
            // An improvement must be worth it (1e-4, or 0.1% of the loss), so a creeping plateau ends the run.
            float finite_best = best == std::numeric_limits<float>::infinity() ? 0.0f : best;
            if (watched < best - std::max(1e-4f, 1e-3f * std::abs(finite_best))) {
                best = watched;
                *best_epoch = epoch;
                best_w = w.detach().clone();
                best_b = b.detach().clone();
            } else if (n_val > 0 && options.patience > 0 && epoch - *best_epoch >= options.patience) {
                break;
            }
        }
        std::memcpy(weights, best_w.contiguous().data_ptr<float>(), sizeof(float) * classes * dims);
        std::memcpy(bias, best_b.contiguous().data_ptr<float>(), sizeof(float) * classes);
    });
    return ok ? 0 : 1;
}

extern "C" void dihk_backbone_free(dih_backbone *model) { delete model; }
extern "C" void dihk_string_free(char *string) { std::free(string); }
