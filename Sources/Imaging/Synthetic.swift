import CVips
import Foundation

/// Photo-like images made from noise, for tests and self-checks that must run without real photos:
/// smooth random structure (so perceptual hashes mean something) plus fine grain (so it is sharp).
public enum Synthetic {
    /// A sharp, mid-exposed RGB image whose content is fixed by `seed`.
    public static func photo(width: Int, height: Int, seed: Int) throws -> Image {
        var bands: [Image] = []
        for channel in 0..<3 {
            let coarse = try noise(width: 12, height: 9, mean: 128, sigma: 60, seed: seed * 7 + channel)
            let smooth = try coarse.apply("resize") {
                cvips_resize($0, &$1, Double(width + 12) / 12.0, Double(height + 9) / 9.0)
            }.cropped(left: 0, top: 0, width: width, height: height)
            let grain = try noise(width: width, height: height, mean: 0, sigma: 18, seed: seed * 7 + channel + 3)
            let sum = try smooth.apply("add") { cvips_add($0, grain.pointer, &$1) }
            bands.append(try sum.apply("cast") { cvips_cast_uchar($0, &$1) })
        }
        let joined = try bands[0].apply("bandjoin") { cvips_bandjoin3($0, bands[1].pointer, bands[2].pointer, &$1) }
        return try joined.apply("colourspace") { cvips_colourspace($0, &$1, VIPS_INTERPRETATION_sRGB) }
    }

    private static func noise(width: Int, height: Int, mean: Double, sigma: Double, seed: Int) throws -> Image {
        var out: UnsafeMutablePointer<VipsImage>?
        guard cvips_gaussnoise(&out, Int32(width), Int32(height), mean, sigma, Int32(truncatingIfNeeded: seed)) == 0, let out else {
            throw ImagingError(code: "internal.vips", message: Vips.takeError())
        }
        return Image(out)
    }
}
