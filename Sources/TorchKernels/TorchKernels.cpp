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
#include <vector>

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

/// One epoch of shuffled mini-batches of `n` rows: `logits_of(index)` gives a batch's logits (with their
/// graph), the class-weighted `criterion` its loss, and `optimizer` takes the step. Writes the epoch's
/// training loss and accuracy to metrics[0] and [1]: running means over its batches (no extra pass).
template <typename Logits>
void train_epoch(int64_t n, int batch_size, at::Generator &generator, const torch::Tensor &y, torch::optim::Optimizer &optimizer,
                 const torch::nn::functional::CrossEntropyFuncOptions &criterion, Logits logits_of, float *metrics) {
    auto order = torch::randperm(n, generator, torch::kLong);
    double loss_sum = 0, correct = 0;
    for (int64_t start = 0; start < n; start += batch_size) {
        auto index = order.slice(0, start, std::min<int64_t>(start + batch_size, n));
        auto by = y.index_select(0, index);
        optimizer.zero_grad();
        torch::Tensor logits = logits_of(index);
        torch::Tensor loss = torch::nn::functional::cross_entropy(logits, by, criterion);
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>() * index.size(0);
        correct += logits.detach().argmax(1).eq(by).sum().item<double>();
    }
    metrics[0] = static_cast<float>(loss_sum / n);
    metrics[1] = static_cast<float>(correct / n);
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
            float metrics[4];
            train_epoch(n_train, options.batch_size, generator, y, optimizer, F::CrossEntropyFuncOptions().weight(cw),
                        [&](const torch::Tensor &index) { return torch::addmm(b, x.index_select(0, index), w.t()); }, metrics);
            {
                torch::NoGradGuard no_grad;
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

// MARK: fine-tuning the last block

namespace {

torch::jit::Module submodule(const torch::jit::Module &root, const std::string &path) {
    for (const auto &named : root.named_modules())
        if (named.name == path) return named.value;
    throw std::runtime_error("the descriptor model has no module " + path);
}

torch::Tensor pooled(const torch::Tensor &x) { return torch::flatten(torch::adaptive_avg_pool2d(x, {1, 1}), 1); }
torch::Tensor unit(const torch::Tensor &v) { return v / v.norm(2, {1}, true).clamp_min(1e-12); }

struct Folded {
    std::string module;
    torch::jit::Module conv, norm;
};

}  // namespace

struct dih_tail {
    torch::jit::Module root, stem, stem_norm, last, head_conv, head_norm;
    std::vector<torch::jit::Module> prefix;  // the blocks before the last one, frozen and optimized for inference
    int pooled_stage = 0;                    // the prefix block whose pooled output the descriptor carries first
    int64_t channels = 0, height = 0, width = 0, pooled_width = 0;
    int dimensions = 0, input_size = 0;
    std::vector<torch::Tensor> tuned;  // the last block's and the head convolution's parameters
    std::vector<torch::Tensor> original;
    std::vector<Folded> folded;
    std::mutex lock;

    int64_t frozen_width() const { return channels * height * width + pooled_width; }

    torch::Tensor frozen(const torch::Tensor &input) {
        auto x = torch::relu6(stem_norm.forward({stem.forward({input}).toTensor()}).toTensor());
        torch::Tensor stage;
        for (size_t i = 0; i < prefix.size(); ++i) {
            x = prefix[i].forward({x}).toTensor();
            if (static_cast<int>(i) == pooled_stage) stage = unit(pooled(x));
        }
        return torch::cat({x.flatten(1), stage}, 1);
    }

    /// `descriptors` 256 rows at a time: a whole split at once would hold every image's intermediate maps.
    torch::Tensor descriptors_chunked(const torch::Tensor &rows) {
        std::vector<torch::Tensor> parts;
        for (int64_t start = 0; start < rows.size(0); start += 256)
            parts.push_back(descriptors(rows.slice(0, start, std::min<int64_t>(start + 256, rows.size(0)))));
        return torch::cat(parts, 0);
    }

    torch::Tensor descriptors(const torch::Tensor &rows) {
        auto n = rows.size(0);
        auto x = rows.slice(1, 0, channels * height * width).reshape({n, channels, height, width});
        auto stage = rows.slice(1, channels * height * width);
        auto y = last.forward({x}).toTensor();
        auto head = unit(pooled(torch::relu6(head_norm.forward({head_conv.forward({y}).toTensor()}).toTensor())));
        return torch::cat({head, stage, unit(pooled(x)), unit(pooled(y))}, 1) * 0.5;
    }

    void assign(const std::vector<torch::Tensor> &values) {
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < tuned.size(); ++i) tuned[i].copy_(values[i]);
    }

    std::vector<torch::Tensor> snapshot() const {
        std::vector<torch::Tensor> out;
        for (const auto &t : tuned) out.push_back(t.detach().clone());
        return out;
    }
};

extern "C" dih_tail *dihk_tail_open(const char *path, int input_size, char **error) {
    auto tail = new dih_tail();
    bool ok = guarded(error, [&] {
        tail->root = torch::jit::load(path);
        tail->root.eval();
        auto features = submodule(tail->root, "features");
        tail->stem = submodule(features, "_conv_stem");
        tail->stem_norm = submodule(features, "_bn0");
        tail->head_conv = submodule(features, "_conv_head");
        tail->head_norm = submodule(features, "_bn1");
        auto blocks = submodule(features, "_blocks");
        std::vector<torch::jit::Module> all;
        for (const auto &child : blocks.named_children()) all.push_back(child.value);
        if (all.size() < 3) throw std::runtime_error("the descriptor model has too few blocks");
        tail->last = all.back();
        all.pop_back();
        tail->input_size = input_size;
        // The stages the descriptor pools end where the channel count changes: the last block is a stage
        // of its own, the prefix's output another, and the stage before it gives the descriptor's 2nd part.
        c10::InferenceMode guard;
        auto probe = torch::randn({2, 3, input_size, input_size}, at::detail::createCPUGenerator(7));
        auto x = torch::relu6(tail->stem_norm.forward({tail->stem.forward({probe}).toTensor()}).toTensor());
        std::vector<int64_t> widths;
        for (auto &block : all) {
            x = block.forward({x}).toTensor();
            widths.push_back(x.size(1));
        }
        int end = static_cast<int>(widths.size()) - 1;
        while (end > 0 && widths[end - 1] == widths.back()) --end;
        tail->pooled_stage = end - 1;
        if (tail->pooled_stage < 0) throw std::runtime_error("the descriptor model has one stage");
        tail->channels = x.size(1);
        tail->height = x.size(2);
        tail->width = x.size(3);
        tail->pooled_width = widths[tail->pooled_stage];
        // Batch norms folded into their convolutions: 2.5 times as fast as the blocks as traced.
        for (auto &block : all) {
            auto frozen = torch::jit::freeze(block.clone());
            tail->prefix.push_back(torch::jit::optimize_for_inference(frozen));
        }
        auto wanted = tail->root.forward({probe}).toTensor();
        auto got = tail->descriptors(tail->frozen(probe));
        if (!got.sizes().equals(wanted.sizes()) || !torch::allclose(got, wanted, 1e-4, 1e-4))
            throw std::runtime_error("the descriptor model is not made of a frozen part and a last block as the tail expects");
        tail->dimensions = static_cast<int>(wanted.size(1));
    });
    if (ok) ok = guarded(error, [&] {
        for (const auto &p : tail->last.parameters()) tail->tuned.push_back(p);
        for (const auto &p : tail->head_conv.parameters()) tail->tuned.push_back(p);
        for (auto &t : tail->tuned) t.requires_grad_(false);
        tail->original = tail->snapshot();
        const std::string block = "_blocks." + std::to_string(tail->prefix.size());
        for (const auto &[conv, norm] : std::vector<std::pair<std::string, std::string>>{
                 {"_expand_conv", "_bn0"}, {"_depthwise_conv", "_bn1"}, {"_project_conv", "_bn2"}}) {
            bool present = false;
            for (const auto &child : tail->last.named_children()) present = present || child.name == conv;
            if (present) tail->folded.push_back({block + "." + conv, submodule(tail->last, conv), submodule(tail->last, norm)});
        }
        tail->folded.push_back({"_conv_head", tail->head_conv, tail->head_norm});
    });
    if (!ok) {
        delete tail;
        return nullptr;
    }
    return tail;
}

extern "C" int dihk_tail_frozen_width(const dih_tail *tail) { return static_cast<int>(tail->frozen_width()); }
extern "C" int dihk_tail_dimensions(const dih_tail *tail) { return tail->dimensions; }
extern "C" int dihk_tail_state_count(const dih_tail *tail) {
    int64_t count = 0;
    for (const auto &t : tail->tuned) count += t.numel();
    return static_cast<int>(count);
}

extern "C" int dihk_tail_frozen(dih_tail *tail, const float *pixels, int n, float *rows, char **error) {
    bool ok = guarded(error, [&] {
        if (n <= 0) throw std::invalid_argument("empty batch");
        std::lock_guard<std::mutex> hold(tail->lock);
        c10::InferenceMode guard;
        auto input = torch::from_blob(const_cast<float *>(pixels), {n, tail->input_size, tail->input_size, 3}, torch::kFloat32)
                         .permute({0, 3, 1, 2}).contiguous();
        auto out = tail->frozen(input).contiguous();
        std::memcpy(rows, out.data_ptr<float>(), sizeof(float) * out.numel());
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_tail_descriptors(dih_tail *tail, const float *rows, int n, float *descriptors, char **error) {
    bool ok = guarded(error, [&] {
        if (n <= 0) throw std::invalid_argument("empty batch");
        std::lock_guard<std::mutex> hold(tail->lock);
        c10::InferenceMode guard;
        auto x = torch::from_blob(const_cast<float *>(rows), {n, tail->frozen_width()}, torch::kFloat32);
        auto out = tail->descriptors_chunked(x).contiguous();
        std::memcpy(descriptors, out.data_ptr<float>(), sizeof(float) * out.numel());
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_tail_train(dih_tail *tail, const float *rows, const int32_t *labels, int n, const float *val_rows,
                              const int32_t *val_labels, int n_val, int classes, const float *class_weights,
                              dih_tune_options options, dih_epoch_callback on_epoch, void *context, float *weights, float *bias,
                              float *history, int *best_epoch, char **error) {
    bool ok = guarded(error, [&] {
        if (n <= 0 || classes < 2 || options.epochs <= 0 || options.batch_size <= 0) throw std::invalid_argument("bad fine-tuning input");
        std::lock_guard<std::mutex> hold(tail->lock);
        const int64_t width = tail->frozen_width(), dims = tail->dimensions;
        auto x = torch::from_blob(const_cast<float *>(rows), {n, width}, torch::kFloat32);
        auto y = torch::from_blob(const_cast<int32_t *>(labels), {n}, torch::kInt32).to(torch::kLong);
        torch::Tensor vx, vy;
        if (n_val > 0) {
            vx = torch::from_blob(const_cast<float *>(val_rows), {n_val, width}, torch::kFloat32);
            vy = torch::from_blob(const_cast<int32_t *>(val_labels), {n_val}, torch::kInt32).to(torch::kLong);
        }
        auto cw = torch::from_blob(const_cast<float *>(class_weights), {classes}, torch::kFloat32).clone();
        auto w = torch::from_blob(weights, {classes, dims}, torch::kFloat32).clone().requires_grad_(true);
        auto b = torch::from_blob(bias, {classes}, torch::kFloat32).clone().requires_grad_(true);
        for (auto &t : tail->tuned) t.requires_grad_(true);
        struct Frozen {  // whatever happens, the tail's weights stop tracking gradients when training ends
            dih_tail *tail;
            ~Frozen() { for (auto &t : tail->tuned) t.requires_grad_(false); }
        } frozen{tail};
        std::vector<torch::optim::OptimizerParamGroup> groups;
        groups.emplace_back(tail->tuned, std::make_unique<torch::optim::AdamWOptions>(
                                             torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay)));
        groups.emplace_back(std::vector<torch::Tensor>{w, b}, std::make_unique<torch::optim::AdamWOptions>(
                                torch::optim::AdamWOptions(options.head_learning_rate).weight_decay(options.weight_decay)));
        torch::optim::AdamW optimizer(std::move(groups), torch::optim::AdamWOptions(options.learning_rate));
        namespace F = torch::nn::functional;
        auto criterion = F::CrossEntropyFuncOptions().weight(cw).label_smoothing(options.label_smoothing);
        auto generator = at::detail::createCPUGenerator(options.seed);
        auto validate = [&](float *metrics) {
            torch::NoGradGuard no_grad;
            torch::Tensor logits = torch::addmm(b, tail->descriptors_chunked(vx), w.t());
            metrics[2] = F::cross_entropy(logits, vy, criterion).item<float>();
            metrics[3] = logits.argmax(1).eq(vy).to(torch::kFloat32).mean().item<float>();
        };
        // The start (epoch 0) is a candidate too: fine-tuning that never beats it on validation leaves the
        // backbone and the head as they came.
        float best = std::numeric_limits<float>::infinity();
        if (n_val > 0) {
            float start[4];
            validate(start);
            best = start[2];
        }
        auto best_tail = tail->snapshot();
        auto best_w = w.detach().clone(), best_b = b.detach().clone();
        *best_epoch = 0;
        for (int epoch = 1; epoch <= options.epochs; ++epoch) {
            float metrics[4] = {0, 0, NAN, NAN};
            train_epoch(n, options.batch_size, generator, y, optimizer, criterion,
                        [&](const torch::Tensor &index) { return torch::addmm(b, tail->descriptors(x.index_select(0, index)), w.t()); },
                        metrics);
            if (n_val > 0) validate(metrics);
            std::memcpy(history + (epoch - 1) * 4, metrics, sizeof(metrics));
            if (on_epoch) on_epoch(context, epoch, metrics);
            if (n_val == 0 || metrics[2] < best) {
                best = n_val > 0 ? metrics[2] : best;
                *best_epoch = epoch;
                best_tail = tail->snapshot();
                best_w = w.detach().clone();
                best_b = b.detach().clone();
            }
        }
        tail->assign(best_tail);
        std::memcpy(weights, best_w.contiguous().data_ptr<float>(), sizeof(float) * classes * dims);
        std::memcpy(bias, best_b.contiguous().data_ptr<float>(), sizeof(float) * classes);
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_tail_state(dih_tail *tail, float *state, char **error) {
    bool ok = guarded(error, [&] {
        std::lock_guard<std::mutex> hold(tail->lock);
        for (const auto &t : tail->tuned) {
            auto flat = t.detach().contiguous();
            std::memcpy(state, flat.data_ptr<float>(), sizeof(float) * flat.numel());
            state += flat.numel();
        }
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_tail_set_state(dih_tail *tail, const float *state, int count, char **error) {
    bool ok = guarded(error, [&] {
        if (count != dihk_tail_state_count(tail)) throw std::invalid_argument("the tuned state does not fit this tail: " + std::to_string(count) + " floats, it has " + std::to_string(dihk_tail_state_count(tail)));
        std::lock_guard<std::mutex> hold(tail->lock);
        std::vector<torch::Tensor> values;
        for (const auto &t : tail->tuned) {
            values.push_back(torch::from_blob(const_cast<float *>(state), t.sizes(), torch::kFloat32));
            state += t.numel();
        }
        tail->assign(values);
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_tail_reset(dih_tail *tail, char **error) {
    bool ok = guarded(error, [&] {
        std::lock_guard<std::mutex> hold(tail->lock);
        tail->assign(tail->original);
    });
    return ok ? 0 : 1;
}

extern "C" int dihk_tail_convolutions(const dih_tail *tail) { return static_cast<int>(tail->folded.size()); }

extern "C" int dihk_tail_folded(dih_tail *tail, int index, const char **module, int *weight_count, int *bias_count, float *weight,
                               float *bias, char **error) {
    bool ok = guarded(error, [&] {
        if (index < 0 || index >= static_cast<int>(tail->folded.size())) throw std::out_of_range("no convolution " + std::to_string(index));
        std::lock_guard<std::mutex> hold(tail->lock);
        torch::NoGradGuard no_grad;
        const auto &f = tail->folded[index];
        auto w = f.conv.attr("weight").toTensor();
        auto gamma = f.norm.attr("weight").toTensor(), beta = f.norm.attr("bias").toTensor();
        auto mean = f.norm.attr("running_mean").toTensor(), variance = f.norm.attr("running_var").toTensor();
        // The set-up's batch norms use eps 1e-3 (convert_backbone.py), as the ONNX export folded them.
        auto scale = gamma / torch::sqrt(variance + 1e-3);
        auto folded_w = (w * scale.reshape({-1, 1, 1, 1})).contiguous();
        auto folded_b = (beta - mean * scale).contiguous();
        *module = f.module.c_str();
        *weight_count = static_cast<int>(folded_w.numel());
        *bias_count = static_cast<int>(folded_b.numel());
        if (weight) std::memcpy(weight, folded_w.data_ptr<float>(), sizeof(float) * folded_w.numel());
        if (bias) std::memcpy(bias, folded_b.data_ptr<float>(), sizeof(float) * folded_b.numel());
    });
    return ok ? 0 : 1;
}

extern "C" void dihk_tail_free(dih_tail *tail) { delete tail; }

extern "C" void dihk_backbone_free(dih_backbone *model) { delete model; }
extern "C" void dihk_string_free(char *string) { std::free(string); }
