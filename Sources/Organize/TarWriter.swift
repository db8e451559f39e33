import Foundation

/// Writes a POSIX ustar archive entry by entry, so an export streams in constant memory.
/// (No tar library is among our dependencies; the format is a 512-byte header per entry.)
public enum TarWriter {
    /// The header and padding for one regular file of `size` bytes.
    public static func header(name: String, size: Int, modified: Date = Date()) -> Data {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ offset: Int, _ length: Int) {
            for (i, b) in s.utf8.prefix(length).enumerated() { h[offset + i] = b }
        }
        func octal(_ v: Int, _ offset: Int, _ length: Int) {
            put(String(String(v, radix: 8).suffix(length - 1)).leftPadded(to: length - 1), offset, length - 1)
        }
        var path = name, prefix = ""
        if path.utf8.count > 100, let cut = path.lastIndex(of: "/") {
            prefix = String(path[..<cut])
            path = String(path[path.index(after: cut)...])
        }
        put(path, 0, 100)
        octal(0o644, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(Int(modified.timeIntervalSince1970), 136, 12)
        put("        ", 148, 8)
        h[156] = UInt8(ascii: "0")
        put("ustar", 257, 6)
        put("00", 263, 2)
        put(prefix, 345, 155)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(String(sum, radix: 8)).leftPadded(to: 6), 148, 6)
        h[154] = 0
        h[155] = UInt8(ascii: " ")
        return Data(h)
    }

    /// Zero bytes that pad an entry of `size` bytes to the 512-byte block.
    public static func padding(for size: Int) -> Data {
        Data(count: (512 - size % 512) % 512)
    }

    /// The two zero blocks that end an archive.
    public static let end = Data(count: 1024)
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
