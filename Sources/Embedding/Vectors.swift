import Foundation

/// Small vector helpers for unit-length embeddings (cosine similarity = dot product).
public enum Vectors {
    /// Scales `v` to unit length (left as is when it is all zeros).
    public static func normalize(_ v: inout [Float]) {
        let norm = dot(v, v).squareRoot()
        guard norm > 0 else { return }
        for i in v.indices { v[i] /= norm }
    }

    /// The dot product of two vectors of the same length.
    @inline(__always)
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in dot(x.baseAddress!, y.baseAddress!, x.count) } }
    }

    /// The dot product over raw memory, eight lanes at a time.
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        while i + 8 <= n {
            acc += rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                * ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var sum = acc.sum()
        while i < n {
            sum += x[i] * y[i]
            i += 1
        }
        return sum
    }

    /// Half-precision bytes for storage (1280 floats → 2560 bytes).
    public static func encode(_ v: [Float]) -> Data {
        let half = v.map { Float16($0) }
        return half.withUnsafeBytes { Data($0) }
    }

    /// The inverse of `encode`.
    public static func decode(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in raw.bindMemory(to: Float16.self).map { Float($0) } }
    }
}
