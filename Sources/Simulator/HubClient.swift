import AsyncHTTPClient
import Foundation
import HubCore
import NIOCore
import NIOHTTP1

/// The hub's HTTP API as a phone uses it, over one shared AsyncHTTPClient.
struct HubClient: Sendable {
    let http: HTTPClient
    let base: String
    let key: String
    let timeout: TimeAmount
    /// Counts every request sent (`requests` in the report).
    let tally: Tally

    /// An answer: status, headers and the body (small JSON here).
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        /// `error.code` of an error body.
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        /// `Retry-After` in seconds, if the answer has one.
        var retryAfter: Double? { headers.first(name: "Retry-After").flatMap(Double.init) }
    }

    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: path.hasPrefix("http") ? path : base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = body
        tally.update { $0.requests += 1 }
        let response = try await http.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 4 * 1024 * 1024)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
    }

    func json(_ method: HTTPMethod, _ path: String, _ object: [String: Any]) async throws -> Answer {
        let data = try JSONSerialization.data(withJSONObject: object)
        return try await send(method, path, headers: [("Content-Type", "application/json")], body: .bytes(ByteBuffer(bytes: data)))
    }

    /// Every label name on the hub (the tree flattened).
    func labelNames() async throws -> Set<String> {
        let answer = try await send(.GET, "/v1/labels")
        guard answer.status == 200 else { throw Self.failure("GET /v1/labels", answer) }
        var names = Set<String>()
        func walk(_ nodes: [[String: Any]]) {
            for node in nodes {
                if let name = node["name"] as? String { names.insert(name) }
                walk(node["children"] as? [[String: Any]] ?? [])
            }
        }
        walk(answer.json["labels"] as? [[String: Any]] ?? [])
        return names
    }

    /// Where the images with these ids stand: id → (status, reasons); unknown ids are absent.
    /// The photos the hub's collection quests want, summed per label.
    func questWants() async throws -> [String: Int] {
        let answer = try await send(.GET, "/v1/quests")
        guard answer.status == 200 else { throw Self.failure("GET /v1/quests", answer) }
        var wants: [String: Int] = [:]
        for quest in answer.json["quests"] as? [[String: Any]] ?? [] {
            if let label = quest["label"] as? String, let want = quest["want"] as? Int { wants[label, default: 0] += want }
        }
        return wants
    }

    func statuses(_ ids: [String]) async throws -> [String: (status: String, reasons: [String])] {
        let answer = try await send(.GET, "/v1/images?ids=" + ids.joined(separator: ","))
        guard answer.status == 200 else { throw Self.failure("GET /v1/images?ids=", answer) }
        var out: [String: (String, [String])] = [:]
        for image in answer.json["images"] as? [[String: Any]] ?? [] {
            if let id = image["id"] as? String, let status = image["status"] as? String {
                out[id] = (status, image["reasons"] as? [String] ?? [])
            }
        }
        return out
    }

    static func failure(_ what: String, _ answer: Answer) -> HubError {
        HubError(answer.status, answer.errorCode ?? "http.\(answer.status)",
                 "\(what) answered \(answer.status): \(String(decoding: answer.body.prefix(300), as: UTF8.self))")
    }
}

/// A request body sent in chunks. With `cutAfter`, the phone's connection drops after that many bytes:
/// the chunks before it are on the wire, then the body fails and the client closes the connection.
struct ChunkedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: ByteBuffer
    let chunkSize: Int
    let cutAfter: Int?

    struct ConnectionCut: Error {}

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: ChunkedBody
        var offset = 0

        mutating func next() async throws -> ByteBuffer? {
            let end = Swift.min(body.bytes.readableBytes, body.cutAfter ?? .max)
            if offset >= end {
                guard body.cutAfter != nil else { return nil }
                // Give the bytes already written time to reach the server, as they would before a real drop.
                try await Task.sleep(for: .milliseconds(20))
                throw ConnectionCut()
            }
            let length = Swift.min(body.chunkSize, end - offset)
            defer { offset += length }
            return body.bytes.getSlice(at: body.bytes.readerIndex + offset, length: length)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }

    /// As a request body with its length announced (`Content-Length`), as phones send uploads.
    var requestBody: HTTPClientRequest.Body { .stream(self, length: .known(Int64(bytes.readableBytes))) }
}
