// TorchBridge.h's functions, forwarded to libTorchKernels.so (the libtorch side, Sources/TorchKernels),
// which is opened on the first call: a process that never trains nor runs the TorchScript backbone never
// loads libtorch. The library is looked for in IMAGEHUB_TORCH_KERNELS (a path), then beside the
// executable (where `swift build` puts it), then by the dynamic loader's own search.
#define _GNU_SOURCE
#include "TorchBridge.h"
#include "KernelLibraries.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    int (*set_threads)(int);
    dih_backbone *(*backbone_load)(const char *, int, int, char **);
    int (*backbone_dimensions)(const dih_backbone *);
    int (*backbone_classes)(const dih_backbone *);
    int (*backbone_embed)(dih_backbone *, const float *, int, int, float *, int, int32_t *, float *, char **);
    void (*backbone_free)(dih_backbone *);
    int (*train_linear)(const float *, const int32_t *, int, const float *, const int32_t *, int, int, int, const float *,
                        dih_train_options, dih_epoch_callback, void *, float *, float *, float *, int *, int *, char **);
    dih_tail *(*tail_open)(const char *, int, char **);
    int (*tail_frozen_width)(const dih_tail *);
    int (*tail_dimensions)(const dih_tail *);
    int (*tail_state_count)(const dih_tail *);
    int (*tail_frozen)(dih_tail *, const float *, int, float *, char **);
    int (*tail_descriptors)(dih_tail *, const float *, int, float *, char **);
    int (*tail_train)(dih_tail *, const float *, const int32_t *, int, const float *, const int32_t *, int, int, const float *,
                      dih_tune_options, dih_epoch_callback, void *, float *, float *, float *, int *, char **);
    int (*tail_state)(dih_tail *, float *, char **);
    int (*tail_set_state)(dih_tail *, const float *, int, char **);
    int (*tail_reset)(dih_tail *, char **);
    int (*tail_convolutions)(const dih_tail *);
    int (*tail_folded)(dih_tail *, int, const char **, int *, int *, float *, float *, char **);
    void (*tail_free)(dih_tail *);
} kernels;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[1024];

static void load(void) {
    void *lib = dih_open_kernel_library("IMAGEHUB_TORCH_KERNELS", "libTorchKernels.so");
    if (!lib) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "libtorch is not available (libTorchKernels.so: %s)", why ? why : "not found");
        return;
    }
#define FIND(field, name)                                                                                 \
    *(void **)&kernels.field = dlsym(lib, name);                                                          \
    if (!kernels.field) {                                                                                 \
        snprintf(failure, sizeof failure, "libTorchKernels.so lacks %s", name);                          \
        return;                                                                                           \
    }
    FIND(set_threads, "dihk_set_threads")
    FIND(backbone_load, "dihk_backbone_open")
    FIND(backbone_dimensions, "dihk_backbone_dimensions")
    FIND(backbone_classes, "dihk_backbone_classes")
    FIND(backbone_embed, "dihk_backbone_embed")
    FIND(backbone_free, "dihk_backbone_free")
    FIND(train_linear, "dihk_train_linear")
    FIND(tail_open, "dihk_tail_open")
    FIND(tail_frozen_width, "dihk_tail_frozen_width")
    FIND(tail_dimensions, "dihk_tail_dimensions")
    FIND(tail_state_count, "dihk_tail_state_count")
    FIND(tail_frozen, "dihk_tail_frozen")
    FIND(tail_descriptors, "dihk_tail_descriptors")
    FIND(tail_train, "dihk_tail_train")
    FIND(tail_state, "dihk_tail_state")
    FIND(tail_set_state, "dihk_tail_set_state")
    FIND(tail_reset, "dihk_tail_reset")
    FIND(tail_convolutions, "dihk_tail_convolutions")
    FIND(tail_folded, "dihk_tail_folded")
    FIND(tail_free, "dihk_tail_free")
#undef FIND
}

/// True once the kernels are loaded; otherwise sets `error` (when given) to why not.
static int ready(char **error) {
    pthread_once(&once, load);
    if (!failure[0]) return 1;
    if (error) *error = strdup(failure);
    return 0;
}

int dih_set_threads(int threads) { return ready(NULL) ? kernels.set_threads(threads) : 0; }

dih_backbone *dih_backbone_load(const char *path, int input_size, int channels_last, char **error) {
    return ready(error) ? kernels.backbone_load(path, input_size, channels_last, error) : NULL;
}

// A model exists only after a load succeeded, so the kernels are there.
int dih_backbone_dimensions(const dih_backbone *model) { return kernels.backbone_dimensions(model); }
int dih_backbone_classes(const dih_backbone *model) { return kernels.backbone_classes(model); }

int dih_backbone_embed(dih_backbone *model, const float *pixels, int n, int size, float *features, int topk,
                       int32_t *topk_index, float *topk_probability, char **error) {
    return kernels.backbone_embed(model, pixels, n, size, features, topk, topk_index, topk_probability, error);
}

void dih_backbone_free(dih_backbone *model) {
    if (model) kernels.backbone_free(model);
}

int dih_train_linear(const float *train_x, const int32_t *train_y, int n_train, const float *val_x, const int32_t *val_y,
                     int n_val, int dims, int classes, const float *class_weights, dih_train_options options,
                     dih_epoch_callback on_epoch, void *context, float *weights, float *bias, float *history, int *epochs_run,
                     int *best_epoch, char **error) {
    if (!ready(error)) return 1;
    return kernels.train_linear(train_x, train_y, n_train, val_x, val_y, n_val, dims, classes, class_weights, options, on_epoch,
                                context, weights, bias, history, epochs_run, best_epoch, error);
}

dih_tail *dih_tail_open(const char *path, int input_size, char **error) {
    return ready(error) ? kernels.tail_open(path, input_size, error) : NULL;
}

// A tail exists only after an open succeeded, so the kernels are there.
int dih_tail_frozen_width(const dih_tail *tail) { return kernels.tail_frozen_width(tail); }
int dih_tail_dimensions(const dih_tail *tail) { return kernels.tail_dimensions(tail); }
int dih_tail_state_count(const dih_tail *tail) { return kernels.tail_state_count(tail); }

int dih_tail_frozen(dih_tail *tail, const float *pixels, int n, float *rows, char **error) {
    return kernels.tail_frozen(tail, pixels, n, rows, error);
}

int dih_tail_descriptors(dih_tail *tail, const float *rows, int n, float *descriptors, char **error) {
    return kernels.tail_descriptors(tail, rows, n, descriptors, error);
}

int dih_tail_train(dih_tail *tail, const float *rows, const int32_t *labels, int n, const float *val_rows, const int32_t *val_labels,
                   int n_val, int classes, const float *class_weights, dih_tune_options options, dih_epoch_callback on_epoch,
                   void *context, float *weights, float *bias, float *history, int *best_epoch, char **error) {
    return kernels.tail_train(tail, rows, labels, n, val_rows, val_labels, n_val, classes, class_weights, options, on_epoch, context,
                              weights, bias, history, best_epoch, error);
}

int dih_tail_state(dih_tail *tail, float *state, char **error) { return kernels.tail_state(tail, state, error); }
int dih_tail_set_state(dih_tail *tail, const float *state, int count, char **error) {
    return kernels.tail_set_state(tail, state, count, error);
}
int dih_tail_reset(dih_tail *tail, char **error) { return kernels.tail_reset(tail, error); }
int dih_tail_convolutions(const dih_tail *tail) { return kernels.tail_convolutions(tail); }
int dih_tail_folded(dih_tail *tail, int index, const char **module, int *weight_count, int *bias_count, float *weight, float *bias,
                    char **error) {
    return kernels.tail_folded(tail, index, module, weight_count, bias_count, weight, bias, error);
}

void dih_tail_free(dih_tail *tail) {
    if (tail) kernels.tail_free(tail);
}

// Strings from either side come from the same C library's malloc.
void dih_string_free(char *string) { free(string); }
