import Foundation
import Synchronization

/// Requests that wait for an image's verdict (`Prefer: wait=N`). A waiter holds no thread: it is a
/// continuation, resumed when this process commits the image's verdict (`finished`) or when its pause runs
/// out, whichever comes first; the caller then reads the catalog again (a verdict committed on another node
/// is seen at the next look).
public final class VerdictWaiters: Sendable {
    private let waiting = Mutex<[String: [UUID: CheckedContinuation<Void, Never>]]>([:])

    public init() {}

    /// Returns when `finished(imageId)` is called or `limit` has passed.
    public func pause(for imageId: String, upTo limit: Duration) async {
        let token = UUID()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiting.withLock { $0[imageId, default: [:]][token] = continuation }
            Task {
                try? await Task.sleep(for: limit)
                self.resume(imageId, token)
            }
        }
    }

    /// The verdict of `imageId` is committed: every request waiting for it goes on.
    public func finished(_ imageId: String) {
        let continuations = waiting.withLock { $0.removeValue(forKey: imageId) }
        continuations?.values.forEach { $0.resume() }
    }

    /// How many requests wait now (tests and metrics).
    public var count: Int { waiting.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    private func resume(_ imageId: String, _ token: UUID) {
        let continuation = waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            let continuation = waiting[imageId]?.removeValue(forKey: token)
            if waiting[imageId]?.isEmpty == true { waiting[imageId] = nil }
            return continuation
        }
        continuation?.resume()
    }
}
