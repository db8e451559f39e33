import CVips
import Foundation

/// Exposure and focus measures of an image, on its luminance.
public struct QualityMetrics: Sendable, Codable, Equatable {
    /// Variance of the Laplacian on a fixed-size downscale: low means blurry.
    public var sharpness: Double
    /// Mean luminance, 0–255.
    public var brightness: Double
    /// Standard deviation of luminance, 0–255.
    public var contrast: Double

    public init(sharpness: Double, brightness: Double, contrast: Double) {
        self.sharpness = sharpness
        self.brightness = brightness
        self.contrast = contrast
    }
}

/// What the pipeline measures of an image: exposure, focus and a perceptual hash.
public struct Measures: Sendable, Equatable {
    public var quality: QualityMetrics
    public var hash: UInt64
}

extension Image {
    /// The long side quality is measured at, so sharpness compares across resolutions.
    public static let measureSide = 512

    /// Quality metrics and difference hash from one luminance downscale: every libvips operation carries
    /// a fixed cost, so the two share their work.
    public func measures() throws -> Measures {
        let g = try measureGrey()
        return Measures(quality: try g.qualityOfGrey(), hash: try g.differenceHashOfGrey())
    }

    /// Sharpness, brightness and contrast on a `measureSide` downscale of the luminance.
    public func qualityMetrics() throws -> QualityMetrics { try measures().quality }

    /// 64-bit difference hash: luminance at 9×8, one bit per horizontal neighbour pair.
    /// Survives re-encoding and resizing; Hamming distance compares two images.
    public func differenceHash() throws -> UInt64 { try measures().hash }

    private func measureGrey() throws -> Image {
        let long = Double(max(width, height)), side = Double(Image.measureSide)
        return try boxShrunk(width: Int(Double(width) * side / long), height: Int(Double(height) * side / long)).grey().materialized()
    }

    private func qualityOfGrey() throws -> QualityMetrics {
        var laplacian = 0.0, mean = 0.0, deviation = 0.0
        guard cvips_laplacian_variance(pointer, &laplacian) == 0, cvips_mean_deviation(pointer, &mean, &deviation) == 0 else {
            throw ImagingError(code: "internal.vips", message: Vips.takeError())
        }
        return QualityMetrics(sharpness: laplacian, brightness: mean, contrast: deviation)
    }

    private func differenceHashOfGrey() throws -> UInt64 {
        let pixels = try resized(width: 9, height: 8).bytes()
        var hash: UInt64 = 0
        for row in 0..<8 {
            for column in 0..<8 {
                hash <<= 1
                if pixels[row * 9 + column] < pixels[row * 9 + column + 1] { hash |= 1 }
            }
        }
        return hash
    }
}

extension UInt64 {
    /// Number of differing bits between two perceptual hashes.
    public func hammingDistance(to other: UInt64) -> Int { (self ^ other).nonzeroBitCount }
}
