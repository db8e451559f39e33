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

void dih_string_free(char *string);

#ifdef __cplusplus
}
#endif
#endif
