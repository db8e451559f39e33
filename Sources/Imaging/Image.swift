import CVips
import Foundation

/// How strictly a decode treats damage in the file, as libvips' `fail_on`.
public enum Strictness: String, Sendable {
    /// Fail on libjpeg/libpng warnings too: catches corrupt entropy-coded data.
    case warning
    /// Fail on decoder errors and truncation only.
    case error
}

/// What a header-only read tells about an image, before any pixel is decoded.
public struct ImageHeader: Sendable, Equatable {
    public let format: ImageFormat
    public let width: Int
    public let height: Int
    public let bands: Int
    /// EXIF orientation (1 when absent).
    public let orientation: Int
}

/// A decoded image held by libvips. Operations return new images: pipelines are composed, not mutated.
public final class Image: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<VipsImage>

    init(_ pointer: UnsafeMutablePointer<VipsImage>) { self.pointer = pointer }
    deinit { cvips_unref(pointer) }

    public var width: Int { Int(vips_image_get_width(pointer)) }
    public var height: Int { Int(vips_image_get_height(pointer)) }
    public var bands: Int { Int(vips_image_get_bands(pointer)) }
    public var orientation: Int { Int(cvips_get_orientation(pointer)) }
    /// True when the image carries EXIF, XMP, IPTC or an ICC profile.
    public var hasMetadata: Bool {
        let fields: [String] = ["exif-data", "xmp-data", "iptc-data", "icc-profile-data"]
        return fields.contains { cvips_has_field(pointer, $0) != 0 }
    }

    /// Reads only the header of `bytes`: format, size and orientation. No pixel is decoded.
    public static func header(of bytes: Data) throws -> ImageHeader {
        Vips.start()
        guard let format = ImageFormat.sniff(bytes) else {
            throw ImagingError(code: "format.unsupported", message: "not a recognised image format")
        }
        return try bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { throw ImagingError(code: "format.unsupported", message: "empty file") }
            guard let loader = cvips_loader_name(base, raw.count).map({ String(cString: $0) }),
                  loader.hasPrefix(format.loaderPrefix) else {
                _ = Vips.takeError()
                throw ImagingError(code: "decode.corrupt", message: "no \(format.rawValue) loader accepts these bytes")
            }
            guard let image = cvips_open_buffer(base, raw.count, "") else {
                throw ImagingError(code: "decode.corrupt", message: Vips.takeError())
            }
            defer { cvips_unref(image) }
            return ImageHeader(format: format, width: Int(vips_image_get_width(image)),
                               height: Int(vips_image_get_height(image)), bands: Int(vips_image_get_bands(image)),
                               orientation: Int(cvips_get_orientation(image)))
        }
    }

    /// Decodes every pixel of `bytes` into memory, shrinking on load where the format allows it (JPEG DCT
    /// scaling by 2, 4 or 8, never below `longSide`), then fits the long side to `longSide`, without applying
    /// the EXIF orientation. Damage fails per `strictness` instead of coming out as grey garbage.
    /// (`vips_thumbnail_buffer` ignores `fail_on` in libvips 8.14, so the strict load is done here.)
    /// Pass the `header` already read to skip reading it again.
    public static func decode(_ bytes: Data, header known: ImageHeader? = nil, longSide: Int, strictness: Strictness) throws -> Image {
        let header = try known ?? header(of: bytes)
        var options = "fail_on=\(strictness.rawValue)"
        if header.format == .jpeg {
            let shrink = [8, 4, 2].first { max(header.width, header.height) / $0 >= longSide } ?? 1
            options += ",shrink=\(shrink)"
        }
        let full: Image = try bytes.withUnsafeBytes { raw in
            if let image = DecodeLock.shared.reading({ load(raw, options) }) { return image }
            // libvips's error buffer is process-global: the text left by this failure may be mixed with another
            // thread's. Decode again with every other decode held off, and classify that run's own message.
            let retry: Result<Image, ImagingError> = DecodeLock.shared.writing {
                vips_error_clear()
                return load(raw, options).map { .success($0) } ?? .failure(Image.decodeError(Vips.takeError()))
            }
            return try retry.get()
        }
        return try full.fitted(longSide: longSide)
    }

    /// One strict load into memory; nil on failure (the error text stays in libvips's buffer).
    private static func load(_ raw: UnsafeRawBufferPointer, _ options: String) -> Image? {
        guard let lazy = cvips_open_buffer(raw.baseAddress!, raw.count, options) else { return nil }
        defer { cvips_unref(lazy) }
        return cvips_copy_memory(lazy).map(Image.init)
    }

    /// Loads bytes without shrinking (tests and fixtures use it to inspect what the hub serves).
    public static func load(_ bytes: Data) throws -> Image {
        try decode(bytes, longSide: 100_000, strictness: .error)
    }

    /// Classifies a decoder failure: signs of damaged data win over signs of a short file, because garbage
    /// also ends "prematurely" once the decoder gives up looking for markers.
    static func decodeError(_ message: String) -> ImagingError {
        let m = message.lowercased()
        let corrupt = ["corrupt", "premature end of jpeg file", "huffman", "invalid", "bad ", "crc"].contains { m.contains($0) }
        let truncated = ["premature end", "truncated", "unexpected end", "not enough data", "out of data",
                         "short read", "end of file", "eof"].contains { m.contains($0) }
        return ImagingError(code: truncated && !corrupt ? "decode.truncated" : "decode.corrupt", message: message)
    }

    /// Runs one libvips operation that writes a new image, turning failure into an error.
    func apply(_ name: String, _ op: (UnsafeMutablePointer<VipsImage>, inout UnsafeMutablePointer<VipsImage>?) -> Int32) throws -> Image {
        var out: UnsafeMutablePointer<VipsImage>?
        guard op(pointer, &out) == 0, let out else {
            throw ImagingError(code: "internal.vips", message: "\(name): \(Vips.takeError())")
        }
        return Image(out)
    }

    /// Pixels as packed 8-bit samples, row-major.
    public func bytes() throws -> [UInt8] {
        var length = 0
        guard let raw = cvips_write_to_memory(pointer, &length) else {
            throw ImagingError(code: "internal.vips", message: Vips.takeError())
        }
        defer { cvips_free(raw) }
        return Array(UnsafeRawBufferPointer(start: raw, count: length))
    }

    /// Builds an 8-bit image from packed samples.
    public static func fromPixels(_ pixels: [UInt8], width: Int, height: Int, bands: Int) throws -> Image {
        let made = pixels.withUnsafeBytes { cvips_new_from_memory_copy($0.baseAddress, $0.count, Int32(width), Int32(height), Int32(bands)) }
        guard let made else { throw ImagingError(code: "internal.vips", message: Vips.takeError()) }
        return Image(made)
    }
}
