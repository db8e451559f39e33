import CVips
import Foundation

extension Image {
    /// The image turned upright according to its EXIF orientation (the tag is removed).
    public func autoRotated() throws -> Image {
        try apply("autorot") { cvips_autorot($0, &$1) }
    }

    /// The image turned clockwise by `quarterTurns` × 90°.
    public func rotated(quarterTurns: Int) throws -> Image {
        try apply("rot") { cvips_rot($0, &$1, Int32(quarterTurns)) }
    }

    /// 8-bit sRGB with 3 bands: colour-managed through an embedded ICC profile when there is one,
    /// alpha flattened onto white, greyscale expanded.
    public func sRGB() throws -> Image {
        var image = self
        if cvips_has_field(image.pointer, "icc-profile-data") != 0 {
            image = (try? image.apply("icc_transform") { cvips_icc_to_srgb($0, &$1) }) ?? image
        }
        image = try image.apply("colourspace") { cvips_colourspace($0, &$1, VIPS_INTERPRETATION_sRGB) }
        if image.bands == 4 { image = try image.apply("flatten") { cvips_flatten_white($0, &$1) } }
        if image.bands > 3 { image = try image.apply("extract_band") { cvips_extract_band($0, &$1, 0, 3) } }
        return try image.apply("cast") { cvips_cast_uchar($0, &$1) }
    }

    /// The image scaled down (never up) so its long side is at most `longSide`.
    public func fitted(longSide: Int) throws -> Image {
        guard max(width, height) > longSide else { return self }
        return try apply("thumbnail_image") { cvips_thumbnail_image($0, &$1, Int32(longSide), Int32(longSide), 0) }
    }

    /// The image scaled to exactly `width` × `height`, ignoring aspect ratio.
    public func resized(width: Int, height: Int) throws -> Image {
        try apply("thumbnail_image") { cvips_thumbnail_image($0, &$1, Int32(width), Int32(height), 1) }
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

    /// A copy whose EXIF orientation tag will say `orientation` when saved with metadata.
    public func withOrientation(_ orientation: Int) throws -> Image {
        let copy = try apply("copy") { cvips_copy($0, &$1) }
        cvips_set_int(copy.pointer, "orientation", Int32(orientation))
        return copy
    }
}
