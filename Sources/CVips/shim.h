// Non-variadic wrappers over the libvips operations the hub uses. Swift cannot call variadic C
// functions or C macros, so every vips_* call with optional arguments gets one static inline
// function here. Nothing outside the Imaging module imports this.
#ifndef CVIPS_SHIM_H
#define CVIPS_SHIM_H
// No _GNU_SOURCE here: it changes glibc's struct definitions (fd_set and others), and a clean build then
// fails where this module and Swift's Glibc module both define them.
#include <vips/vips.h>
#include <lcms2.h>
#include <stdio.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>
#include <math.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
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

/// glibc's `Dl_info` and `dladdr`, which <dlfcn.h> declares only under _GNU_SOURCE.
typedef struct {
    const char *dli_fname;
    void *dli_fbase;
    const char *dli_sname;
    void *dli_saddr;
} cvips_dl_info;
extern int cvips_dladdr(const void *address, cvips_dl_info *info) __asm__("dladdr");

/// libvips opens every module in its module directory at start: ImageMagick, poppler, OpenSlide, JPEG XL and
/// HEIF, with their libraries (about 20 of the 27 ms `vips_init` takes here, and more code reachable from an
/// upload). The hub reads HEIC alone among them. Unless `VIPSHOME` is set already, libvips is pointed at a
/// directory of the user's own (`imagehub/vips-X.Y` in the user's cache directory: `XDG_CACHE_HOME`, else
/// `~/.cache`, as for OpenVINO's compiled models) whose module directory holds only a link to the system's
/// HEIF module; where that cannot be made, libvips starts as it would have.
static inline void cvips_only_heif_module(void) {
    if (getenv("VIPSHOME")) return;
    const char *cache = g_get_user_cache_dir();
    cvips_dl_info info;
    if (!cache || cache[0] != '/' || !cvips_dladdr((void *)vips_init, &info) || !info.dli_fname) return;
    char *libdir = g_path_get_dirname(info.dli_fname);                       // e.g. /usr/lib/x86_64-linux-gnu
    char *base = g_path_get_basename(libdir);
    char version[32];
    snprintf(version, sizeof(version), "%d.%d", vips_version(0), vips_version(1));
    char *system_module = g_strdup_printf("%s/vips-modules-%s/vips-heif.so", libdir, version);
    char *root = g_strdup_printf("%s/imagehub/vips-%s", cache, version);
    // libvips finds its modules under VIPSHOME's `lib` or, as Debian builds it, under the name of its own
    // library directory (`x86_64-linux-gnu`): both are made.
    int ready = g_file_test(system_module, G_FILE_TEST_EXISTS);
    const char *layouts[2] = {base, "lib"};
    for (int i = 0; i < 2 && ready; i++) {
        char *modules = g_strdup_printf("%s/%s/vips-modules-%s", root, layouts[i], version);
        char *link = g_strdup_printf("%s/vips-heif.so", modules);
        ready = g_mkdir_with_parents(modules, 0700) == 0 && (symlink(system_module, link) == 0 || errno == EEXIST);
        char *target = ready ? g_file_read_link(link, NULL) : NULL;
        ready = target && strcmp(target, system_module) == 0;
        g_free(target); g_free(link); g_free(modules);
    }
    if (ready) setenv("VIPSHOME", root, 0);
    g_free(root); g_free(system_module); g_free(base); g_free(libdir);
}

static inline int cvips_init(const char *argv0) {
    cvips_keep_freed_memory();
    cvips_only_heif_module();
    if (VIPS_INIT(argv0)) return -1;
    vips_block_untrusted_set(TRUE);
    // The hub processes each upload once: caching operations only costs memory.
    vips_cache_set_max(0);
    // No run-time SIMD code generation (liborc): Debian's orc 0.4.33 crashed a worker thread once under
    // the full test load (a known class of orc races); it buys 0-10% of ingest throughput here.
    vips_vector_set_enabled(FALSE);
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
static inline int cvips_icc_data_is_srgb(const void *data, size_t length) {
    if (!data || length < 132) return 0;
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

/// `in` as an image held in memory: itself (another reference) when its pixels already are, else computed
/// into a new memory image on the calling thread, keeping its metadata. libvips's own
/// `vips_image_copy_memory` runs a thread pool even at concurrency 1: the caller sleeps while a pool thread
/// computes, and they hand over every few scanlines. On this 2-core VM each hand-over is a cross-core
/// wake-up, and for a photo of a few hundred pixels those cost more than the pixels: decoding and
/// thumbnailing 73 small photos ran at 255 img/s on two threads through the pool and 325 img/s here.
/// The image is asked for in strips from top to bottom, as libvips's sinks do, so sequential-access
/// loaders are read in order and every step holds a strip's worth of pixels, not the whole image.
static inline VipsImage *cvips_memory_image(VipsImage *in) {
    if (in->data) return (VipsImage *)g_object_ref(in);
    VipsImage *out = vips_image_new_memory();
    if (vips_image_pipelinev(out, VIPS_DEMAND_STYLE_THINSTRIP, in, NULL) || vips_image_write_prepare(out)) {
        g_object_unref(out);
        return NULL;
    }
    VipsRect all = {0, 0, in->Xsize, in->Ysize};
    VipsRegion *from = vips_region_new(in);
    VipsRegion *to = vips_region_new(out);
    int failed = !from || !to || vips_region_image(to, &all);
    const int strip = 64;
    for (int top = 0; !failed && top < in->Ysize; top += strip) {
        VipsRect rows = {0, top, in->Xsize, VIPS_MIN(strip, in->Ysize - top)};
        failed = vips_region_prepare_to(from, to, &rows, 0, top);
    }
    if (from) g_object_unref(from);
    if (to) g_object_unref(to);
    if (failed) {
        g_object_unref(out);
        return NULL;
    }
    return out;
}


struct cvips_jpeg_error {
    struct jpeg_error_mgr manager;
    jmp_buf escape;
};

static inline void cvips_jpeg_error_exit(j_common_ptr cinfo) {
    struct cvips_jpeg_error *error = (struct cvips_jpeg_error *)cinfo->err;
    char message[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, message);
    vips_error("jpegencode", "%s", message);
    longjmp(error->escape, 1);
}

/// Where `cvips_jpeg_encode` writes: a GLib buffer grown by doubling. Unlike `jpeg_mem_dest`, whose
/// caller's pointer is only brought up to date at the end, `data` always holds the live buffer, so an
/// error half-way frees exactly that.
struct cvips_jpeg_destination {
    struct jpeg_destination_mgr manager;
    unsigned char *data;
    size_t capacity;
};

static inline void cvips_jpeg_init_destination(j_compress_ptr cinfo) { (void)cinfo; }
static inline void cvips_jpeg_term_destination(j_compress_ptr cinfo) { (void)cinfo; }

static inline boolean cvips_jpeg_grow_destination(j_compress_ptr cinfo) {
    struct cvips_jpeg_destination *d = (struct cvips_jpeg_destination *)cinfo->dest;
    // Called when the whole buffer is full.
    size_t used = d->capacity, capacity = 2 * d->capacity;
    unsigned char *grown = g_try_realloc(d->data, capacity);
    if (!grown) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    d->data = grown;
    d->capacity = capacity;
    d->manager.next_output_byte = grown + used;
    d->manager.free_in_buffer = capacity - used;
    return TRUE;
}

/// Encodes an 8-bit, 1- or 3-band image as a baseline JPEG with libjpeg (the same library and the same
/// settings as libvips 8.14's `jpegsave`: quality tables scaled to `quality`, 4:2:0 chroma below quality 90
/// and none from 90, standard Huffman tables), writing no metadata at all, not even a JFIF header. It runs
/// on the calling thread, from the image's memory: libvips's saver streams through a thread pool and a
/// write-behind thread, whose hand-overs cost more than the encoding for a photo of a few hundred pixels
/// (73 small photos, 2 threads: 325 img/s through `jpegsave`, 435 img/s here). Returns 0 with a buffer to
/// free with `g_free`, or -1 with the libvips error set.
static inline int cvips_jpeg_encode(VipsImage *in, void **buf, size_t *len, int quality) {
    if (in->BandFmt != VIPS_FORMAT_UCHAR || (in->Bands != 1 && in->Bands != 3)) {
        vips_error("jpegencode", "needs 8-bit samples with 1 or 3 bands");
        return -1;
    }
    VipsImage *memory = cvips_memory_image(in);
    if (!memory) return -1;
    // On the heap, and its pointer never changes after `setjmp`: the error path reads it after a longjmp.
    struct cvips_jpeg_destination *destination = g_new0(struct cvips_jpeg_destination, 1);
    destination->capacity = 65536;
    destination->data = g_malloc(destination->capacity);
    destination->manager.init_destination = cvips_jpeg_init_destination;
    destination->manager.empty_output_buffer = cvips_jpeg_grow_destination;
    destination->manager.term_destination = cvips_jpeg_term_destination;
    destination->manager.next_output_byte = destination->data;
    destination->manager.free_in_buffer = destination->capacity;
    struct jpeg_compress_struct cinfo;
    struct cvips_jpeg_error error;
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = cvips_jpeg_error_exit;
    if (setjmp(error.escape)) {
        jpeg_destroy_compress(&cinfo);
        g_free(destination->data);
        g_free(destination);
        g_object_unref(memory);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    cinfo.dest = &destination->manager;
    cinfo.image_width = (JDIMENSION)memory->Xsize;
    cinfo.image_height = (JDIMENSION)memory->Ysize;
    cinfo.input_components = memory->Bands;
    cinfo.in_color_space = memory->Bands == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (quality >= 90) {
        for (int c = 0; c < cinfo.num_components; c++) cinfo.comp_info[c].h_samp_factor = cinfo.comp_info[c].v_samp_factor = 1;
    }
    // No APP0 either, as libvips's `strip`: the file is SOI, tables, frame, scan, EOI.
    cinfo.write_JFIF_header = FALSE;
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = VIPS_IMAGE_SIZEOF_LINE(memory);
    VipsPel *base = memory->data;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = base + (size_t)cinfo.next_scanline * stride;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    *len = destination->capacity - destination->manager.free_in_buffer;
    *buf = destination->data;
    jpeg_destroy_compress(&cinfo);
    g_free(destination);
    g_object_unref(memory);
    return 0;
}

/// Metadata-free JPEG: libjpeg on the calling thread where it can (see `cvips_jpeg_encode`), libvips's
/// saver for other sample formats and band counts.
static inline int cvips_jpegsave(VipsImage *in, void **buf, size_t *len, int quality) {
    if (in->BandFmt == VIPS_FORMAT_UCHAR && (in->Bands == 1 || in->Bands == 3)) return cvips_jpeg_encode(in, buf, len, quality);
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, "strip", TRUE, NULL);
}
/// Progressive, metadata-free: test fixtures.
static inline int cvips_jpegsave_progressive(VipsImage *in, void **buf, size_t *len, int quality) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, "interlace", TRUE, "strip", TRUE, NULL);
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
/// Reduces by `hshrink` × `vshrink` with a linear kernel widened to the factor (an anti-aliasing filter).
static inline int cvips_reduce(VipsImage *in, VipsImage **out, double hshrink, double vshrink) {
    return vips_reduce(in, out, hshrink, vshrink, "kernel", VIPS_KERNEL_LINEAR, NULL);
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
/// The pixels of `in` when they sit in memory (packed rows), else NULL.
static inline unsigned char *cvips_pixels(VipsImage *in) { return in->data; }
/// A new image in memory with the fields and metadata of `like` (8-bit, its band count, its EXIF
/// orientation and profile) at `width` × `height`, its pixels allocated and not yet written.
static inline VipsImage *cvips_new_uchar_memory(VipsImage *like, int width, int height, int bands) {
    VipsImage *out = vips_image_new_memory();
    if (like->BandFmt != VIPS_FORMAT_UCHAR || like->Bands != bands || vips_image_pipelinev(out, VIPS_DEMAND_STYLE_THINSTRIP, like, NULL)) {
        g_object_unref(out);
        return NULL;
    }
    out->Xsize = width;
    out->Ysize = height;
    if (vips_image_write_prepare(out)) {
        g_object_unref(out);
        return NULL;
    }
    return out;
}

/// libvips's own sRGB profile, the one `cvips_icc_to_srgb` converts to (unref with `cvips_blob_unref`).
static inline VipsBlob *cvips_srgb_profile(void) {
    VipsBlob *blob = NULL;
    return vips_profile_load("srgb", &blob, NULL) ? NULL : blob;
}
static inline const void *cvips_blob_data(VipsBlob *blob, size_t *length) { return vips_blob_get(blob, length); }
static inline void cvips_blob_unref(VipsBlob *blob) { vips_area_unref(VIPS_AREA(blob)); }

/// The transform `cvips_icc_to_srgb` builds for 8-bit RGB pixels under the RGB profile `data`: into
/// `srgb` (libvips's profile), perceptual, without lcms's one-pixel cache (libvips's flags), so that
/// threads may share it. NULL when `data` is not an RGB profile lcms can open and transform.
static inline cmsHTRANSFORM cvips_rgb_to_srgb_transform(const void *data, size_t length, const void *srgb, size_t srgb_length) {
    cmsHPROFILE in = cmsOpenProfileFromMem(data, (cmsUInt32Number)length);
    cmsHPROFILE out = cmsOpenProfileFromMem(srgb, (cmsUInt32Number)srgb_length);
    cmsHTRANSFORM transform = NULL;
    // libvips turns down an embedded profile that cannot be read perceptually (and leaves the pixels as they
    // are): those go to libvips.
    if (in && out && cmsGetColorSpace(in) == cmsSigRgbData && cmsGetColorSpace(out) == cmsSigRgbData &&
        cmsIsIntentSupported(in, INTENT_PERCEPTUAL, LCMS_USED_AS_INPUT))
        transform = cmsCreateTransform(in, TYPE_RGB_8, out, TYPE_RGB_8, INTENT_PERCEPTUAL, cmsFLAGS_NOCACHE);
    if (in) cmsCloseProfile(in);
    if (out) cmsCloseProfile(out);
    return transform;
}
static inline void cvips_transform_free(cmsHTRANSFORM transform) { cmsDeleteTransform(transform); }

/// `in`'s pixels (8-bit, three bands, in memory) through `transform`, on the calling thread, into a new
/// image in memory with `in`'s fields and metadata and the profile `srgb` attached, as libvips's
/// `icc_transform` attaches it. NULL when `in` is not such an image.
static inline VipsImage *cvips_apply_rgb_transform(VipsImage *in, cmsHTRANSFORM transform, const void *srgb, size_t srgb_length) {
    if (!in->data || in->BandFmt != VIPS_FORMAT_UCHAR || in->Bands != 3) return NULL;
    VipsImage *out = cvips_new_uchar_memory(in, in->Xsize, in->Ysize, 3);
    if (!out) return NULL;
    size_t row = (size_t)in->Xsize * 3;
    for (int y = 0; y < in->Ysize; y++)
        cmsDoTransform(transform, in->data + row * y, out->data + row * y, (cmsUInt32Number)in->Xsize);
    out->Type = VIPS_INTERPRETATION_sRGB;
    vips_image_set_blob_copy(out, VIPS_META_ICC_NAME, srgb, srgb_length);
    return out;
}
/// The pixels of `in` as one packed buffer (free with `g_free`), computed on the calling thread.
static inline void *cvips_write_to_memory(VipsImage *in, size_t *len) {
    VipsImage *memory = cvips_memory_image(in);
    if (!memory) return NULL;
    size_t size = VIPS_IMAGE_SIZEOF_IMAGE(memory);
    void *data = g_memdup2(vips_image_get_data(memory), size);
    g_object_unref(memory);
    *len = size;
    return data;
}


/// Decoding a JPEG straight into memory with libjpeg, without building a libvips pipeline: for a 512-pixel
/// photo the pipeline's operations, regions and buffers cost as much as the pixels. The IDCT scales by 1/8,
/// 1/4, 1/2 or not at all, as libvips's shrink-on-load does: libjpeg-turbo also offers 3/8, 5/8, …, but
/// only in plain C (`jpeg_idct_3x3`), and on the phone photos a 3/8 decode took 29.8 ms against 26.7 ms at
/// 1/2 (the entropy decoding, the same at any scale, is most of it).
/// Strictness as libvips's `fail_on`: truncation always fails; with `fail_on_warning` so does any libjpeg
/// warning (corrupt entropy data), otherwise a hundred warnings do.
struct cvips_jpeg_decode_error {
    struct jpeg_error_mgr manager;
    jmp_buf escape;
    int fail_on_warning;
    char message[JMSG_LENGTH_MAX + 8];
    char first_warning[JMSG_LENGTH_MAX];
};

static inline void cvips_jpeg_decode_fail(j_common_ptr cinfo) {
    struct cvips_jpeg_decode_error *error = (struct cvips_jpeg_decode_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(error->message, sizeof(error->message), "jpeg: %s", text);
    longjmp(error->escape, 1);
}

/// Warnings: the data ran out (truncation, told in the words libvips uses for it, "Premature end of input
/// file", unless corrupt data was met before: then that is the fault), or any other when strict, or the
/// hundredth.
static inline void cvips_jpeg_decode_emit(j_common_ptr cinfo, int level) {
    if (level >= 0) return;                                   // trace messages
    struct cvips_jpeg_decode_error *error = (struct cvips_jpeg_decode_error *)cinfo->err;
    long warnings = ++cinfo->err->num_warnings;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        if (!error->first_warning[0]) snprintf(error->message, sizeof(error->message), "jpeg: Premature end of input file");
        else snprintf(error->message, sizeof(error->message), "jpeg: %s", error->first_warning);
        longjmp(error->escape, 1);
    }
    if (!error->first_warning[0]) (*cinfo->err->format_message)(cinfo, error->first_warning);
    if (error->fail_on_warning || warnings >= 100) cvips_jpeg_decode_fail(cinfo);
}

/// Decodes `buf` (a JPEG with three YCbCr components) into a new 8-bit sRGB memory image at 1/`shrink` of
/// its size (1, 2, 4 or 8: the caller's choice, libvips's rule), carrying its ICC profile (APP2) and
/// `orientation`. `*taken` is 0 for a JPEG this path leaves to libvips
/// (greyscale, CMYK, anything but three YCbCr components); then NULL is returned and nothing is set. On
/// failure NULL, with `message` holding libjpeg's words.
static inline VipsImage *cvips_jpeg_decode(const void *buf, size_t len, int shrink, int fail_on_warning,
                                           int orientation, char *message, size_t message_size, int *taken) {
    struct jpeg_decompress_struct cinfo;
    struct cvips_jpeg_decode_error error;
    VipsImage *volatile out = NULL;
    *taken = 1;
    message[0] = 0;
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = cvips_jpeg_decode_fail;
    error.manager.emit_message = cvips_jpeg_decode_emit;
    error.fail_on_warning = fail_on_warning;
    error.message[0] = 0;
    error.first_warning[0] = 0;
    jpeg_create_decompress(&cinfo);
    if (setjmp(error.escape)) {
        snprintf(message, message_size, "%s", error.message);
        jpeg_destroy_decompress(&cinfo);
        if (out) g_object_unref(out);
        return NULL;
    }
    jpeg_mem_src(&cinfo, (const unsigned char *)buf, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components != 3 || cinfo.jpeg_color_space != JCS_YCbCr) {
        *taken = 0;
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    cinfo.out_color_space = JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)shrink;
    jpeg_start_decompress(&cinfo);
    out = vips_image_new_memory();
    vips_image_init_fields(out, (int)cinfo.output_width, (int)cinfo.output_height, 3, VIPS_FORMAT_UCHAR,
                           VIPS_CODING_NONE, VIPS_INTERPRETATION_sRGB, 1.0, 1.0);
    if (vips_image_write_prepare(out)) {
        snprintf(error.message, sizeof(error.message), "jpeg: no memory for %ux%u", cinfo.output_width, cinfo.output_height);
        longjmp(error.escape, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = (JSAMPROW)VIPS_IMAGE_ADDR(out, 0, cinfo.output_scanline);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    // The ICC profile (libjpeg-turbo joins its APP2 chunks). A malformed one is left out, as libvips leaves
    // it, not counted as a fault of the picture.
    JOCTET *icc = NULL;
    unsigned int icc_length = 0;
    error.fail_on_warning = 0;
    if (jpeg_read_icc_profile(&cinfo, &icc, &icc_length) && icc_length > 0) {
        vips_image_set_blob_copy(out, VIPS_META_ICC_NAME, icc, icc_length);
    }
    free(icc);
    // Not `jpeg_finish_decompress`: like libvips, the decode ends with the last scanline, so bytes after the
    // last scan (junk before EOI, a missing EOI) are not judged.
    jpeg_destroy_decompress(&cinfo);
    if (orientation > 1) vips_image_set_int(out, VIPS_META_ORIENTATION, orientation);
    return out;
}

#endif
