import Foundation

/// Builds `multipart/form-data` bodies the way a phone's HTTP client would (the simulator's phones and the tests).
public struct MultipartBody: Sendable {
    public let boundary = "----imagehub-\(UUID().uuidString)"
    public private(set) var data = Data()

    public init() {}

    /// The `Content-Type` header value.
    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    public mutating func field(_ name: String, _ value: String) {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }

    public mutating func file(_ name: String = "file", filename: String = "photo.jpg", type: String = "image/jpeg", _ bytes: Data) {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(type)\r\n\r\n".utf8))
        data.append(bytes)
        data.append(Data("\r\n".utf8))
    }

    /// The finished body.
    public func closed() -> Data { data + Data("--\(boundary)--\r\n".utf8) }

    /// An upload body with a file and form fields.
    public static func upload(_ bytes: Data, label: String, fields: [String: String] = [:], filename: String = "photo.jpg") -> MultipartBody {
        var body = MultipartBody()
        body.field("label", label)
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) { body.field(k, v) }
        body.file(filename: filename, bytes)
        return body
    }
}
