// Geometric verification of near duplicates with OpenCV (Debian's 4.6) behind a narrow C API: ORB
// keypoints on a grey image, then brute-force Hamming matches with Lowe's ratio test and a RANSAC fit of a
// similarity transform (rotation, uniform scale, translation): what a crop, a resize and a recompression
// preserve, and two photos of the same scene from different places do not. Also OpenCV's downscale for
// thumbnails, and the label model's softmax regression on OpenBLAS and libLBFGS.
// Errors come back as malloc'd strings the caller frees with dih_features_string_free.
// OpenCV itself lives in libFeatureKernels.so (Sources/FeatureKernels), opened at run time: loading OpenCV
// with the OpenBLAS and TBB it brings costs a process about 20 ms, which `dih_features_preload` moves off
// the start's path. Until it is loaded every call waits for it; where it cannot be loaded, calls fail with
// a message that says why.
#ifndef FEATURE_MATCH_H
#define FEATURE_MATCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dih_features dih_features;

/// ORB keypoints and descriptors of 8-bit interleaved pixels (`width`×`height`, rows one after another;
/// `channels` 1–4: grey, grey + alpha, RGB, RGBA), first turned grey (a weighted sum of the channels) and
/// scaled so the long side is `side` (down as `dih_resize_down` does, up bilinear); at most `max_features`,
/// strongest first. NULL with `*error` set on failure; an image without texture gives zero keypoints.
dih_features *dih_features_detect_pixels(const uint8_t *pixels, int width, int height, int channels, int side, int max_features,
                                         char **error);
int dih_features_count(const dih_features *features);
void dih_features_free(dih_features *features);

/// Matches the strongest `limit` keypoints of `a` against those of `b`: `*matches` gets the matches passing
/// the ratio test (one per keypoint of b), `*inliers` those a RANSAC similarity transform (reprojection error
/// ≤ `max_error` pixels) explains, `*scale` that transform's scale (b's pixels per a's pixel) and
/// `*overlapping` how many of a's keypoints it puts inside b. 0 on success (also when too few matches for a
/// fit: `*inliers` = 0).
int dih_features_match(const dih_features *a, const dih_features *b, int limit, double ratio, double max_error, int *matches,
                       int *inliers, double *scale, int *overlapping, char **error);

void dih_features_string_free(char *string);

/// The threads OpenBLAS computes a product on once libFeatureKernels.so is loaded (1: the calling thread
/// alone, as the load leaves it); -1 where the kernels or OpenBLAS's thread count cannot be had.
int dih_blas_threads(void);

/// Starts loading libFeatureKernels.so on a thread of its own and returns at once (the first call of any
/// function below loads it otherwise). Call it once libvips has opened its modules: a load holds the
/// dynamic loader's lock, which another thread's dlopen would wait for.
void dih_features_preload(void);

/// Scales 8-bit interleaved pixels (`channels` 1–4) from `width`×`height` down to `dst_width`×`dst_height`
/// (each at most the source's): an exact box average by the largest whole factor both sides share
/// (OpenCV's INTER_AREA fast path; up to factor − 1 edge rows and columns are left out), then bilinear for
/// the rest, which is then under 2. `dst` holds `dst_width`×`dst_height`×`channels` bytes. 0 on success, -2
/// where libFeatureKernels.so cannot be loaded, -1 on other failures.
int dih_resize_down(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dst_width, int dst_height);

/// The window of `dst_width`×`dst_height` at (`left`, `top`) of 8-bit interleaved pixels (`channels` 1–4)
/// scaled up by `scale` (at least 1) as libvips 8.14's resize with the linear kernel upsizes them
/// (`cvips_resize`): bilinear, pixel x of the scaled picture sampling the input at x / `scale` − 0.5,
/// borders repeated. Only the window is computed (a crop of a long, thin picture scaled up stays small).
/// The backbone's embeddings of small photos scaled up either way agree to a cosine of 0.9998 or more.
/// Returns as `dih_resize_down` does, and -2 too for a picture or window of 2^20 pixels a side or more
/// (OpenCV's fixed-point coordinates end near there).
int dih_resize_up(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dst_width, int dst_height, double scale,
                  int left, int top);

/// Softmax regression on OpenBLAS + libLBFGS, for the label model. Fits `classes` × `dims` weights and
/// `classes` biases to `n` rows of `x` (one after another) with labels `y` (0 ..< classes): the mean
/// cross-entropy, each example weighted by its class's `class_weights` entry (NULL: all 1), plus
/// `decay`·‖W‖², minimised by L-BFGS from zero for at most `max_iterations` iterations (`*iterations` gets how
/// many ran). 0 on success, -2 where libFeatureKernels.so cannot be loaded, -1 on other failures; `*error`
/// says why either way.
int dih_softmax_fit(const float *x, const int32_t *y, int n, int dims, int classes, const float *class_weights, double decay,
                    int max_iterations, float *weights, float *bias, int *iterations, char **error);

/// Class probabilities (`n` × `classes`) of `n` rows of `x` under weights and biases as `dih_softmax_fit`
/// makes them. 0 on success, -2 where libFeatureKernels.so cannot be loaded (`*error` says why).
int dih_softmax_probabilities(const float *x, int n, int dims, const float *weights, const float *bias, int classes,
                              float *probabilities, char **error);

#ifdef __cplusplus
}
#endif

#endif
