import Foundation
import Imaging

/// Image files made with libvips for tests that must run without real photos.
public enum Fixtures {
    /// A photo-like image encoded as `format`; `seed` decides the content.
    public static func image(_ format: ImageFormat = .jpeg, width: Int = 640, height: Int = 480, seed: Int = 1) throws -> Data {
        Vips.start()
        return try Synthetic.photo(width: width, height: height, seed: seed).encoded(as: format, quality: 90)
    }

    /// `jpeg` with a JFIF APP0 segment of revision 2.1 right after SOI: libjpeg warns "unknown JFIF revision
    /// number" and decodes on (a `decode.warning`, not corruption).
    public static func withJFIFWarning(_ jpeg: Data) -> Data {
        let app0: [UInt8] = [0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0x00, 0x02, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]
        return jpeg.prefix(2) + Data(app0) + jpeg.dropFirst(2)
    }

    /// A flat grey PNG: tiny on the wire, but every one of its pixels must be decoded (slow work for a worker).
    public static func flatPNG(width: Int, height: Int, value: UInt8) throws -> Data {
        Vips.start()
        return try Image.fromPixels([UInt8](repeating: value, count: width * height), width: width, height: height, bands: 1)
            .encoded(as: .png)
    }

    /// A JPEG that displays as a landscape image, dark on its left half and bright on its right, but whose
    /// pixels are stored turned, with the EXIF orientation tag saying how to turn them back (1, 3, 6 or 8).
    public static func rotatedJPEG(orientation: Int, width: Int = 400, height: Int = 200) throws -> Data {
        Vips.start()
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let v: UInt8 = x < width / 2 ? 30 : 220
                let grain = UInt8((x * 7 + y * 13) % 17)
                for c in 0..<3 { pixels[(y * width + x) * 3 + c] = v &+ grain }
            }
        }
        let upright = try Image.fromPixels(pixels, width: width, height: height, bands: 3)
        // Orientation 6 means "turn 90° clockwise to display", so the stored pixels are turned the other way
        // (8: counter-clockwise, 3: half a turn, 1: as stored).
        let stored = try upright.rotated(quarterTurns: [1: 0, 3: 2, 6: 3, 8: 1][orientation] ?? 0)
        return try stored.withOrientation(orientation).jpegKeepingMetadata()
    }

    /// A valid PNG whose header is rewritten to declare `width` × `height` (a decompression bomb's header).
    public static func pngDeclaring(width: Int, height: Int) throws -> Data {
        var png = [UInt8](try image(.png, width: 64, height: 64))
        // IHDR data starts at byte 16: width and height as big-endian 32-bit integers, then its CRC at 29.
        for (offset, value) in [(16, width), (20, height)] {
            for i in 0..<4 { png[offset + i] = UInt8((value >> (24 - 8 * i)) & 0xFF) }
        }
        let crc = crc32(png[12..<29])
        for i in 0..<4 { png[29 + i] = UInt8((crc >> (24 - 8 * UInt32(i))) & 0xFF) }
        return Data(png)
    }

    /// CRC-32 as PNG chunks use it.
    static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    /// `data` with bytes in the middle of the JPEG scan overwritten (deterministically): some flipped,
    /// some turned into stray restart markers, the damage a bad flash sector or a buggy proxy leaves.
    /// libjpeg reports it only as a warning ("Corrupt JPEG data") and would decode garbage.
    public static func flippedScan(_ data: Data, count: Int = 8) -> Data {
        var bytes = [UInt8](data)
        let start = bytes.count / 2
        for i in 0..<count {
            bytes[start + i * 97] = 0xFF
            bytes[start + i * 97 + 1] = 0xD3
            bytes[start + i * 97 + 2] ^= 0x5A
        }
        return Data(bytes)
    }
}
