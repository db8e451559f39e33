import CVips
import Foundation

extension Image {
    /// Encoded bytes with **all** metadata stripped (EXIF, GPS, XMP, IPTC, ICC).
    public func encoded(as format: ImageFormat, quality: Int = 85) throws -> Data {
        try save(format.rawValue) { image, buf, len in
            switch format {
            case .jpeg: cvips_jpegsave(image, buf, len, Int32(quality))
            case .png: cvips_pngsave(image, buf, len)
            case .webp: cvips_webpsave(image, buf, len, Int32(quality))
            case .heif: cvips_heifsave(image, buf, len, Int32(quality))
            case .gif: cvips_gifsave(image, buf, len)
            case .tiff: cvips_tiffsave(image, buf, len)
            case .bmp, .svg, .pdf: -1
            }
        }
    }

    /// JPEG bytes that keep the image's metadata (orientation, EXIF): for building phone-like fixtures.
    public func jpegKeepingMetadata(quality: Int = 90) throws -> Data {
        try save("jpeg") { cvips_jpegsave_keep($0, $1, $2, Int32(quality)) }
    }

    /// A progressive JPEG without metadata: for fixtures.
    public func jpegProgressive(quality: Int = 85) throws -> Data {
        try save("jpeg") { cvips_jpegsave_progressive($0, $1, $2, Int32(quality)) }
    }

    private func save(_ name: String, _ op: (UnsafeMutablePointer<VipsImage>, UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutablePointer<Int>) -> Int32) throws -> Data {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        guard op(pointer, &buffer, &length) == 0, let buffer else {
            throw ImagingError(code: "internal.vips", message: "\(name)save: \(Vips.takeError())")
        }
        return Data(bytesNoCopy: buffer, count: length, deallocator: .custom { p, _ in cvips_free(p) })
    }
}
