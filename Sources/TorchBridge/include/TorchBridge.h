// A narrow C API over libtorch for Swift: load the backbone, embed a batch, free. No C++ exception
// crosses this boundary: every failure returns NULL / non-zero and an error string the caller frees
// with dih_string_free.
#ifndef DIH_TORCH_BRIDGE_H
#define DIH_TORCH_BRIDGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dih_backbone dih_backbone;

/// Sets libtorch's intra-op thread count (process-wide). Returns the count now in effect.
int dih_set_threads(int threads);

/// Loads a TorchScript model, N×3×S×S → N×D features, or a pair of N×D features and N×C classifier logits
/// (the set-up's embedder.pt). It is frozen and optimized for inference. `channels_last`: feed the network
/// NHWC memory (as libvips produces it) instead of copying to NCHW.
dih_backbone *dih_backbone_load(const char *path, int input_size, int channels_last, char **error);

/// Output dimensions (D) and class count (C, 0 without logits); valid after a successful load.
int dih_backbone_dimensions(const dih_backbone *model);
int dih_backbone_classes(const dih_backbone *model);

/// Embeds `n` images given as interleaved float pixels, n × size × size × 3 (already normalised).
/// Writes n × D features to `features`; when `topk` > 0 and the model has logits, writes the `topk`
/// best classes per image (indices and softmax probabilities, n × topk each). Returns 0 on success.
int dih_backbone_embed(dih_backbone *model, const float *pixels, int n, int size, float *features,
                       int topk, int32_t *topk_index, float *topk_probability, char **error);

void dih_backbone_free(dih_backbone *model);

/// Options of `dih_train_linear`.
typedef struct dih_train_options {
    int max_epochs;       // upper bound on epochs
    int patience;         // stop after this many epochs without a better validation loss (0: never)
    int batch_size;       // mini-batch size
    float learning_rate;  // Adam
    float weight_decay;   // Adam's L2 penalty
    uint64_t seed;        // shuffling order
} dih_train_options;

/// Called after every epoch with its 1-based number and {train loss, train accuracy, validation loss,
/// validation accuracy} (validation figures are NaN without a validation set).
typedef void (*dih_epoch_callback)(void *context, int epoch, const float *metrics);

/// Trains a linear classifier (softmax regression: logits = x·Wᵀ + b) on fixed features with libtorch:
/// Adam, class-weighted cross-entropy, shuffled mini-batches, early stopping on validation loss with the
/// best epoch's weights restored. Weights start at zero, so the result depends only on the data and seed.
/// Writes `classes × dims` weights and `classes` biases; `history` receives `max_epochs × 4` floats;
/// `epochs_run` and `best_epoch` (1-based) say how far it went. Returns 0 on success.
int dih_train_linear(const float *train_x, const int32_t *train_y, int n_train, const float *val_x,
                     const int32_t *val_y, int n_val, int dims, int classes, const float *class_weights,
                     dih_train_options options, dih_epoch_callback on_epoch, void *context, float *weights,
                     float *bias, float *history, int *epochs_run, int *best_epoch, char **error);

/// The set-up's features.pt opened for fine-tuning (FineTuner.swift): the network up to the last block runs
/// once per image and stays frozen ("frozen rows": the last block's input, then the 112-channel stage's pooled,
/// unit-length output); the last block (192 → 320 channels) and the head convolution train with a linear head
/// on the descriptor they make. Batch norms keep ImageNet's statistics. One call at a time per tail.
typedef struct dih_tail dih_tail;

/// Opens a TorchScript descriptor (the set-up's features.pt) and probes it at `input_size`.
dih_tail *dih_tail_open(const char *path, int input_size, char **error);
/// Floats in one image's frozen row, in the descriptor (D), and in the tuned state (`dih_tail_state`).
int dih_tail_frozen_width(const dih_tail *tail);
int dih_tail_dimensions(const dih_tail *tail);
int dih_tail_state_count(const dih_tail *tail);

/// Frozen rows of `n` images given as dih_backbone_embed's pixels (n × size × size × 3, normalised).
int dih_tail_frozen(dih_tail *tail, const float *pixels, int n, float *rows, char **error);
/// Descriptors (n × D, unit length) of frozen rows through the tail as it stands (256 rows at a time).
int dih_tail_descriptors(dih_tail *tail, const float *rows, int n, float *descriptors, char **error);

/// Options of `dih_tail_train`.
typedef struct dih_tune_options {
    int epochs;             // passes over the training rows
    int batch_size;
    float learning_rate;    // AdamW, the tail's weights
    float head_learning_rate;  // AdamW, the linear head's
    float weight_decay;
    float label_smoothing;
    uint64_t seed;
} dih_tune_options;

/// Trains the tail and a linear head (`weights` classes × D, `bias`: the start on entry, the result on
/// exit) with class-weighted, label-smoothed cross-entropy on shuffled mini-batches. With validation rows it
/// keeps the epoch of least validation loss — the same smoothed loss — (tail and head), the start included
/// (epoch 0: nothing changes), else the last. `history` receives epochs × 4 floats as dih_train_linear's;
/// `best_epoch` the epoch kept. Returns 0 on success.
int dih_tail_train(dih_tail *tail, const float *rows, const int32_t *labels, int n, const float *val_rows,
                   const int32_t *val_labels, int n_val, int classes, const float *class_weights, dih_tune_options options,
                   dih_epoch_callback on_epoch, void *context, float *weights, float *bias, float *history, int *best_epoch,
                   char **error);

/// The tuned weights as `dih_tail_state_count` floats, and back; `dih_tail_reset` restores the file's.
int dih_tail_state(dih_tail *tail, float *state, char **error);
int dih_tail_set_state(dih_tail *tail, const float *state, int count, char **error);
int dih_tail_reset(dih_tail *tail, char **error);

/// The tail's convolutions with their batch norms folded in, as an ONNX export of features.pt holds them:
/// `index` 0 ..< dih_tail_convolutions; `module` receives the module's path ("_blocks.15._expand_conv",
/// owned by the tail), the counts of weight and bias floats, and, where the buffers are given, the values.
int dih_tail_convolutions(const dih_tail *tail);
int dih_tail_folded(dih_tail *tail, int index, const char **module, int *weight_count, int *bias_count, float *weight,
                    float *bias, char **error);

void dih_tail_free(dih_tail *tail);

void dih_string_free(char *string);

#ifdef __cplusplus
}
#endif
#endif
