import CVips
import FeatureMatch
import Foundation

extension Image {
    /// The image turned upright according to its EXIF orientation (the tag is removed).
    public func autoRotated() throws -> Image {
        // Upright already: no operation (each one is a GObject built, and a stage in the pass into memory).
        guard orientation > 1 else { return self }
        return try apply("autorot") { cvips_autorot($0, &$1) }
    }

    /// The image turned clockwise by `quarterTurns` × 90°.
    public func rotated(quarterTurns: Int) throws -> Image {
        try apply("rot") { cvips_rot($0, &$1, Int32(quarterTurns)) }
    }

    /// 8-bit sRGB with 3 bands: colour-managed through an embedded ICC profile when there is one,
    /// alpha flattened onto white, greyscale expanded.
    public func sRGB() throws -> Image {
        var image = self
        if let known = profileEntry, !known.isSRGB {
            image = image.convertedInMemory(known) ?? (try? image.apply("icc_transform") { cvips_icc_to_srgb($0, &$1) }) ?? image
        }
        // An 8-bit sRGB image with three bands (most JPEGs) is left as it is: no operation to build and run.
        if vips_image_get_interpretation(image.pointer) != VIPS_INTERPRETATION_sRGB || image.bands != 3 {
            image = try image.apply("colourspace") { cvips_colourspace($0, &$1, VIPS_INTERPRETATION_sRGB) }
        }
        if image.bands == 4 { image = try image.apply("flatten") { cvips_flatten_white($0, &$1) } }
        if image.bands > 3 { image = try image.apply("extract_band") { cvips_extract_band($0, &$1, 0, 3) } }
        return image.isUChar ? image : try image.apply("cast") { cvips_cast_uchar($0, &$1) }
    }

    /// True when the embedded ICC profile describes sRGB itself (its colorants and tone curves, whatever
    /// its name), so `sRGB()` leaves the pixels as they are; false without a profile.
    public var hasSRGBProfile: Bool { profileEntry?.isSRGB ?? false }

    /// What `ColourProfiles` knows of the embedded profile (read in place, not copied); nil without one.
    var profileEntry: ColourProfiles.Entry? {
        var length = 0
        guard let data = cvips_icc_profile(pointer, &length) else { return nil }
        return withExtendedLifetime(self) { ColourProfiles.shared.entry(for: UnsafeRawBufferPointer(start: data, count: length)) }
    }

    /// 8-bit RGB pixels in memory converted into sRGB by the profile's transform built once
    /// (`ColourProfiles`), on the calling thread: what libvips's `icc_transform` computes, without building
    /// the transform again for every photo. Nil where that does not apply (a pipeline, another format or band
    /// count, a profile lcms cannot transform): libvips converts those.
    func convertedInMemory(_ known: ColourProfiles.Entry) -> Image? {
        guard let transform = known.transform, isInMemory, isUChar, bands == 3, let srgb = ColourProfiles.srgb else { return nil }
        let made = withExtendedLifetime(known) {
            srgb.withUnsafeBytes { cvips_apply_rgb_transform(pointer, transform, $0.baseAddress, $0.count) }
        }
        return made.map(Image.init)
    }

    /// The embedded ICC profile's bytes, if any.
    public var iccProfile: Data? {
        var length = 0
        guard let data = cvips_icc_profile(pointer, &length) else { return nil }
        return Data(bytes: data, count: length)
    }

    /// A copy carrying `profile` as its ICC profile (the pixels are not touched).
    public func withICCProfile(_ profile: Data) throws -> Image {
        let copy = try apply("copy") { cvips_copy($0, &$1) }
        profile.withUnsafeBytes { cvips_set_icc_profile(copy.pointer, $0.baseAddress, $0.count) }
        return copy
    }

    /// This sRGB image converted into the colour space of `profile` (a libvips built-in such as `p3`, or a
    /// file), with that profile attached: how a wide-gamut phone writes the same picture.
    public func converted(toProfile profile: String) throws -> Image {
        try apply("icc_transform") { cvips_icc_from_srgb($0, &$1, profile) }
    }

    /// The image scaled down (never up) so its long side is at most `longSide`.
    public func fitted(longSide: Int) throws -> Image {
        let long = max(width, height)
        guard long > longSide else { return self }
        // vips_resize rounds the output size; aim a hair above so the long side lands exactly.
        let scale = (Double(longSide) + 0.1) / Double(long)
        return try apply("resize") { cvips_resize($0, &$1, scale, scale) }
    }

    /// The image scaled down so its long side is at most `longSide`, for a thumbnail. 8-bit pixels in memory
    /// go through OpenCV (`dih_resize_down`: an exact box average by the largest whole factor, then bilinear
    /// for the rest): on a 512 × 384 photo to 256, 0.05 ms against 1.2 ms for libvips 8.14's `vips_reduce`,
    /// whose horizontal pass is plain C (1.5 ms of it). Others take one `vips_reduce` with a linear kernel
    /// stretched over the whole factor.
    public func reduced(longSide: Int) throws -> Image {
        let long = max(width, height)
        guard long > longSide else { return self }
        let factor = Double(long) / Double(longSide)
        let w = max(1, min(width, Int((Double(width) / factor).rounded()))), h = max(1, min(height, Int((Double(height) / factor).rounded())))
        if let fast = try downscaledInMemory(width: w, height: h) { return fast }
        return try apply("reduce") { cvips_reduce($0, &$1, factor, factor) }
    }

    /// 8-bit pixels in memory (1–4 bands) scaled down to `width` × `height` by OpenCV (`dih_resize_down`),
    /// into a new image in memory; nil where that does not apply (another format, a libvips pipeline, or
    /// OpenCV not loadable: libFeatureKernels.so).
    func downscaledInMemory(width w: Int, height h: Int) throws -> Image? {
        try scaledInMemory(width: w, height: h, "downscale to \(w)×\(h)") { pixels, out in
            dih_resize_down(pixels, Int32(width), Int32(height), Int32(bands), out, Int32(w), Int32(h))
        }
    }

    /// The `width` × `height` window at (`left`, `top`) of 8-bit pixels in memory (1–4 bands) scaled up by
    /// `scale` (at least 1), by OpenCV (`dih_resize_up`) as `resized` scales them in libvips (bilinear, its
    /// sampling grid), on the calling thread and only the window: about 0.1 ms for a small photo's model
    /// input where libvips 8.14 took 2–4 ms. Nil where that does not apply (as `downscaledInMemory`).
    func upscaledWindowInMemory(by scale: Double, left: Int, top: Int, width w: Int, height h: Int) throws -> Image? {
        guard scale >= 1 else { return nil }
        return try scaledInMemory(width: w, height: h, "upscale by \(scale)") { pixels, out in
            dih_resize_up(pixels, Int32(width), Int32(height), Int32(bands), out, Int32(w), Int32(h), scale, Int32(left), Int32(top))
        }
    }

    /// A new `w` × `h` image in memory with this one's bands and metadata, its pixels written by `scale` from
    /// this one's (an OpenCV kernel: 0 done, -2 not applicable here, else failed); nil where this image's
    /// pixels are not 8-bit in memory, or the kernel does not apply.
    private func scaledInMemory(width w: Int, height h: Int, _ what: String,
                                _ scale: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Int32) throws -> Image? {
        guard isUChar, (1...4).contains(bands), let pixels = cvips_pixels(pointer) else { return nil }
        guard let made = cvips_new_uchar_memory(pointer, Int32(w), Int32(h), Int32(bands)) else {
            throw ImagingError(code: "internal.vips", message: "\(what): \(Vips.takeError())")
        }
        let out = Image(made)
        switch scale(pixels, cvips_pixels(made)) {
        case 0: return out
        case -2: return nil
        default: throw ImagingError(code: "internal.vips", message: "\(what) of \(width)×\(height) failed")
        }
    }

    /// The image scaled to exactly `width` × `height`, ignoring aspect ratio.
    public func resized(width: Int, height: Int) throws -> Image {
        try apply("resize") {
            cvips_resize($0, &$1, (Double(width) + 0.1) / Double(self.width), (Double(height) + 0.1) / Double(self.height))
        }
    }

    /// The image averaged down by box filtering to about `width` × `height` (at least that size):
    /// fast, for measures and hashes rather than for display.
    public func boxShrunk(width: Int, height: Int) throws -> Image {
        let h = max(1.0, Double(self.width) / Double(width)), v = max(1.0, Double(self.height) / Double(height))
        guard h > 1 || v > 1 else { return self }
        return try apply("shrink") { cvips_shrink($0, &$1, h, v) }
    }

    /// A rectangle of the image.
    public func cropped(left: Int, top: Int, width: Int, height: Int) throws -> Image {
        try apply("crop") { cvips_crop($0, &$1, Int32(left), Int32(top), Int32(width), Int32(height)) }
    }

    /// Single-band luminance.
    public func grey() throws -> Image {
        let bw = try apply("colourspace") { cvips_colourspace($0, &$1, VIPS_INTERPRETATION_B_W) }
        let one = bw.bands > 1 ? try bw.apply("extract_band") { cvips_extract_band($0, &$1, 0, 1) } : bw
        return try one.apply("cast") { cvips_cast_uchar($0, &$1) }
    }

    /// Gaussian blur with standard deviation `sigma` pixels.
    public func blurred(sigma: Double) throws -> Image {
        try apply("gaussblur") { cvips_gaussblur($0, &$1, sigma) }
    }

    /// Pixel values scaled as `value * a + b`, cast back to 8 bits.
    public func linear(_ a: Double, _ b: Double) throws -> Image {
        try apply("linear") { cvips_linear1($0, &$1, a, b) }.apply("cast") { cvips_cast_uchar($0, &$1) }
    }

    /// The pipeline computed once into memory, so several consumers (measures, encoders) do not each
    /// recompute it from the source; an image already in memory is returned as it is.
    public func materialized() throws -> Image {
        guard let memory = cvips_memory_image(pointer) else {
            throw ImagingError(code: "internal.vips", message: "memory image: \(Vips.takeError())")
        }
        return Image(memory)
    }

    /// A copy whose EXIF orientation tag will say `orientation` when saved with metadata.
    public func withOrientation(_ orientation: Int) throws -> Image {
        let copy = try apply("copy") { cvips_copy($0, &$1) }
        cvips_set_int(copy.pointer, "orientation", Int32(orientation))
        return copy
    }
}
