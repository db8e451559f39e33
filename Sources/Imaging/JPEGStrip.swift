import Foundation

/// A JPEG's own compressed data without its metadata: for a photo that needs no pixel change (within the
/// canonical size, upright, no colour profile to convert from), the canonical rendition is the upload's
/// scans as they are, with every APPn segment but JFIF (APP0) and Adobe's colour transform (APP14), every
/// comment and everything after the end-of-image marker left out. The pixels are exactly those the strict
/// decode checked, nothing is lost to a second compression, and no encoder runs (about a tenth of the CPU
/// an upload of a small phone photo costs).
public enum JPEGStrip {
    /// The stripped bytes, or nil when `data` is not a JPEG this applies to: other than 8-bit, three
    /// components, Huffman-coded (baseline, extended or progressive); carrying an ICC profile (its pixels
    /// need converting to sRGB); or not well formed.
    public static func metadataFree(_ data: Data) -> Data? {
        data.withUnsafeBytes { raw -> Data? in
            let b = raw.bindMemory(to: UInt8.self)
            let n = b.count
            guard n >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
            var out = Data([0xFF, 0xD8])
            out.reserveCapacity(n)
            var i = 2
            var frame = false
            while i < n {
                // A marker: 0xFF (any number of fill bytes), then its code.
                guard b[i] == 0xFF else { return nil }
                while i < n, b[i] == 0xFF { i += 1 }
                guard i < n else { return nil }
                let code = b[i]
                i += 1
                if code == 0xD9 {  // end of image: anything after it is left out
                    out.append(contentsOf: [0xFF, 0xD9])
                    return frame ? out : nil
                }
                if (0xD0...0xD7).contains(code) || code == 0x01 { return nil }  // no lone RSTn or TEM outside a scan
                guard i + 2 <= n else { return nil }
                let length = Int(b[i]) << 8 | Int(b[i + 1])
                guard length >= 2, i + length <= n else { return nil }
                let segment = UnsafeBufferPointer(rebasing: b[(i - 2)..<(i + length)])
                switch code {
                case 0xC0, 0xC1, 0xC2:  // start of frame: Huffman baseline, extended, progressive
                    guard length >= 8, b[i + 2] == 8, b[i + 7] == 3, !frame else { return nil }
                    frame = true
                    out.append(contentsOf: segment)
                case 0xC3, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF:  // lossless, hierarchical, arithmetic
                    return nil
                case 0xE2 where length >= 14 && memcmp(b.baseAddress! + i + 2, "ICC_PROFILE", 11) == 0:
                    return nil
                case 0xE0 where length >= 7 && memcmp(b.baseAddress! + i + 2, "JFIF\0", 5) == 0,
                     0xEE where length >= 7 && memcmp(b.baseAddress! + i + 2, "Adobe", 5) == 0,
                     0xC4, 0xCC, 0xDB, 0xDD:  // JFIF (not its JFXX thumbnail), Adobe's colour transform, tables, restart interval
                    out.append(contentsOf: segment)
                case 0xDA:  // start of scan: the header, then entropy-coded bytes up to the next marker
                    guard frame else { return nil }
                    out.append(contentsOf: segment)
                    var j = i + length
                    while j + 1 < n, !(b[j] == 0xFF && b[j + 1] != 0x00 && !(0xD0...0xD7).contains(b[j + 1])) { j += 1 }
                    guard j + 1 < n else { return nil }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: b[(i + length)..<j]))
                    i = j
                    continue
                case 0xE0...0xEF, 0xFE:  // other APPn (EXIF, XMP, IPTC, MPF, JFXX thumbnails, …) and comments
                    break
                default:
                    return nil
                }
                i += length
            }
            return nil
        }
    }
}
