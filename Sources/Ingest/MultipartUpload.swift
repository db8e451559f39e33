import BlobStore
import Crypto
import Foundation
import HubCore
import Imaging
import MultipartKit
import NIOCore
import Verify

/// A multipart upload received in full: its form fields and the file part on disk, hashed.
public struct ReceivedUpload: Sendable {
    public var fields: [String: String]
    public var file: URL
    public var sha256: String
    public var size: Int
}

/// Streams a `multipart/form-data` body: the `file` part goes to a temporary file (hashed on the way,
/// its format sniffed from the first bytes so a disallowed type is refused at once), other parts are
/// small text fields. Never holds the whole body in memory.
public final class MultipartUpload {
    /// Largest accepted text field, in bytes.
    public static let maxFieldBytes = 4096

    private let parser: MultipartParser
    private let verifier: Verifier
    private let maxBytes: Int
    private let tempFile: URL
    private var handle: FileHandle?
    private var hasher = SHA256()
    private var fileSize = 0
    private var received = 0
    private var sniffBuffer: [UInt8] = []
    /// The parser hands over body bytes between CR bytes (~256 bytes of binary data): gather them
    /// and write in large chunks.
    private var pending: [UInt8] = []
    private static let flushSize = 256 * 1024
    private var sniffed = false
    private var headers: [String: String] = [:]
    private var currentName: String?
    private var currentIsFile = false
    private var fieldValue: [UInt8] = []
    private var fields: [String: String] = [:]
    private var fileComplete = false
    private var failure: Error?

    /// Prepares to receive a body with `contentType` (which must carry the multipart boundary).
    public init(contentType: String?, verifier: Verifier, blobs: any BlobStore, maxBytes: Int) throws {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = MultipartUpload.boundary(of: contentType) else {
            throw HubError(400, "multipart.malformed", "expected multipart/form-data with a boundary")
        }
        self.parser = MultipartParser(boundary: boundary)
        self.verifier = verifier
        self.maxBytes = maxBytes
        self.tempFile = blobs.temporaryFile()
        parser.onHeader = { [unowned self] name, value in headers[name.lowercased()] = value }
        parser.onBody = { [unowned self] buffer in body(&buffer) }
        parser.onPartComplete = { [unowned self] in partComplete() }
    }

    deinit {
        try? handle?.close()
        if failure != nil || !fileComplete { try? FileManager.default.removeItem(at: tempFile) }
    }

    /// Feeds the next chunk of the request body.
    public func consume(_ buffer: ByteBuffer) throws {
        received += buffer.readableBytes
        if received > maxBytes + 64 * 1024 {
            failure = HubError(413, "upload.too_large", "the upload exceeds \(maxBytes) bytes")
        }
        if failure == nil {
            do { try parser.execute(buffer) } catch {
                failure = HubError(400, "multipart.malformed", "the multipart body could not be parsed")
            }
        }
        if let failure { throw failure }
    }

    /// Ends the body: the file part must be complete. The file is fsynced before this returns.
    public func finish() throws -> ReceivedUpload {
        if let failure { throw failure }
        guard fileComplete, let handle else {
            throw HubError(400, "multipart.missing_file", "the multipart body has no complete `file` part")
        }
        try handle.synchronize()
        try handle.close()
        self.handle = nil
        return ReceivedUpload(fields: fields, file: tempFile, sha256: hasher.finalize().hexString, size: fileSize)
    }

    private func body(_ buffer: inout ByteBuffer) {
        guard failure == nil else { return }
        if currentName == nil { startPart() }
        if currentIsFile {
            writeFile(buffer.readableBytesView)
        } else {
            fieldValue += buffer.readBytes(length: buffer.readableBytes) ?? []
            if fieldValue.count > MultipartUpload.maxFieldBytes {
                failure = HubError(400, "field.too_long", "field `\(currentName ?? "")` exceeds \(MultipartUpload.maxFieldBytes) bytes")
            }
        }
    }

    private func startPart() {
        let disposition = headers["content-disposition"] ?? ""
        let name = MultipartUpload.parameter("name", in: disposition) ?? ""
        currentName = name
        currentIsFile = name == "file"
        if currentIsFile {
            if handle != nil || fileComplete {
                failure = HubError(400, "multipart.malformed", "more than one `file` part")
                return
            }
            _ = FileManager.default.createFile(atPath: tempFile.path, contents: nil)  // the handle below says whether it worked
            handle = try? FileHandle(forWritingTo: tempFile)
            if handle == nil { failure = HubError(500, "internal.io", "cannot create a temporary file") }
        }
    }

    private func writeFile(_ bytes: ByteBufferView) {
        fileSize += bytes.count
        if fileSize > maxBytes {
            failure = HubError(413, "upload.too_large", "the file exceeds \(maxBytes) bytes")
            return
        }
        if !sniffed {
            sniffBuffer += bytes.prefix(ImageFormat.sniffLength - sniffBuffer.count)
            if sniffBuffer.count >= ImageFormat.sniffLength { sniff() }
        }
        pending.append(contentsOf: bytes)
        if pending.count >= Self.flushSize { flush() }
    }

    private func flush() {
        guard !pending.isEmpty, failure == nil else { return }
        hasher.update(data: pending)
        do { try handle?.write(contentsOf: pending) } catch { failure = HubError(500, "internal.io", "writing the upload failed: \(error)") }
        pending.removeAll(keepingCapacity: true)
    }

    private func sniff() {
        sniffed = true
        do { _ = try verifier.checkFormat(leadingBytes: sniffBuffer) } catch let r as Rejection {
            failure = HubError(r.code == "format.empty" ? 400 : 415, r.code, r.message)
        } catch { failure = error }
    }

    private func partComplete() {
        defer { headers = [:]; currentName = nil; currentIsFile = false; fieldValue = [] }
        if currentName == nil { startPart() }
        guard failure == nil, let name = currentName else { return }
        if currentIsFile {
            if !sniffed { sniff() }
            flush()
            fileComplete = failure == nil
        } else if !name.isEmpty {
            guard let text = String(bytes: fieldValue, encoding: .utf8) else {
                failure = HubError(400, "field.invalid", "field `\(name)` is not UTF-8 text")
                return
            }
            fields[name] = text
        }
    }

    /// The `boundary` parameter of a multipart content type.
    public static func boundary(of contentType: String) -> String? {
        parameter("boundary", in: contentType).flatMap { $0.isEmpty ? nil : $0 }
    }

    static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let kv = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0].lowercased() == key {
                return kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }
}
