#include "FeatureMatch.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

struct dih_features {
    std::vector<cv::KeyPoint> keypoints;
    cv::Mat descriptors;
};

static char *copy(const char *s) {
    char *out = static_cast<char *>(std::malloc(std::strlen(s) + 1));
    if (out) std::strcpy(out, s);
    return out;
}

template <typename F> static bool guarded(char **error, F body) {
    try {
        body();
        return true;
    } catch (const std::exception &e) {
        if (error) *error = copy(e.what());
    } catch (...) {
        if (error) *error = copy("unknown OpenCV error");
    }
    return false;
}

/// OpenCV runs each call on the calling thread: the hub already runs one job per worker thread, at the
/// processing threads' priority, and a pool of OpenCV's own would run at request handling's.
static const bool single_threaded = [] {
    cv::setNumThreads(0);
    return true;
}();

extern "C" dih_features *dih_features_detect(const uint8_t *grey, int width, int height, int max_features, char **error) {
    (void)single_threaded;
    dih_features *out = nullptr;
    guarded(error, [&] {
        if (width <= 0 || height <= 0 || max_features <= 0) throw std::invalid_argument("empty image");
        // A view of the caller's pixels (no copy); ORB reads it only during the call.
        cv::Mat image(height, width, CV_8UC1, const_cast<uint8_t *>(grey));
        auto orb = cv::ORB::create(max_features);
        auto features = new dih_features();
        try {
            orb->detectAndCompute(image, cv::noArray(), features->keypoints, features->descriptors);
        } catch (...) {
            delete features;
            throw;
        }
        out = features;
    });
    return out;
}

extern "C" int dih_features_count(const dih_features *features) { return static_cast<int>(features->keypoints.size()); }

extern "C" void dih_features_free(dih_features *features) { delete features; }

extern "C" int dih_features_match(const dih_features *a, const dih_features *b, double ratio, double max_error,
                                  int *matches, int *inliers, double *scale, char **error) {
    *matches = 0;
    *inliers = 0;
    *scale = 0;
    bool ok = guarded(error, [&] {
        if (a->descriptors.empty() || b->descriptors.empty() || b->keypoints.size() < 2) return;
        cv::BFMatcher matcher(cv::NORM_HAMMING);
        std::vector<std::vector<cv::DMatch>> knn;
        matcher.knnMatch(a->descriptors, b->descriptors, knn, 2);
        std::vector<cv::Point2f> from, to;
        for (const auto &pair : knn) {
            if (pair.size() == 2 && pair[0].distance < ratio * pair[1].distance) {
                from.push_back(a->keypoints[pair[0].queryIdx].pt);
                to.push_back(b->keypoints[pair[0].trainIdx].pt);
            }
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
    });
    return ok ? 0 : 1;
}

extern "C" void dih_features_string_free(char *string) { std::free(string); }
