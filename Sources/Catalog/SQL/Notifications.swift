import Foundation
import Synchronization

/// Tasks waiting for a notification on a channel, woken all at once when one arrives.
final class Notifications: Sendable {
    private let waiters = Mutex<[String: [UUID: CheckedContinuation<Void, Never>]]>([:])

    /// Wakes every task waiting on `channel`.
    func signal(_ channel: String) {
        let woken = waiters.withLock { $0.removeValue(forKey: channel) ?? [:] }
        for continuation in woken.values { continuation.resume() }
    }

    /// Returns when `channel` is signalled or `timeout` has passed, whichever comes first.
    func wait(_ channel: String, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.next(channel) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func next(_ channel: String) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Registered under the lock that `onCancel` takes: a wait cancelled before it registers resumes at once.
                let cancelled = waiters.withLock { waiters in
                    if Task.isCancelled { return true }
                    waiters[channel, default: [:]][id] = continuation
                    return false
                }
                if cancelled { continuation.resume() }
            }
        } onCancel: {
            waiters.withLock { $0[channel]?.removeValue(forKey: id) }?.resume()
        }
    }
}
