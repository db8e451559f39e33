import CVips
import Foundation

/// How a network wants its input: the short side resized to `resize`, a centre crop of `size`, and each
/// sample scaled as (x/255 − mean) / std.
public struct ModelInputSpec: Sendable, Hashable {
    public var size: Int
    public var resize: Int
    public var mean: Double
    public var std: Double

    public init(size: Int, resize: Int, mean: Double, std: Double) {
        self.size = size
        self.resize = resize
        self.mean = mean
        self.std = std
    }

    /// The number of floats one image takes (size × size × 3).
    public var count: Int { size * size * 3 }

    /// The scale libvips's path resizes a picture of short side `short` by: a tenth of a pixel over `resize`,
    /// so that the short side rounds to `resize` and never under it. OpenCV's upscale uses the same, so that
    /// both paths make the same output size and sampling grid.
    func scale(shortSide short: Int) -> Double { (Double(resize) + 0.1) / Double(short) }
}

extension Image {
    /// The network input for this 3-band sRGB image: resize (short side to `spec.resize`), centre crop,
    /// normalise to float. Samples are interleaved (H × W × 3, RGB), which the backbone reads as a
    /// channels-last tensor. 8-bit pixels in memory go through OpenCV: scaled down by `dih_resize_down`
    /// (as thumbnails are: a box average by the largest whole factor, then bilinear), up by `dih_resize_up`
    /// (as the libvips path below upsizes: bilinear on its sampling grid, within rounding), the crop and the scaling
    /// in one pass here: 0.3 ms for a 1024-pixel photo against 2.3 ms for libvips 8.14's resize, whose
    /// horizontal pass is plain C, and for a photo under the input's size about 0.1 ms against 2–4 ms.
    /// Anything else, all in libvips.
    public func modelInput(_ spec: ModelInputSpec) throws -> [Float] {
        if let fast = try modelInputFromMemory(spec) { return fast }
        let scale = spec.scale(shortSide: min(width, height))
        let resized = try apply("resize") { cvips_resize($0, &$1, scale, scale) }
        guard resized.width >= spec.size, resized.height >= spec.size else {
            throw ImagingError(code: "internal.vips", message: "model input: \(resized.width)×\(resized.height) is smaller than \(spec.size)")
        }
        let crop = try resized.cropped(left: (resized.width - spec.size) / 2, top: (resized.height - spec.size) / 2,
                                       width: spec.size, height: spec.size)
        let a = 1.0 / (255.0 * spec.std), b = -spec.mean / spec.std
        let normalised = try crop.apply("linear") { cvips_linear1($0, &$1, a, b) }
        var length = 0
        guard let raw = cvips_write_to_memory(normalised.pointer, &length) else {
            throw ImagingError(code: "internal.vips", message: Vips.takeError())
        }
        defer { cvips_free(raw) }
        guard length == spec.count * MemoryLayout<Float>.size else {
            throw ImagingError(code: "internal.vips", message: "model input: \(length) bytes, expected \(spec.count * 4)")
        }
        return Array(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: Float.self), count: spec.count))
    }

    /// `modelInput` through OpenCV: nil where it does not apply (not 3-band, or not scaled by
    /// `downscaledInMemory` or, for a picture whose short side is under the resize, `upscaledWindowInMemory`).
    func modelInputFromMemory(_ spec: ModelInputSpec) throws -> [Float]? {
        let short = min(width, height)
        guard bands == 3, short > 0, spec.size <= spec.resize else { return nil }
        let resized: Image, left: Int, top: Int
        if short > spec.resize {
            let factor = Double(short) / Double(spec.resize)
            let w = width <= height ? spec.resize : Int((Double(width) / factor).rounded())
            let h = width <= height ? Int((Double(height) / factor).rounded()) : spec.resize
            guard let scaled = try downscaledInMemory(width: w, height: h) else { return nil }
            (resized, left, top) = (scaled, (w - spec.size) / 2, (h - spec.size) / 2)
        } else {
            // Up, as `modelInput`'s libvips path scales and crops (the same scale, size and samples), computing
            // the crop alone.
            let scale = spec.scale(shortSide: short)
            let w = Int((Double(width) * scale).rounded()), h = Int((Double(height) * scale).rounded())
            guard w >= spec.size, h >= spec.size, let window = try upscaledWindowInMemory(
                by: scale, left: (w - spec.size) / 2, top: (h - spec.size) / 2, width: spec.size, height: spec.size) else { return nil }
            (resized, left, top) = (window, 0, 0)
        }
        let w = resized.width
        let a = Float(1.0 / (255.0 * spec.std)), b = Float(-spec.mean / spec.std)
        let row = spec.size * 3
        var input = [Float](repeating: 0, count: spec.count)
        resized.withMemoryPixels { source in
            input.withUnsafeMutableBufferPointer { target in
                for y in 0..<spec.size {
                    let from = ((top + y) * w + left) * 3, to = y * row
                    for i in 0..<row { target[to + i] = Float(source[from + i]) * a + b }
                }
            }
        }
        return input
    }

    /// Decodes `bytes` straight to the network input, shrinking on load so the short side stays at least
    /// `spec.resize` (the benchmark and `predict` use it; ingest reuses the image it already decoded).
    public static func modelInput(_ bytes: Data, spec: ModelInputSpec) throws -> [Float] {
        let header = try Image.header(of: bytes)
        let (w, h) = header.orientation >= 5 ? (header.height, header.width) : (header.width, header.height)
        let long = Int((Double(spec.resize) * Double(max(w, h)) / Double(max(1, min(w, h)))).rounded(.up))
        let upright = try Image.decode(bytes, header: header, longSide: max(long, spec.resize), strictness: .error) {
            try $0.sRGB().autoRotated()
        }
        return try upright.modelInput(spec)
    }
}
