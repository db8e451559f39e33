// OpenVINO behind a narrow C API. libopenvino_c is opened at run time (dlopen) from the wheel `make setup`
// installs in models/openvino, so the hub builds and runs without it (falling back to libtorch).
// Errors come back as malloc'd strings the caller frees with dih_ov_string_free.
#ifndef OPENVINO_BRIDGE_H
#define OPENVINO_BRIDGE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dih_ov_model dih_ov_model;

/// The most streams (infer requests running at once) a model is compiled for.
#define DIH_OV_MAX_STREAMS 64

/// Opens `library` (a path to libopenvino_c.so.*), reads the ONNX model at `model_path` and compiles it
/// for the CPU with `precision` ("f32", "bf16", ...), `threads` inference threads shared out among
/// `streams` streams (1 to `threads`, at most DIH_OV_MAX_STREAMS; one infer request each), the latency hint
/// and no CPU pinning. Everything runs on a thread of nice `niceness`, so the engine's worker threads (TBB,
/// created then) inherit it. The model's first input must be N×C×H×W floats; its outputs N×K floats.
/// `cache_dir` (NULL for none): OpenVINO's model cache, where the compiled model is kept and read back by
/// the next load of the same path with the same settings and OpenVINO version, without reading the model
/// file. OpenVINO does not look at the file's contents: give each version of the file a folder of its own.
dih_ov_model *dih_ov_load(const char *library, const char *model_path, const char *precision, int threads,
                          int streams, int niceness, const char *cache_dir, char **error);

/// Number of outputs and the width K of output `index` (0 when unknown until the first inference).
int dih_ov_outputs(const dih_ov_model *model);

/// The streams the model runs on: how many `dih_ov_infer` calls run at once.
int dih_ov_streams(const dih_ov_model *model);

/// The OpenVINO version ("2026.4.1-...") and the compiled precision, as the engine reports them.
const char *dih_ov_version(const dih_ov_model *model);
const char *dih_ov_precision(const dih_ov_model *model);

/// Runs `n` inputs of `channels`×`size`×`size` floats, laid out as the model reads them (N×C×H×W) in `input`,
/// which the engine reads in place. Output `i`
/// (i < n_outputs) is copied into `outputs[i]`, which holds `n * widths[i]` floats; the widths the model
/// really produced are checked against `widths`. A call takes every infer request free at the time (waiting
/// for one when none is) and spreads the inputs over them; calls beyond the stream count wait. The engine is
/// given chunks of 8, 4, 2 and 1 inputs: each new batch size would cost it a build of its kernels. 0 on success.
int dih_ov_infer(dih_ov_model *model, const float *input, int n, int channels, int size, int n_outputs,
                 float *const *outputs, const int *widths, char **error);

void dih_ov_free(dih_ov_model *model);
void dih_ov_string_free(char *string);

#ifdef __cplusplus
}
#endif

#endif
