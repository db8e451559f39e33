// FeatureMatch.h's functions on OpenCV (as dihf_*), built as libFeatureKernels.so: the FeatureMatch bridge
// opens it on a thread of its own while the process starts (see dih_features_preload).
#include "FeatureKernels.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

struct dih_features {
    std::vector<cv::KeyPoint> keypoints;
    cv::Mat descriptors;
    int width = 0, height = 0;
};

template <typename F> static bool guarded(char **error, F body) {
    try {
        body();
        return true;
    } catch (const std::exception &e) {
        if (error) *error = strdup(e.what());
    } catch (...) {
        if (error) *error = strdup("unknown OpenCV error");
    }
    return false;
}

/// OpenCV runs each call on the calling thread: the hub already runs one job per worker thread, at the
/// processing threads' priority, and a pool of OpenCV's own would run at request handling's.
static const bool single_threaded = [] {
    cv::setNumThreads(0);
    return true;
}();

static void shrink(const cv::Mat &in, cv::Mat &out, cv::Size size);

/// ORB keypoints and descriptors of a grey image, strongest first.
static dih_features *detect(const cv::Mat &image, int max_features) {
    auto orb = cv::ORB::create(max_features);
    auto features = new dih_features();
    features->width = image.cols;
    features->height = image.rows;
    try {
        std::vector<cv::KeyPoint> keypoints;
        cv::Mat descriptors;
        orb->detectAndCompute(image, cv::noArray(), keypoints, descriptors);
        // Strongest first, so that a match can look at the strongest few alone (`limit`).
        std::vector<int> order(keypoints.size());
        for (size_t i = 0; i < order.size(); i++) order[i] = static_cast<int>(i);
        std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return keypoints[x].response > keypoints[y].response; });
        features->keypoints.reserve(order.size());
        features->descriptors.create(descriptors.rows, descriptors.cols, descriptors.type());
        for (size_t i = 0; i < order.size(); i++) {
            features->keypoints.push_back(keypoints[order[i]]);
            descriptors.row(order[i]).copyTo(features->descriptors.row(static_cast<int>(i)));
        }
    } catch (...) {
        delete features;
        throw;
    }
    return features;
}

extern "C" dih_features *dihf_features_detect_pixels(const uint8_t *pixels, int width, int height, int channels, int side,
                                                     int max_features, char **error) {
    (void)single_threaded;
    dih_features *out = nullptr;
    guarded(error, [&] {
        if (width <= 0 || height <= 0 || side <= 0 || max_features <= 0 || channels < 1 || channels > 4) {
            throw std::invalid_argument("empty image");
        }
        const cv::Mat in(height, width, CV_8UC(channels), const_cast<uint8_t *>(pixels));
        // Grey first (one band to scale), as a weighted sum of the 8-bit channels: ORB needs contrast, not
        // luminance in linear light.
        cv::Mat grey;
        switch (channels) {
        case 1: grey = in; break;
        case 2: cv::extractChannel(in, grey, 0); break;
        case 3: cv::cvtColor(in, grey, cv::COLOR_RGB2GRAY); break;
        default: cv::cvtColor(in, grey, cv::COLOR_RGBA2GRAY); break;
        }
        const int longSide = std::max(width, height);
        const cv::Size size(std::max(1, width * side / longSide), std::max(1, height * side / longSide));
        cv::Mat scaled = grey;
        if (longSide > side) {
            shrink(grey, scaled, size);  // as thumbnails are made
        } else if (size != grey.size()) {
            cv::resize(grey, scaled, size, 0, 0, cv::INTER_LINEAR);
        }
        out = detect(scaled, max_features);
    });
    return out;
}

extern "C" int dihf_features_count(const dih_features *features) { return static_cast<int>(features->keypoints.size()); }

extern "C" void dihf_features_free(dih_features *features) { delete features; }

/// The two nearest of `nb` descriptors `t` to each of `na` descriptors `q` (`words` 64-bit words each) by
/// Hamming distance, nearest first, ties to the lower index: `best` gets index, distance, index, distance
/// for each of `q` (index -1 where `t` has too few). Plain loops and builtins only, so that it can be
/// compiled for the POPCNT instruction below.
static inline __attribute__((always_inline)) void scan(const uint64_t *q, int na, const uint64_t *t, int nb, size_t words,
                                                       int *best) {
    for (int i = 0; i < na; i++) {
        const uint64_t *qi = q + static_cast<size_t>(i) * words;
        int d0 = INT_MAX, d1 = INT_MAX, j0 = -1, j1 = -1;
        for (int j = 0; j < nb; j++) {
            const uint64_t *tj = t + static_cast<size_t>(j) * words;
            int d = 0;
            for (size_t w = 0; w < words; w++) d += __builtin_popcountll(qi[w] ^ tj[w]);
            if (d < d1) {
                if (d < d0) {
                    d1 = d0, j1 = j0;
                    d0 = d, j0 = j;
                } else {
                    d1 = d, j1 = j;
                }
            }
        }
        best[4 * i] = j0, best[4 * i + 1] = d0, best[4 * i + 2] = j1, best[4 * i + 3] = d1;
    }
}

static void scan_plain(const uint64_t *q, int na, const uint64_t *t, int nb, size_t words, int *best) {
    scan(q, na, t, nb, words, best);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("popcnt"))) static void scan_popcnt(const uint64_t *q, int na, const uint64_t *t, int nb, size_t words,
                                                          int *best) {
    scan(q, na, t, nb, words, best);
}
static bool has_popcnt() {
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("popcnt") != 0;
    }();
    return has;
}
#else
// Elsewhere the baseline instruction set counts bits in one instruction already (AArch64: CNT).
static void (*const scan_popcnt)(const uint64_t *, int, const uint64_t *, int, size_t, int *) = scan_plain;
static bool has_popcnt() { return true; }
#endif

/// For each of a's first `na` descriptors, the two nearest of b's first `nb` by Hamming distance, nearest
/// first (ties to the lower index): what `cv::BFMatcher(NORM_HAMMING).knnMatch(..., 2)` gives, in a third
/// to a half of its time on ORB's 32-byte descriptors (it calls a distance function per pair; here each
/// distance is four 64-bit popcounts, with the POPCNT instruction where the CPU has it).
static void nearest_two(const cv::Mat &a, int na, const cv::Mat &b, int nb, std::vector<std::vector<cv::DMatch>> &out) {
    out.assign(na, {});
    const size_t bytes = a.cols * a.elemSize();
    if (a.type() != CV_8U || b.type() != CV_8U || b.cols != a.cols || bytes % 8 != 0) {
        cv::BFMatcher(cv::NORM_HAMMING).knnMatch(a.rowRange(0, na), b.rowRange(0, nb), out, 2);
        return;
    }
    const size_t words = bytes / 8;
    // Both sides as 64-bit words, row after row (a Mat's rows need not be 8-byte aligned).
    std::vector<uint64_t> q(static_cast<size_t>(na) * words), t(static_cast<size_t>(nb) * words);
    for (int i = 0; i < na; i++) std::memcpy(&q[i * words], a.ptr(i), bytes);
    for (int j = 0; j < nb; j++) std::memcpy(&t[j * words], b.ptr(j), bytes);
    std::vector<int> best(4 * static_cast<size_t>(na));
    (has_popcnt() ? scan_popcnt : scan_plain)(q.data(), na, t.data(), nb, words, best.data());
    for (int i = 0; i < na; i++) {
        for (int k = 0; k < 2; k++) {
            const int j = best[4 * i + 2 * k], d = best[4 * i + 2 * k + 1];
            if (j >= 0) out[i].emplace_back(i, j, static_cast<float>(d));
        }
    }
}

extern "C" int dihf_features_match(const dih_features *a, const dih_features *b, int limit, double ratio, double max_error,
                                  int *matches, int *inliers, double *scale, int *overlapping, char **error) {
    *matches = 0;
    *inliers = 0;
    *scale = 0;
    *overlapping = 0;
    bool ok = guarded(error, [&] {
        if (a->descriptors.empty() || b->descriptors.empty() || b->keypoints.size() < 2) return;
        // The strongest `limit` keypoints of each side (keypoints are stored strongest first).
        const int na = std::min(limit, a->descriptors.rows), nb = std::min(limit, b->descriptors.rows);
        if (nb < 2) return;
        std::vector<std::vector<cv::DMatch>> knn;
        nearest_two(a->descriptors, na, b->descriptors, nb, knn);
        // Lowe's ratio test, then one match per keypoint of b (the closest): on a flat background many
        // keypoints of a can pick the same one of b, and a transform squeezing them all onto it would
        // count them as inliers.
        std::vector<const cv::DMatch *> best(nb, nullptr);
        for (const auto &pair : knn) {
            if (pair.size() == 2 && pair[0].distance < ratio * pair[1].distance) {
                const cv::DMatch *&slot = best[pair[0].trainIdx];
                if (!slot || pair[0].distance < slot->distance) slot = &pair[0];
            }
        }
        std::vector<cv::Point2f> from, to;
        for (const cv::DMatch *m : best) {
            if (!m) continue;
            from.push_back(a->keypoints[m->queryIdx].pt);
            to.push_back(b->keypoints[m->trainIdx].pt);
        }
        *matches = static_cast<int>(from.size());
        if (from.size() < 3) return;
        std::vector<uchar> mask;
        cv::Mat transform = cv::estimateAffinePartial2D(from, to, mask, cv::RANSAC, max_error, 2000, 0.99, 10);
        if (transform.empty()) return;
        int count = 0;
        for (uchar m : mask) count += m ? 1 : 0;
        *inliers = count;
        double a00 = transform.at<double>(0, 0), a10 = transform.at<double>(1, 0);
        *scale = std::sqrt(a00 * a00 + a10 * a10);
        // How many of a's keypoints the transform puts inside b: what the two pictures could share.
        std::vector<cv::Point2f> points, moved;
        for (int i = 0; i < na; i++) points.push_back(a->keypoints[i].pt);
        cv::transform(points, moved, transform);
        int inside = 0;
        for (const auto &p : moved) inside += (p.x >= 0 && p.y >= 0 && p.x < b->width && p.y < b->height) ? 1 : 0;
        *overlapping = inside;
    });
    return ok ? 0 : 1;
}

/// `in` scaled down to `size` (each side at most the source's): an exact box average by the largest whole
/// factor both sides share (OpenCV's INTER_AREA fast path), then bilinear for the rest, which is under 2.
static void shrink(const cv::Mat &in, cv::Mat &out, cv::Size size) {
    const int factor = std::min(in.cols / size.width, in.rows / size.height);
    cv::Mat boxed = in;
    if (factor >= 2) {
        const int w = in.cols / factor, h = in.rows / factor;
        cv::resize(in(cv::Rect(0, 0, w * factor, h * factor)), boxed, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    }
    if (boxed.size() == size) {
        boxed.copyTo(out);
    } else {
        cv::resize(boxed, out, size, 0, 0, cv::INTER_LINEAR);
    }
}

extern "C" int dihf_resize_down(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dst_width, int dst_height) {
    if (!src || !dst || channels < 1 || channels > 4 || dst_width < 1 || dst_height < 1 || dst_width > width || dst_height > height) return -1;
    (void)single_threaded;
    try {
        const cv::Mat in(height, width, CV_8UC(channels), const_cast<uint8_t *>(src));
        cv::Mat out(dst_height, dst_width, CV_8UC(channels), dst);
        shrink(in, out, cv::Size(dst_width, dst_height));
        return out.data == dst ? 0 : -1;
    } catch (...) {
        return -1;
    }
}

extern "C" int dihf_resize_up(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dst_width, int dst_height,
                              double scale, int left, int top) {
    if (!src || !dst || channels < 1 || channels > 4 || width < 1 || height < 1 || dst_width < 1 || dst_height < 1 || !(scale >= 1) ||
        left < 0 || top < 0)
        return -1;
    // warpAffine maps coordinates in fixed point: beyond about 2^21 pixels they would saturate.
    if (std::max(width, height) >= (1 << 20) || (std::max(dst_width + left, dst_height + top)) >= (1 << 20)) return -2;
    (void)single_threaded;
    try {
        const cv::Mat in(height, width, CV_8UC(channels), const_cast<uint8_t *>(src));
        cv::Mat out(dst_height, dst_width, CV_8UC(channels), dst);
        // Output pixel x of the scaled picture samples the input at x / scale - 0.5, bilinear (libvips 8.14's
        // vips_resize with the linear kernel: an affine with the input displaced by half a pixel); edges repeat
        // the border pixels (its extend = copy). Only the window at (left, top) is computed.
        const cv::Mat map = (cv::Mat_<double>(2, 3) << 1 / scale, 0, left / scale - 0.5, 0, 1 / scale, top / scale - 0.5);
        cv::warpAffine(in, out, map, out.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
        return out.data == dst ? 0 : -1;
    } catch (...) {
        return -1;
    }
}
