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

// Strings from either side come from the same C library's malloc.
void dih_string_free(char *string) { free(string); }
