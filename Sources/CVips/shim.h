// Non-variadic wrappers over the libvips operations the hub uses. Swift cannot call variadic C
// functions or C macros, so every vips_* call with optional arguments gets one static inline
// function here. Nothing outside the Imaging module imports this.
#ifndef CVIPS_SHIM_H
#define CVIPS_SHIM_H
#include <vips/vips.h>
#include <lcms2.h>
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <unistd.h>
#endif

/// Keeps freed image buffers in the process instead of handing each back to the kernel. Every image
/// allocates and frees buffers of a few hundred KB to tens of MB at each step; past glibc's mmap
/// threshold each comes from a fresh mmap, and every page of it faults in zeroed again for the next image.
/// One malloc arena per core (glibc's default is eight per core), so the memory kept is not kept once per
/// thread. Measured on the shared photos: about +13% ingest throughput; peak RSS 338 MB without embedding
/// and 396 MB with it, where the defaults gave about 410 and 465 MB.
static inline void cvips_keep_freed_memory(void) {
#ifdef __GLIBC__
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, cores > 1 ? (int)cores : 1);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

static inline int cvips_init(const char *argv0) {
    cvips_keep_freed_memory();
    if (VIPS_INIT(argv0)) return -1;
    vips_block_untrusted_set(TRUE);
    // The hub processes each upload once: caching operations only costs memory.
    vips_cache_set_max(0);
    return 0;
}

/// Routes libvips' GLib warnings and messages to `fn` (called on vips worker threads).
static inline void cvips_set_log_handler(GLogFunc fn) {
    g_log_set_handler("VIPS", (GLogLevelFlags)(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_CRITICAL), fn, NULL);
    g_log_set_handler("GLib-GObject", (GLogLevelFlags)(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL), fn, NULL);
}

static inline void cvips_concurrency_set(int n) { vips_concurrency_set(n); }
static inline void cvips_unref(VipsImage *image) { if (image) g_object_unref(image); }
static inline void cvips_free(void *p) { g_free(p); }

/// Takes (and clears) the process-global error buffer.
static inline char *cvips_error_take(void) { return vips_error_buffer_copy(); }

/// Header-only open: pixels are decoded only when something computes them.
static inline VipsImage *cvips_open_buffer(const void *buf, size_t len, const char *options, VipsAccess access) {
    return vips_image_new_from_buffer(buf, len, options, "access", access, NULL);
}

static inline const char *cvips_loader_name(const void *buf, size_t len) {
    return vips_foreign_find_load_buffer(buf, len);
}

static inline int cvips_get_orientation(VipsImage *image) {
    int v = 1;
    if (vips_image_get_typeof(image, VIPS_META_ORIENTATION) && !vips_image_get_int(image, VIPS_META_ORIENTATION, &v)) return v;
    return 1;
}

static inline int cvips_has_field(VipsImage *image, const char *name) {
    return vips_image_get_typeof(image, name) != 0;
}

static inline int cvips_autorot(VipsImage *in, VipsImage **out) { return vips_autorot(in, out, NULL); }
static inline int cvips_rot(VipsImage *in, VipsImage **out, int quarter_turns) {
    VipsAngle a = quarter_turns == 1 ? VIPS_ANGLE_D90 : quarter_turns == 2 ? VIPS_ANGLE_D180 : quarter_turns == 3 ? VIPS_ANGLE_D270 : VIPS_ANGLE_D0;
    return vips_rot(in, out, a, NULL);
}

static inline int cvips_colourspace(VipsImage *in, VipsImage **out, VipsInterpretation space) {
    return vips_colourspace(in, out, space, NULL);
}

static inline double cvips_srgb_decode(double v) { return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4); }

/// True when the embedded ICC profile describes sRGB itself, so transforming would be an identity. Judged
/// by what the profile says (little CMS reads it), not by its name: an RGB matrix/TRC profile whose
/// colorants are sRGB's (D50-adapted, within 0.003) and whose tone curves follow sRGB's within 1%. Phones
/// and web tools write many such profiles (the 524-byte compact "c2", Apple's, the 3144-byte HP one), and a
/// transform through lcms costs more than the whole rest of normalisation on a 1024-pixel image.
static inline int cvips_icc_is_srgb(VipsImage *image) {
    const void *data = NULL;
    size_t length = 0;
    if (vips_image_get_blob(image, VIPS_META_ICC_NAME, &data, &length) || length < 132) return 0;
    cmsHPROFILE profile = cmsOpenProfileFromMem(data, (cmsUInt32Number)length);
    if (!profile) return 0;
    static const double colorants[3][3] = {{0.4361, 0.2225, 0.0139}, {0.3851, 0.7169, 0.0971}, {0.1431, 0.0606, 0.7141}};
    const cmsTagSignature colorantTags[3] = {cmsSigRedColorantTag, cmsSigGreenColorantTag, cmsSigBlueColorantTag};
    const cmsTagSignature curveTags[3] = {cmsSigRedTRCTag, cmsSigGreenTRCTag, cmsSigBlueTRCTag};
    int same = cmsGetColorSpace(profile) == cmsSigRgbData && cmsIsMatrixShaper(profile);
    for (int c = 0; same && c < 3; c++) {
        const cmsCIEXYZ *xyz = (const cmsCIEXYZ *)cmsReadTag(profile, colorantTags[c]);
        const cmsToneCurve *curve = (const cmsToneCurve *)cmsReadTag(profile, curveTags[c]);
        if (!xyz || !curve) { same = 0; break; }
        if (fabs(xyz->X - colorants[c][0]) > 0.003 || fabs(xyz->Y - colorants[c][1]) > 0.003 || fabs(xyz->Z - colorants[c][2]) > 0.003) same = 0;
        for (int i = 1; same && i < 10; i++) {
            double v = i / 10.0;
            if (fabs(cmsEvalToneCurveFloat(curve, (cmsFloat32Number)v) - cvips_srgb_decode(v)) > 0.01) same = 0;
        }
    }
    cmsCloseProfile(profile);
    return same;
}

/// Converts an image assumed sRGB into the colour space of a built-in (`srgb`, `p3`) or file profile,
/// attaching that profile: test fixtures use it to make photos as wide-gamut phones write them.
static inline int cvips_icc_from_srgb(VipsImage *in, VipsImage **out, const char *profile) {
    return vips_icc_transform(in, out, profile, "input_profile", "srgb", "embedded", FALSE, NULL);
}

static inline const void *cvips_icc_profile(VipsImage *image, size_t *length) {
    const void *data = NULL;
    if (!vips_image_get_typeof(image, VIPS_META_ICC_NAME) || vips_image_get_blob(image, VIPS_META_ICC_NAME, &data, length)) return NULL;
    return data;
}
static inline void cvips_set_icc_profile(VipsImage *image, const void *data, size_t length) {
    vips_image_set_blob_copy(image, VIPS_META_ICC_NAME, data, length);
}

static inline int cvips_icc_to_srgb(VipsImage *in, VipsImage **out) {
    return vips_icc_transform(in, out, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_PERCEPTUAL, NULL);
}

static inline int cvips_cast_uchar(VipsImage *in, VipsImage **out) { return vips_cast(in, out, VIPS_FORMAT_UCHAR, NULL); }

static inline int cvips_flatten_white(VipsImage *in, VipsImage **out) {
    double white[3] = {255.0, 255.0, 255.0};
    VipsArrayDouble *bg = vips_array_double_new(white, 3);
    int r = vips_flatten(in, out, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return r;
}

static inline int cvips_extract_band(VipsImage *in, VipsImage **out, int band, int n) {
    return vips_extract_band(in, out, band, "n", n, NULL);
}

static inline VipsImage *cvips_copy_memory(VipsImage *in) { return vips_image_copy_memory(in); }

static inline int cvips_jpegsave(VipsImage *in, void **buf, size_t *len, int quality) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, "strip", TRUE, NULL);
}
/// Keeps metadata (EXIF orientation, GPS): only test fixtures use it, to build realistic phone files.
static inline int cvips_jpegsave_keep(VipsImage *in, void **buf, size_t *len, int quality) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, NULL);
}
static inline int cvips_pngsave(VipsImage *in, void **buf, size_t *len) { return vips_pngsave_buffer(in, buf, len, "strip", TRUE, NULL); }
static inline int cvips_webpsave(VipsImage *in, void **buf, size_t *len, int quality) { return vips_webpsave_buffer(in, buf, len, "Q", quality, "strip", TRUE, NULL); }
static inline int cvips_heifsave(VipsImage *in, void **buf, size_t *len, int quality) {
    return vips_heifsave_buffer(in, buf, len, "Q", quality, "compression", VIPS_FOREIGN_HEIF_COMPRESSION_HEVC, "strip", TRUE, NULL);
}
static inline int cvips_gifsave(VipsImage *in, void **buf, size_t *len) { return vips_gifsave_buffer(in, buf, len, NULL); }
static inline int cvips_tiffsave(VipsImage *in, void **buf, size_t *len) { return vips_tiffsave_buffer(in, buf, len, NULL); }

static inline int cvips_gaussnoise(VipsImage **out, int width, int height, double mean, double sigma, int seed) {
    return vips_gaussnoise(out, width, height, "mean", mean, "sigma", sigma, "seed", seed, NULL);
}
static inline int cvips_resize(VipsImage *in, VipsImage **out, double hscale, double vscale) {
    // Linear: at these ratios (after shrink-on-load) it looks as good as lanczos3 and costs a third.
    return vips_resize(in, out, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_LINEAR, NULL);
}
/// Box-filter shrink by integer-ish factors: the cheap, alias-tolerant downscale for measures and hashes.
static inline int cvips_shrink(VipsImage *in, VipsImage **out, double hshrink, double vshrink) {
    return vips_shrink(in, out, hshrink, vshrink, NULL);
}
static inline int cvips_bandjoin3(VipsImage *a, VipsImage *b, VipsImage *c, VipsImage **out) {
    VipsImage *ab = NULL;
    if (vips_bandjoin2(a, b, &ab, NULL)) return -1;
    int r = vips_bandjoin2(ab, c, out, NULL);
    g_object_unref(ab);
    return r;
}
static inline int cvips_add(VipsImage *a, VipsImage *b, VipsImage **out) { return vips_add(a, b, out, NULL); }
static inline int cvips_linear1(VipsImage *in, VipsImage **out, double a, double b) { return vips_linear1(in, out, a, b, NULL); }
static inline int cvips_gaussblur(VipsImage *in, VipsImage **out, double sigma) { return vips_gaussblur(in, out, sigma, NULL); }
static inline int cvips_crop(VipsImage *in, VipsImage **out, int left, int top, int width, int height) {
    return vips_crop(in, out, left, top, width, height, NULL);
}
static inline int cvips_copy(VipsImage *in, VipsImage **out) { return vips_copy(in, out, NULL); }
static inline void cvips_set_int(VipsImage *image, const char *name, int value) { vips_image_set_int(image, name, value); }
static inline VipsImage *cvips_new_from_memory_copy(const void *data, size_t len, int width, int height, int bands) {
    return vips_image_new_from_memory_copy(data, len, width, height, bands, VIPS_FORMAT_UCHAR);
}
static inline void *cvips_write_to_memory(VipsImage *in, size_t *len) { return vips_image_write_to_memory(in, len); }

#endif
