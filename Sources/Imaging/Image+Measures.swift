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
    /// The long side quality is measured at, so sharpness compares across resolutions: the default
    /// thumbnail's, so the pipeline measures the thumbnail it has already made (measuring at 512 from the
    /// canonical image cost about 8 ms an image, most of it libvips shrinking 1024 pixels to 512).
    public static let measureSide = 256

    /// Quality metrics and difference hash from one luminance image at `measureSide`, made by libvips.
    /// The statistics over its pixels are one pass here rather than libvips operations: on a 256-pixel
    /// image each libvips sink costs more in set-up than in arithmetic (measured on the shared photos, one
    /// core: a 3×3 convolution + deviation 1.0 ms, `vips_stats` 0.3 ms, a resize to 9×8 2.1 ms, against
    /// 0.2 ms for this loop computing all of them).
    public func measures() throws -> Measures {
        let long = Double(max(width, height)), side = Double(Image.measureSide)
        let small = try boxShrunk(width: Int(Double(width) * side / long), height: Int(Double(height) * side / long))
        if small.bands == 3, small.isUChar {
            // The luma of 8-bit RGB is taken in the same pass as the statistics: libvips's `B_W` goes through
            // linear light in floating point, 1.0 ms for a 256 × 170 thumbnail against about 0.05 ms here.
            return Measures(rgb: try small.bytes(), width: small.width, height: small.height)
        }
        let grey = try small.grey()
        return Measures(grey: try grey.bytes(), width: grey.width, height: grey.height)
    }

    /// Sharpness, brightness and contrast on a `measureSide` downscale of the luminance.
    public func qualityMetrics() throws -> QualityMetrics { try measures().quality }

    /// 64-bit difference hash: luminance at 9×8, one bit per horizontal neighbour pair.
    /// Survives re-encoding and resizing; Hamming distance compares two images.
    public func differenceHash() throws -> UInt64 { try measures().hash }

}

extension Measures {
    /// The measures of an 8-bit RGB image given as packed rows, on its luma (ITU-R BT.601 weights, as
    /// Pillow's `L` mode and JPEG's Y channel: 0.299 R + 0.587 G + 0.114 B, rounded).
    public init(rgb pixels: [UInt8], width: Int, height: Int) {
        precondition(pixels.count == width * height * 3)
        let grey = [UInt8](unsafeUninitializedCapacity: width * height) { out, count in
            pixels.withUnsafeBufferPointer { p in
                for i in 0..<(width * height) {
                    let r = UInt32(p[3 * i]), g = UInt32(p[3 * i + 1]), b = UInt32(p[3 * i + 2])
                    out[i] = UInt8(truncatingIfNeeded: (19_595 * r + 38_470 * g + 7_471 * b + 32_768) >> 16)
                }
            }
            count = width * height
        }
        self.init(grey: grey, width: width, height: height)
    }

    /// The measures of an 8-bit luminance image given as packed rows: mean and standard deviation
    /// (brightness, contrast), the variance of the 4-neighbour Laplacian over the interior pixels
    /// (sharpness), and the difference hash of its 9×8 box-filtered reduction.
    public init(grey pixels: [UInt8], width: Int, height: Int) {
        precondition(pixels.count == width * height && width > 0 && height > 0)
        var sum = 0, squares = 0, lSum = 0, lSquares = 0
        pixels.withUnsafeBufferPointer { p in
            for v in p { sum += Int(v); squares += Int(v) * Int(v) }
            guard width >= 3, height >= 3 else { return }
            for y in 1..<(height - 1) {
                let row = y * width
                for x in 1..<(width - 1) {
                    let i = row + x
                    let l = Int(p[i - width]) + Int(p[i + width]) + Int(p[i - 1]) + Int(p[i + 1]) - 4 * Int(p[i])
                    lSum += l
                    lSquares += l * l
                }
            }
        }
        func sampleVariance(_ sum: Int, _ squares: Int, _ n: Int) -> Double {
            guard n > 1 else { return 0 }
            let s = Double(sum), q = Double(squares), count = Double(n)
            return max(0, (q - s * s / count) / (count - 1))
        }
        let n = width * height, interior = max(0, width - 2) * max(0, height - 2)
        quality = QualityMetrics(sharpness: sampleVariance(lSum, lSquares, interior),
                                 brightness: Double(sum) / Double(n),
                                 contrast: sampleVariance(sum, squares, n).squareRoot())
        // 9 × 8 cells, each the mean of the pixels it covers (at least one, however small the image).
        var cells = [Double](repeating: 0, count: 72)
        for cy in 0..<8 {
            let y0 = min(height - 1, cy * height / 8), y1 = max(y0 + 1, (cy + 1) * height / 8)
            for cx in 0..<9 {
                let x0 = min(width - 1, cx * width / 9), x1 = max(x0 + 1, (cx + 1) * width / 9)
                var total = 0
                for y in y0..<y1 { for x in x0..<x1 { total += Int(pixels[y * width + x]) } }
                cells[cy * 9 + cx] = Double(total) / Double((y1 - y0) * (x1 - x0))
            }
        }
        var hash: UInt64 = 0
        for row in 0..<8 {
            for column in 0..<8 {
                hash <<= 1
                if cells[row * 9 + column] < cells[row * 9 + column + 1] { hash |= 1 }
            }
        }
        self.hash = hash
    }
}

extension UInt64 {
    /// Number of differing bits between two perceptual hashes.
    public func hammingDistance(to other: UInt64) -> Int { (self ^ other).nonzeroBitCount }
}
