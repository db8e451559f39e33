import Foundation
import HubCore
import Imaging

/// Decides whether bytes are a safe, decodable, good-enough image, before and after decoding pixels.
public struct Verifier: Sendable {
    public let settings: HubSettings
    let allowed: Set<ImageFormat>

    public init(settings: HubSettings) {
        self.settings = settings
        self.allowed = Set(settings.allowedFormats.compactMap { ImageFormat(rawValue: $0.lowercased()) })
    }

    /// Refuses a format outside the allow-list from the first bytes alone (ingest calls it while streaming).
    public func checkFormat<Bytes: Collection>(leadingBytes: Bytes) throws -> ImageFormat where Bytes.Element == UInt8 {
        guard !leadingBytes.isEmpty else { throw Rejection("format.empty", "the file is empty") }
        guard let format = ImageFormat.sniff(leadingBytes) else {
            throw Rejection("format.unsupported", "the bytes are not a recognised image format")
        }
        guard allowed.contains(format) else {
            throw Rejection("format.not_allowed", "\(format.rawValue) is not an allowed format (allowed: \(settings.allowedFormats.joined(separator: ", ")))")
        }
        return format
    }

    /// Reads the header only and refuses images too large or too small, before any pixel is decoded.
    public func checkHeader(_ bytes: Data) throws -> ImageHeader {
        _ = try checkFormat(leadingBytes: bytes.prefix(ImageFormat.sniffLength))
        let header: ImageHeader
        do { header = try Image.header(of: bytes) } catch let e as ImagingError {
            throw Rejection(e.code, e.message)
        }
        let megapixels = Double(header.width) * Double(header.height) / 1_000_000
        if megapixels > settings.maxMegapixels || max(header.width, header.height) > settings.maxSide {
            throw Rejection("size.too_large", "\(header.width)×\(header.height) exceeds \(settings.maxMegapixels) MP or \(settings.maxSide) px")
        }
        if min(header.width, header.height) < settings.minSide {
            throw Rejection("size.too_small", "\(header.width)×\(header.height) is under \(settings.minSide) px on a side")
        }
        return header
    }

    /// Decodes every pixel strictly, shrinking on load to `longSide` and applying `transform` in the same
    /// pass (see `Image.decode`). Truncated or corrupt files are rejected; a file whose only fault is a
    /// decoder warning that is not corruption is decoded leniently and flagged `decode.warning` for review
    /// (some honest camera files carry benign warnings).
    public func decode(_ bytes: Data, header: ImageHeader, longSide: Int,
                       then transform: (Image) throws -> Image = { $0 }) throws -> (image: Image, warnings: [String]) {
        do {
            return (try Image.decode(bytes, header: header, longSide: longSide, strictness: .warning, direct: true, then: transform), [])
        } catch let strict as ImagingError {
            let lenient: Image
            do {
                lenient = try Image.decode(bytes, header: header, longSide: longSide, strictness: .error, direct: true, then: transform)
            } catch let e as ImagingError {
                throw Rejection(e.code, e.message)
            }
            if strict.message.lowercased().contains("corrupt") || strict.code == "decode.truncated" {
                throw Rejection(strict.code, strict.message)
            }
            return (lenient, ["decode.warning"])
        }
    }

    /// Quality reason codes for measured metrics (empty when the image is fine), against the image's
    /// label's thresholds (the global ones when not given).
    public func qualityReasons(_ m: QualityMetrics, thresholds: QualityThresholds? = nil) -> [String] {
        let t = thresholds ?? settings.globalQuality
        var reasons: [String] = []
        if m.brightness < t.minBrightness { reasons.append("quality.too_dark") }
        if m.brightness > t.maxBrightness { reasons.append("quality.overexposed") }
        if m.contrast < t.minContrast && reasons.isEmpty { reasons.append("quality.low_contrast") }
        if m.sharpness < t.minSharpness { reasons.append("quality.blurry") }
        return reasons
    }
}
