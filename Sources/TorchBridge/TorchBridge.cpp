#include "TorchBridge.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

struct dih_backbone {
    torch::jit::Module features;
    torch::jit::Module head;
    bool has_head = false;
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

}  // namespace

extern "C" int dih_set_threads(int threads) {
    if (threads > 0) at::set_num_threads(threads);
    return at::get_num_threads();
}

extern "C" dih_backbone *dih_backbone_load(const char *features_path, const char *head_path, int channels_last,
                                           char **error) {
    auto model = new dih_backbone();
    bool ok = guarded(error, [&] {
        c10::InferenceMode guard;
        auto module = torch::jit::load(features_path);
        module.eval();
        auto frozen = torch::jit::freeze(module);
        model->features = torch::jit::optimize_for_inference(frozen);
        model->channels_last = channels_last != 0;
        if (head_path) {
            model->head = torch::jit::load(head_path);
            model->head.eval();
            model->has_head = true;
        }
        // One probe forward: learns the output size and warms oneDNN's kernels up.
        auto probe = torch::zeros({1, 3, 224, 224});
        auto out = model->features.forward({probe}).toTensor();
        if (out.dim() != 2) throw std::runtime_error("the feature extractor must return N×D");
        model->dimensions = static_cast<int>(out.size(1));
        if (model->has_head) model->classes = static_cast<int>(model->head.forward({out}).toTensor().size(1));
    });
    if (!ok) {
        delete model;
        return nullptr;
    }
    return model;
}

extern "C" int dih_backbone_dimensions(const dih_backbone *model) { return model->dimensions; }
extern "C" int dih_backbone_classes(const dih_backbone *model) { return model->classes; }

extern "C" int dih_backbone_embed(dih_backbone *model, const float *pixels, int n, int size, float *features,
                                  int topk, int32_t *topk_index, float *topk_probability, char **error) {
    bool ok = guarded(error, [&] {
        if (n <= 0 || size <= 0) throw std::invalid_argument("empty batch");
        std::lock_guard<std::mutex> hold(model->lock);
        c10::InferenceMode guard;
        // NHWC memory viewed as NCHW: a channels-last tensor, no copy.
        auto input = torch::from_blob(const_cast<float *>(pixels), {n, size, size, 3}, torch::kFloat32)
                         .permute({0, 3, 1, 2});
        input = model->channels_last ? input.contiguous(at::MemoryFormat::ChannelsLast) : input.contiguous();
        auto out = model->features.forward({input}).toTensor().contiguous();
        if (out.size(0) != n || out.size(1) != model->dimensions) throw std::runtime_error("unexpected output shape");
        std::memcpy(features, out.data_ptr<float>(), sizeof(float) * n * model->dimensions);
        if (topk > 0 && model->has_head) {
            auto probabilities = torch::softmax(model->head.forward({out}).toTensor(), 1);
            auto best = torch::topk(probabilities, topk, 1);
            auto values = std::get<0>(best).contiguous();
            auto indices = std::get<1>(best).to(torch::kInt32).contiguous();
            std::memcpy(topk_probability, values.data_ptr<float>(), sizeof(float) * n * topk);
            std::memcpy(topk_index, indices.data_ptr<int32_t>(), sizeof(int32_t) * n * topk);
        }
    });
    return ok ? 0 : 1;
}

extern "C" void dih_backbone_free(dih_backbone *model) { delete model; }
extern "C" void dih_string_free(char *string) { std::free(string); }
