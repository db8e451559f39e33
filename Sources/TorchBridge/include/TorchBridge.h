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

/// Loads a TorchScript feature extractor (N×3×S×S → N×D) and optionally a classifier head (N×D → N×C,
/// logits; `head_path` may be NULL). The feature extractor is frozen and optimized for inference.
/// `channels_last`: feed the network NHWC memory (as libvips produces it) instead of copying to NCHW.
dih_backbone *dih_backbone_load(const char *features_path, const char *head_path, int channels_last, char **error);

/// Output dimensions (D) and class count (C, 0 without a head); valid after a successful load.
int dih_backbone_dimensions(const dih_backbone *model);
int dih_backbone_classes(const dih_backbone *model);

/// Embeds `n` images given as interleaved float pixels, n × size × size × 3 (already normalised).
/// Writes n × D features to `features`; when `topk` > 0 and the model has a head, writes the `topk`
/// best classes per image (indices and softmax probabilities, n × topk each). Returns 0 on success.
int dih_backbone_embed(dih_backbone *model, const float *pixels, int n, int size, float *features,
                       int topk, int32_t *topk_index, float *topk_probability, char **error);

void dih_backbone_free(dih_backbone *model);
void dih_string_free(char *string);

#ifdef __cplusplus
}
#endif
#endif
