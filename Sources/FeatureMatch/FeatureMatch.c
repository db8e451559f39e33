// FeatureMatch.h's functions, forwarded to libFeatureKernels.so (the OpenCV side, Sources/FeatureKernels).
// The library is looked for in IMAGEHUB_FEATURE_KERNELS (a path), then beside the executable, then by the
// dynamic loader's own search.
#include "FeatureMatch.h"
#include "KernelLibraries.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    dih_features *(*detect_pixels)(const uint8_t *, int, int, int, int, int, char **);
    int (*count)(const dih_features *);
    void (*free)(dih_features *);
    int (*match)(const dih_features *, const dih_features *, int, double, double, int *, int *, double *, int *, char **);
    int (*resize_down)(const uint8_t *, int, int, int, uint8_t *, int, int);
    int (*resize_up)(const uint8_t *, int, int, int, uint8_t *, int, int, double, int, int);
    int (*softmax_fit)(const float *, const int32_t *, int, int, int, const float *, double, int, float *, float *, int *, char **);
    void (*softmax_probabilities)(const float *, int, int, const float *, const float *, int, float *);
    int (*blas_threads)(void);  // OpenBLAS's openblas_get_num_threads, where the library has it
} kernels;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[1024];

static void load(void) {
    void *lib = dih_open_kernel_library("IMAGEHUB_FEATURE_KERNELS", "libFeatureKernels.so");
    if (!lib) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "OpenCV is not available (libFeatureKernels.so: %s)", why ? why : "not found");
        return;
    }
#define FIND(field, name)                                                                                 \
    *(void **)&kernels.field = dlsym(lib, name);                                                          \
    if (!kernels.field) {                                                                                 \
        snprintf(failure, sizeof failure, "libFeatureKernels.so lacks %s", name);                        \
        return;                                                                                           \
    }
    FIND(detect_pixels, "dihf_features_detect_pixels")
    FIND(count, "dihf_features_count")
    FIND(free, "dihf_features_free")
    FIND(match, "dihf_features_match")
    FIND(resize_down, "dihf_resize_down")
    FIND(resize_up, "dihf_resize_up")
    FIND(softmax_fit, "dihf_softmax_fit")
    FIND(softmax_probabilities, "dihf_softmax_probabilities")
#undef FIND
    // OpenBLAS, which Debian's OpenCV reaches through libblas.so.3 (and libtorch too: one library in the
    // process), starts a worker thread per core when it is loaded, and each spins on sched_yield for about
    // 2^28 cycles (0.1 s) before it sleeps: measured with perf on `imagehub ingest` of 15 phone photos, 9% of
    // the whole process's CPU, none of it work. They are stopped, and OpenBLAS is kept to the calling thread:
    // the label model's refits (small products, 1904 by a few labels) woke them again during an import, and
    // its threads then spun in `exec_blas_async` and sched_yield while the pipeline's workers wanted both
    // cores (importing 300 look-alike photos: 12% of the CPU; one thread: CPU -9%, wall -7%). The process
    // is already parallel (pipeline workers, OpenVINO's threads); a training job's products in libtorch
    // take about 5% longer on one thread (`bench train`: 10,000 images 10.2-11.2 s with two, 11.2-11.7 s
    // with one).
    // One thread first, then the pool stopped: setting the count starts a stopped pool again.
    void (*set_blas_threads)(int);
    *(void **)&set_blas_threads = dlsym(lib, "openblas_set_num_threads");
    if (set_blas_threads) set_blas_threads(1);
    int (*stop_blas_threads)(void);
    *(void **)&stop_blas_threads = dlsym(lib, "blas_thread_shutdown_");
    if (stop_blas_threads) stop_blas_threads();
    *(void **)&kernels.blas_threads = dlsym(lib, "openblas_get_num_threads");
}

/// True once the kernels are loaded; otherwise sets `error` (when given) to why not.
static int ready(char **error) {
    pthread_once(&once, load);
    if (!failure[0]) return 1;
    if (error) *error = strdup(failure);
    return 0;
}

static void *preload(void *unused) {
    (void)unused;
    pthread_once(&once, load);
    return NULL;
}

void dih_features_preload(void) {
    pthread_t thread;
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) != 0) return;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    // Where no thread can be had, the first call loads the library instead.
    (void)pthread_create(&thread, &attributes, preload, NULL);
    pthread_attr_destroy(&attributes);
}

dih_features *dih_features_detect_pixels(const uint8_t *pixels, int width, int height, int channels, int side, int max_features,
                                         char **error) {
    return ready(error) ? kernels.detect_pixels(pixels, width, height, channels, side, max_features, error) : NULL;
}

// Features exist only after a detect succeeded, so the kernels are there.
int dih_features_count(const dih_features *features) { return kernels.count(features); }

void dih_features_free(dih_features *features) {
    if (features) kernels.free(features);
}

int dih_features_match(const dih_features *a, const dih_features *b, int limit, double ratio, double max_error, int *matches,
                       int *inliers, double *scale, int *overlapping, char **error) {
    return kernels.match(a, b, limit, ratio, max_error, matches, inliers, scale, overlapping, error);
}

int dih_blas_threads(void) { return ready(NULL) && kernels.blas_threads ? kernels.blas_threads() : -1; }

// Strings from either side come from the same C library's malloc.
void dih_features_string_free(char *string) { free(string); }

int dih_resize_down(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dst_width, int dst_height) {
    return ready(NULL) ? kernels.resize_down(src, width, height, channels, dst, dst_width, dst_height) : -2;
}

int dih_resize_up(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dst_width, int dst_height, double scale,
                  int left, int top) {
    return ready(NULL) ? kernels.resize_up(src, width, height, channels, dst, dst_width, dst_height, scale, left, top) : -2;
}

int dih_softmax_fit(const float *x, const int32_t *y, int n, int dims, int classes, const float *class_weights, double decay,
                    int max_iterations, float *weights, float *bias, int *iterations, char **error) {
    if (!ready(error)) return -2;
    return kernels.softmax_fit(x, y, n, dims, classes, class_weights, decay, max_iterations, weights, bias, iterations, error);
}

int dih_softmax_probabilities(const float *x, int n, int dims, const float *weights, const float *bias, int classes,
                              float *probabilities, char **error) {
    if (!ready(error)) return -2;
    kernels.softmax_probabilities(x, n, dims, weights, bias, classes, probabilities);
    return 0;
}
