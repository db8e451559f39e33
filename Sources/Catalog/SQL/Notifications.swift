import Foundation
import Synchronization

/// Tasks waiting for a notification on a channel. A notification wakes one waiter, the one that has waited
/// longest: a new job is one job, and waking every idle worker for it would have all but one of them ask
/// the queue for nothing. A notification that finds nobody waiting is kept (one a channel) for the next
/// waiter, so a job announced just after a worker found the queue empty is not left to the slow poll; a
/// look at the queue that began after it arrived has seen that job, so it forgets the notification
/// (`looked`): a busy worker's next claim, not an idle one's wasted claim, answers it.
final class Notifications: Sendable {
    private struct Channel {
        var waiters: [(id: UUID, continuation: CheckedContinuation<Void, Never>)] = []
        /// When a notification arrived that no waiter took.
        var pending: ContinuousClock.Instant?
    }

    private let channels = Mutex<[String: Channel]>([:])

    /// Wakes the task that has waited longest on `channel`, or leaves the notification for the next one.
    func signal(_ channel: String) {
        let woken = channels.withLock { channels -> CheckedContinuation<Void, Never>? in
            if channels[channel, default: Channel()].waiters.isEmpty {
                channels[channel, default: Channel()].pending = .now
                return nil
            }
            return channels[channel]!.waiters.removeFirst().continuation
        }
        woken?.resume()
    }

    /// Someone looked at what `channel` announces (a claim) in a statement that began at `start`: a kept
    /// notification that arrived before then is answered.
    func looked(_ channel: String, at start: ContinuousClock.Instant) {
        channels.withLock { channels in
            if let pending = channels[channel]?.pending, pending < start { channels[channel]!.pending = nil }
        }
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
                let now = channels.withLock { channels -> Bool in
                    if Task.isCancelled { return true }
                    if channels[channel, default: Channel()].pending != nil {
                        channels[channel]!.pending = nil
                        return true
                    }
                    channels[channel, default: Channel()].waiters.append((id, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            channels.withLock { channels -> CheckedContinuation<Void, Never>? in
                guard let index = channels[channel]?.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return channels[channel]!.waiters.remove(at: index).continuation
            }?.resume()
        }
    }
}
