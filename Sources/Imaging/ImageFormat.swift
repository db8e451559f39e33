/// Image container formats recognised from their first bytes (never from a filename or content type).
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case jpeg, png, webp, heif, gif, tiff, bmp, svg, pdf

    /// The libvips loader class whose name must match the sniffed format before any decode.
    var loaderPrefix: String {
        switch self {
        case .jpeg: "VipsForeignLoadJpeg"
        case .png: "VipsForeignLoadPng"
        case .webp: "VipsForeignLoadWebp"
        case .heif: "VipsForeignLoadHeif"
        case .gif: "VipsForeignLoadGif"
        case .tiff: "VipsForeignLoadTiff"
        case .bmp: "VipsForeignLoadMagick"
        case .svg: "VipsForeignLoadSvg"
        case .pdf: "VipsForeignLoadPdf"
        }
    }

    /// The formats accepted by default.
    public static let defaultAllowed: Set<ImageFormat> = [.jpeg, .png, .webp, .heif]

    /// How many leading bytes `sniff` needs to decide.
    public static let sniffLength = 64

    /// Recognises a format from the leading bytes of a file, or nil when nothing matches.
    public static func sniff<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
        let b = Array(bytes.prefix(sniffLength))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + magic.count && Array(b[offset..<offset + magic.count]) == magic
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("ftyp".utf8), at: 4) && b.count >= 12 {
            let brand = String(decoding: b[8..<12], as: UTF8.self)
            if ["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"].contains(brand) { return .heif }
            return nil
        }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts(Array("%PDF".utf8)) { return .pdf }
        let text = String(decoding: b, as: UTF8.self).lowercased()
        if text.contains("<svg") || (text.hasPrefix("<?xml") && text.contains("svg")) { return .svg }
        return nil
    }
}
