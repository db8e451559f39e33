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
    public var longSide: Int { max(width, height) }
    /// True for 8-bit unsigned samples.
    public var isUChar: Bool { vips_image_get_format(pointer) == VIPS_FORMAT_UCHAR }
    /// Whether the pixels are computed and held in memory (a decoded upload), not a libvips pipeline.
    public var isInMemory: Bool { cvips_pixels(pointer) != nil }
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
            guard let image = cvips_open_buffer(base, raw.count, "", VIPS_ACCESS_SEQUENTIAL) else {
                throw ImagingError(code: "decode.corrupt", message: Vips.takeError())
            }
            defer { cvips_unref(image) }
            return ImageHeader(format: format, width: Int(vips_image_get_width(image)),
                               height: Int(vips_image_get_height(image)), bands: Int(vips_image_get_bands(image)),
                               orientation: Int(cvips_get_orientation(image)))
        }
    }

    /// Decodes every pixel of `bytes` into memory, shrinking on load where the format allows it (JPEG DCT
    /// scaling by 2, 4 or 8, never below `longSide`), fitting the long side to `longSide` and applying
    /// `transform` (orientation, colour) on the way, all in one pass: the full-size decode never sits in
    /// memory on its own. The EXIF orientation is not applied unless `transform` does it. Damage fails per
    /// `strictness` instead of coming out as grey garbage; the failure is reported as a decode error even
    /// when it surfaces in a later step, since only the input's pixels can make that pass fail.
    /// (`vips_thumbnail_buffer` ignores `fail_on` in libvips 8.14, so the strict load is done here.)
    /// Pass the `header` already read to skip reading it again. With `direct`, a colour JPEG is decoded by
    /// libjpeg straight into memory (`decodeDirectly`; the pipeline's path), keeping only what the steps after
    /// it need.
    public static func decode(_ bytes: Data, header known: ImageHeader? = nil, longSide: Int, strictness: Strictness,
                              direct: Bool = false, then transform: (Image) throws -> Image = { $0 }) throws -> Image {
        let header = try known ?? header(of: bytes)
        if direct, header.format == .jpeg,
           let image = try decodeDirectly(bytes, header: header, longSide: longSide, strictness: strictness, then: transform) {
            return image
        }
        var options = "fail_on=\(strictness.rawValue)"
        if header.format == .jpeg { options += ",shrink=\(jpegShrink(header, longSide: longSide))" }
        // Turning the picture reads the decoder's output out of order (columns, or bottom-up), which a
        // sequential decode refuses ("out of order read"): such images are decoded with random access, which
        // holds the shrunk decode in memory while the rest of the pass reads it.
        let access: VipsAccess = header.orientation == 1 ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM
        // A decode larger than `longSide` (after the shrink) is held in memory and scaled there through
        // OpenCV (`reduced`), before the transform: libvips 8.14's resize runs its horizontal pass in plain C,
        // about 20 ms for a 2016 × 1512 decode fitted to 1024, against 1.5 ms.
        func pass(_ raw: UnsafeRawBufferPointer) throws -> Image? {
            guard let lazy = cvips_open_buffer(raw.baseAddress!, raw.count, options, access) else { return nil }
            var image = Image(lazy)
            if image.longSide > longSide, image.isUChar, (1...4).contains(image.bands) {
                guard let decoded = cvips_memory_image(lazy) else { return nil }
                image = Image(decoded)
            }
            return try finish(image, longSide: longSide, transform)
        }
        return try bytes.withUnsafeBytes { raw in
            if let image = try DecodeLock.shared.reading({ try pass(raw) }) { return image }
            // libvips's error buffer is process-global: the text left by this failure may be mixed with another
            // thread's. Decode again with every other decode held off, and classify that run's own message.
            let retry: Result<Image, ImagingError> = try DecodeLock.shared.writing {
                vips_error_clear()
                return try pass(raw).map { .success($0) } ?? .failure(Image.decodeError(Vips.takeError()))
            }
            return try retry.get()
        }
    }

    /// A JPEG of three YCbCr components decoded by libjpeg straight into memory (`cvips_jpeg_decode`), without
    /// a libvips pipeline: shrunk in the IDCT as libvips would (1/2, 1/4, 1/8, keeping `longSide`), then
    /// fitted exactly through OpenCV, then `transform`. Nil for a JPEG this path leaves to libvips
    /// (greyscale, CMYK). Only the pixels, the ICC profile and the orientation are kept (no EXIF or XMP
    /// fields): for the pipeline, not for inspecting a file.
    static func decodeDirectly(_ bytes: Data, header: ImageHeader, longSide: Int, strictness: Strictness,
                               then transform: (Image) throws -> Image) throws -> Image? {
        var message = [CChar](repeating: 0, count: 256)
        var taken: Int32 = 0
        let decoded = bytes.withUnsafeBytes { raw in
            cvips_jpeg_decode(raw.baseAddress, raw.count, Int32(jpegShrink(header, longSide: longSide)), strictness == .warning ? 1 : 0,
                              Int32(header.orientation), &message, message.count, &taken)
        }
        guard taken != 0 else { return nil }
        guard let decoded else { throw decodeError(String(cString: message)) }
        // The steps after it use libvips, whose error buffer a failed decode elsewhere may be reading alone.
        return try DecodeLock.shared.reading {
            guard let image = try finish(Image(decoded), longSide: longSide, transform) else {
                throw ImagingError(code: "internal.vips", message: "normalise: \(Vips.takeError())")
            }
            return image
        }
    }

    /// The IDCT shrink of a JPEG decode (libvips's `shrink` on load, libjpeg's 1/`shrink` scale): the largest
    /// of 8, 4, 2 that keeps the long side at least `longSide`, else 1.
    static func jpegShrink(_ header: ImageHeader, longSide: Int) -> Int {
        [8, 4, 2].first { max(header.width, header.height) / $0 >= longSide } ?? 1
    }

    /// The end of every decode: `decoded` fitted to `longSide` (pixels in memory through OpenCV, `reduced`;
    /// a lazy image through libvips, `fitted`), then `transform`, computed into memory. Nil when libvips
    /// fails (its error buffer says why).
    private static func finish(_ decoded: Image, longSide: Int, _ transform: (Image) throws -> Image) throws -> Image? {
        let fitted = decoded.isInMemory ? try decoded.reduced(longSide: longSide) : try decoded.fitted(longSide: longSide)
        let steps = try transform(fitted)
        // `steps` owns the libvips image its pointer names: it must outlive the computation.
        return withExtendedLifetime(steps) { cvips_memory_image(steps.pointer).map(Image.init) }
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

    /// The 8-bit samples of an image held in memory (row-major, bands interleaved), lent to `body` without a
    /// copy; nil for an image that is not in memory or not 8-bit.
    public func withMemoryPixels<T>(_ body: (UnsafePointer<UInt8>) throws -> T) rethrows -> T? {
        guard isUChar, let pixels = cvips_pixels(pointer) else { return nil }
        return try withExtendedLifetime(self) { try body(pixels) }
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
