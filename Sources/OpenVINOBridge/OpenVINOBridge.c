// See include/OpenVINOBridge.h. The few declarations below mirror OpenVINO's C API (openvino/c/*.h of the
// 2026.4 wheel); the library itself is resolved with dlopen/dlsym, so nothing here links against it.
#define _GNU_SOURCE
#include "OpenVINOBridge.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

// --- OpenVINO C API declarations (ov_common.h, ov_shape.h, ov_property.h, ov_core.h, ...) -----------------
typedef int ov_status_e;  // OK = 0, errors < 0
enum { OV_OK = 0, OV_F32 = 4 };  // ov_status_e OK; ov_element_type_e F32 (DYNAMIC, BOOLEAN, BF16, F16, F32)
typedef struct ov_core ov_core_t;
typedef struct ov_compiled_model ov_compiled_model_t;
typedef struct ov_infer_request ov_infer_request_t;
typedef struct ov_tensor ov_tensor_t;
typedef struct { int64_t rank; int64_t *dims; } ov_shape_t;
typedef struct { const char *key; const void *value; } ov_property_t;
typedef struct { const char *buildNumber; const char *description; } ov_version_t;

struct api {
    ov_status_e (*core_create)(ov_core_t **);
    void (*core_free)(ov_core_t *);
    ov_status_e (*core_compile_model_from_file_props)(const ov_core_t *, const char *, const char *, size_t,
                                                      const ov_property_t *, ov_compiled_model_t **);
    ov_status_e (*compiled_model_outputs_size)(const ov_compiled_model_t *, size_t *);
    void (*compiled_model_free)(ov_compiled_model_t *);
    ov_status_e (*compiled_model_get_property)(const ov_compiled_model_t *, const char *, char **);
    ov_status_e (*core_get_property)(const ov_core_t *, const char *, const char *, char **);
    ov_status_e (*compiled_model_create_infer_request)(const ov_compiled_model_t *, ov_infer_request_t **);
    void (*infer_request_free)(ov_infer_request_t *);
    ov_status_e (*shape_create)(int64_t, const int64_t *, ov_shape_t *);
    ov_status_e (*shape_free)(ov_shape_t *);
    ov_status_e (*tensor_create_from_host_ptr)(int, const ov_shape_t, void *, ov_tensor_t **);
    void (*tensor_free)(ov_tensor_t *);
    ov_status_e (*tensor_get_shape)(const ov_tensor_t *, ov_shape_t *);
    ov_status_e (*tensor_data)(const ov_tensor_t *, void **);
    ov_status_e (*infer_request_set_input_tensor)(ov_infer_request_t *, const ov_tensor_t *);
    ov_status_e (*infer_request_infer)(ov_infer_request_t *);
    ov_status_e (*infer_request_start_async)(ov_infer_request_t *);
    ov_status_e (*infer_request_wait)(ov_infer_request_t *);
    ov_status_e (*infer_request_get_output_tensor_by_index)(const ov_infer_request_t *, size_t, ov_tensor_t **);
    const char *(*get_error_info)(ov_status_e);
    char *(*get_last_err_msg)(void);
    void (*free)(const char *);
    ov_status_e (*get_openvino_version)(ov_version_t *);
    void (*version_free)(ov_version_t *);
};

struct dih_ov_model {
    struct api api;
    ov_core_t *core;
    ov_compiled_model_t *compiled;
    /// One infer request per stream; `busy[i]` while a caller holds request i (under `lock`; `freed` is
    /// signalled when one is given back).
    ov_infer_request_t *requests[DIH_OV_MAX_STREAMS];
    int busy[DIH_OV_MAX_STREAMS];
    int streams;
    int outputs;
    char version[128];
    char precision[32];
    pthread_mutex_t lock;
    pthread_cond_t freed;
};

static char *format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, args) < 0) out = NULL;
    va_end(args);
    return out;
}

/// What went wrong in the last OpenVINO call: its status text and the engine's message.
static char *ov_error(const struct api *api, const char *what, ov_status_e status) {
    const char *info = api->get_error_info ? api->get_error_info(status) : NULL;
    char *message = api->get_last_err_msg ? api->get_last_err_msg() : NULL;
    char *out = format("%s: %s%s%s", what, info ? info : "error", message ? ": " : "", message ? message : "");
    if (message && api->free) api->free(message);
    return out;
}

static int resolve(void *lib, struct api *api, char **error) {
#define SYM(field, name)                                                            \
    do {                                                                            \
        *(void **)(&api->field) = dlsym(lib, name);                                 \
        if (!api->field) {                                                          \
            *error = format("%s is missing from the OpenVINO library", name);       \
            return -1;                                                              \
        }                                                                           \
    } while (0)
    SYM(core_create, "ov_core_create");
    SYM(core_free, "ov_core_free");
    SYM(core_compile_model_from_file_props, "ov_core_compile_model_from_file_props");
    SYM(compiled_model_outputs_size, "ov_compiled_model_outputs_size");
    SYM(compiled_model_free, "ov_compiled_model_free");
    SYM(compiled_model_get_property, "ov_compiled_model_get_property");
    SYM(core_get_property, "ov_core_get_property");
    SYM(compiled_model_create_infer_request, "ov_compiled_model_create_infer_request");
    SYM(infer_request_free, "ov_infer_request_free");
    SYM(shape_create, "ov_shape_create");
    SYM(shape_free, "ov_shape_free");
    SYM(tensor_create_from_host_ptr, "ov_tensor_create_from_host_ptr");
    SYM(tensor_free, "ov_tensor_free");
    SYM(tensor_get_shape, "ov_tensor_get_shape");
    SYM(tensor_data, "ov_tensor_data");
    SYM(infer_request_set_input_tensor, "ov_infer_request_set_input_tensor");
    SYM(infer_request_infer, "ov_infer_request_infer");
    SYM(infer_request_start_async, "ov_infer_request_start_async");
    SYM(infer_request_wait, "ov_infer_request_wait");
    SYM(infer_request_get_output_tensor_by_index, "ov_infer_request_get_output_tensor_by_index");
    SYM(get_error_info, "ov_get_error_info");
    SYM(get_last_err_msg, "ov_get_last_err_msg");
    SYM(free, "ov_free");
    SYM(get_openvino_version, "ov_get_openvino_version");
    SYM(version_free, "ov_version_free");
#undef SYM
    return 0;
}

struct load_args {
    const char *library, *model_path, *precision, *cache_dir;
    int threads, streams, niceness;
    dih_ov_model *model;
    char *error;
};

#define CHECK(call, what)                                      \
    do {                                                       \
        ov_status_e s_ = (call);                               \
        if (s_ != OV_OK) {                                     \
            a->error = ov_error(api, what, s_);                \
            goto fail;                                         \
        }                                                      \
    } while (0)

static void *load_on_thread(void *p) {
    struct load_args *a = p;
    // The nice value is per thread on Linux, and threads inherit their creator's: the engine's pool,
    // started below, runs at the processing threads' priority.
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), a->niceness);

    // The library stays loaded for the life of the process: unloading TBB while its threads wind down is
    // not safe, and a process loads one engine.
    void *lib = dlopen(a->library, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        a->error = format("cannot open %s: %s", a->library, dlerror());
        return NULL;
    }
    dih_ov_model *m = calloc(1, sizeof *m);
    if (!m) {
        a->error = format("out of memory");
        return NULL;
    }
    if (resolve(lib, &m->api, &a->error) != 0) {
        free(m);
        return NULL;
    }
    const struct api *api = &m->api;
    char threads[16], streams[16];
    const int thread_count = a->threads > 0 ? a->threads : 1;
    m->streams = a->streams < 1 ? 1 : a->streams > thread_count ? thread_count : a->streams;
    if (m->streams > DIH_OV_MAX_STREAMS) m->streams = DIH_OV_MAX_STREAMS;
    snprintf(threads, sizeof threads, "%d", thread_count);
    snprintf(streams, sizeof streams, "%d", m->streams);
    CHECK(api->core_create(&m->core), "creating the OpenVINO core");
    // `auto`: bf16 where the CPU computes it natively (OpenVINO lists BF16 among the CPU's optimisation
    // capabilities only with AVX-512 BF16 or AMX), f32 elsewhere, where bf16 would be emulated and slower.
    const char *precision_hint = a->precision;
    if (strcmp(a->precision, "auto") == 0) {
        char *capabilities = NULL;
        precision_hint = "f32";
        if (api->core_get_property(m->core, "CPU", "OPTIMIZATION_CAPABILITIES", &capabilities) == OV_OK && capabilities) {
            if (strstr(capabilities, "BF16")) precision_hint = "bf16";
            api->free(capabilities);
        }
    }
    ov_property_t properties[] = {
        {"INFERENCE_PRECISION_HINT", precision_hint},
        {"PERFORMANCE_HINT", "LATENCY"},
        {"INFERENCE_NUM_THREADS", threads},
        // The threads are shared out among the streams (2 threads, 2 streams: one each), each stream runs
        // one infer request at a time.
        {"NUM_STREAMS", streams},
        // Several processes (an API node, workers, tests) may share the machine's cores.
        {"ENABLE_CPU_PINNING", "NO"},
        // Last, so that it can be left out: a compiled model read back from the cache instead of compiled
        // again (OpenVINO compiles afresh when an entry cannot be read).
        {"CACHE_DIR", a->cache_dir ? a->cache_dir : ""},
    };
    const size_t property_count = sizeof properties / sizeof properties[0] - (a->cache_dir && *a->cache_dir ? 0 : 1);
    ov_version_t version = {0};
    if (api->get_openvino_version(&version) == OV_OK) {
        snprintf(m->version, sizeof m->version, "%s", version.buildNumber ? version.buildNumber : "?");
        api->version_free(&version);
    }
    // From the file rather than a model read first: with the cache, a compiled model found there is read
    // back without reading the ONNX file at all (0.03 s against 0.12 s for Lite0). OpenVINO keys such an
    // entry by the file's path and the settings alone, so the caller names a cache folder of the file's
    // identity (see Backbone.compiledModelFolder).
    CHECK(api->core_compile_model_from_file_props(m->core, a->model_path, "CPU", property_count, properties, &m->compiled),
          "compiling the model for the CPU");
    size_t outputs = 0;
    CHECK(api->compiled_model_outputs_size(m->compiled, &outputs), "counting the model's outputs");
    m->outputs = (int)outputs;
    char *precision = NULL;
    if (api->compiled_model_get_property(m->compiled, "INFERENCE_PRECISION_HINT", &precision) == OV_OK && precision) {
        snprintf(m->precision, sizeof m->precision, "%s", precision);
        api->free(precision);
    }
    for (int i = 0; i < m->streams; i++)
        CHECK(api->compiled_model_create_infer_request(m->compiled, &m->requests[i]), "creating an infer request");
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->freed, NULL);
    a->model = m;
    return NULL;
fail:
    for (int i = 0; i < m->streams; i++)
        if (m->requests[i]) api->infer_request_free(m->requests[i]);
    if (m->compiled) api->compiled_model_free(m->compiled);
    if (m->core) api->core_free(m->core);
    free(m);
    return NULL;
}

dih_ov_model *dih_ov_load(const char *library, const char *model_path, const char *precision, int threads,
                          int streams, int niceness, const char *cache_dir, char **error) {
    struct load_args a = {library, model_path, precision, cache_dir, threads, streams, niceness, NULL, NULL};
    pthread_t thread;
    if (pthread_create(&thread, NULL, load_on_thread, &a) != 0) {
        *error = format("cannot start a thread to load OpenVINO");
        return NULL;
    }
    pthread_join(thread, NULL);
    if (!a.model) *error = a.error ? a.error : format("loading OpenVINO failed");
    return a.model;
}

int dih_ov_outputs(const dih_ov_model *model) { return model->outputs; }
int dih_ov_streams(const dih_ov_model *model) { return model->streams; }
const char *dih_ov_version(const dih_ov_model *model) { return model->version; }
const char *dih_ov_precision(const dih_ov_model *model) { return model->precision; }

#undef CHECK
#define CHECK(call, what)                           \
    do {                                            \
        ov_status_e s_ = (call);                    \
        if (s_ != OV_OK) {                          \
            *error = ov_error(api, what, s_);       \
            goto done;                              \
        }                                           \
    } while (0)

/// The largest batch the engine is given at once, and the sizes it is given: each new input shape costs the
/// CPU plugin a one-time build of its kernels (25–40 ms for Lite0 on 2 cores), so a batch of any size runs as
/// chunks of 8, 4, 2 and 1 (7 = 4 + 2 + 1), four shapes in all. Per image a chunk of 4 or 8 runs as fast as
/// any larger batch (bf16 4.5 ms at 4, 8 and 16 on 2 cores; f32 8.4, 8.1 and 8.8).
enum { CHUNK_MAX = 8 };

/// One chunk of `n` planar inputs at `planar` in flight on `request`: its input tensor (wrapping `planar`,
/// read in place), and the first output row its results go to.
struct chunk {
    ov_infer_request_t *request;
    ov_tensor_t *tensor;
    int n, row;
};

/// Starts `c` (its tensor is freed by `finish_chunk`, or here when it cannot be started).
static int start_chunk(dih_ov_model *m, struct chunk *c, float *planar, int channels, int size, char **error) {
    const struct api *api = &m->api;
    int status = -1;
    ov_shape_t shape = {0};
    int64_t dims[4] = {c->n, channels, size, size};
    CHECK(api->shape_create(4, dims, &shape), "making the input shape");
    CHECK(api->tensor_create_from_host_ptr(OV_F32, shape, planar, &c->tensor), "wrapping the input");
    CHECK(api->infer_request_set_input_tensor(c->request, c->tensor), "setting the input");
    CHECK(api->infer_request_start_async(c->request), "inference");
    status = 0;
done:
    if (shape.dims) api->shape_free(&shape);
    if (status != 0 && c->tensor) {
        api->tensor_free(c->tensor);
        c->tensor = NULL;
    }
    return status;
}

/// Waits for a started chunk and copies its outputs to row `c->row` of each of `outputs` (when `error` is
/// still unset); frees its tensor either way.
static int finish_chunk(dih_ov_model *m, struct chunk *c, int n_outputs, float *const *outputs, const int *widths,
                        char **error) {
    const struct api *api = &m->api;
    int status = -1;
    ov_status_e waited = api->infer_request_wait(c->request);
    if (*error) goto done;
    CHECK(waited, "inference");
    for (int i = 0; i < n_outputs; i++) {
        ov_tensor_t *out = NULL;
        ov_shape_t out_shape = {0};
        void *data = NULL;
        CHECK(api->infer_request_get_output_tensor_by_index(c->request, (size_t)i, &out), "reading an output");
        ov_status_e s = api->tensor_get_shape(out, &out_shape);
        if (s == OV_OK) s = api->tensor_data(out, &data);
        int ok = s == OV_OK && out_shape.rank == 2 && out_shape.dims[0] == c->n && out_shape.dims[1] == widths[i];
        if (ok) memcpy(outputs[i] + (size_t)c->row * (size_t)widths[i], data, (size_t)c->n * (size_t)widths[i] * sizeof(float));
        else if (s == OV_OK)
            *error = format("output %d has shape %lldx%lld, expected %dx%d", i,
                            out_shape.rank > 0 ? (long long)out_shape.dims[0] : -1LL,
                            out_shape.rank > 1 ? (long long)out_shape.dims[1] : -1LL, c->n, widths[i]);
        else *error = ov_error(api, "reading an output", s);
        if (out_shape.dims) api->shape_free(&out_shape);
        api->tensor_free(out);
        if (!ok) goto done;
    }
    status = 0;
done:
    if (c->tensor) api->tensor_free(c->tensor);
    c->tensor = NULL;
    return status;
}

int dih_ov_infer(dih_ov_model *m, const float *input, int n, int channels, int size, int n_outputs,
                 float *const *outputs, const int *widths, char **error) {
    if (n <= 0 || n_outputs > m->outputs) {
        *error = format("asked for %d outputs of %d inputs; the model has %d outputs", n_outputs, n, m->outputs);
        return -1;
    }
    const size_t per_image = (size_t)size * (size_t)size * (size_t)channels;
    // The engine reads the caller's buffer in place and never writes it.
    float *planar = (float *)input;
    // Every request free now is taken (at least one, waiting for it), up to one a chunk.
    int held[DIH_OV_MAX_STREAMS], k = 0;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        for (int i = 0; i < m->streams && k < n; i++)
            if (!m->busy[i]) {
                m->busy[i] = 1;
                held[k++] = i;
            }
        if (k > 0) break;
        pthread_cond_wait(&m->freed, &m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    // Chunks small enough that every held request gets one (3 on 2 requests: 2 and 1), at most CHUNK_MAX.
    int target = 1;
    while (target * 2 <= CHUNK_MAX && target * 2 * k <= n + k - 1) target *= 2;
    int status = 0;
    for (int row = 0; row < n && status == 0;) {
        // One round: a chunk on each held request at once, then each waited for in turn.
        struct chunk round[DIH_OV_MAX_STREAMS];
        int started = 0;
        for (int r = 0; r < k && row < n; r++) {
            int chunk = target;
            while (chunk > n - row) chunk /= 2;
            round[started] = (struct chunk){m->requests[held[r]], NULL, chunk, row};
            if (start_chunk(m, &round[started], planar + (size_t)row * per_image, channels, size, error) != 0) {
                status = -1;
                break;
            }
            started++;
            row += chunk;
        }
        for (int r = 0; r < started; r++)
            if (finish_chunk(m, &round[r], n_outputs, outputs, widths, error) != 0) status = -1;
    }
    pthread_mutex_lock(&m->lock);
    for (int r = 0; r < k; r++) m->busy[held[r]] = 0;
    pthread_cond_broadcast(&m->freed);
    pthread_mutex_unlock(&m->lock);
    return status;
}

void dih_ov_free(dih_ov_model *m) {
    if (!m) return;
    for (int i = 0; i < m->streams; i++) m->api.infer_request_free(m->requests[i]);
    m->api.compiled_model_free(m->compiled);
    m->api.core_free(m->core);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->freed);
    free(m);
}

void dih_ov_string_free(char *string) { free(string); }
