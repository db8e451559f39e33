import Foundation
import HubCore
import Histogram
import Synchronization

/// Everything the virtual phones and the status poller count, shared by all of them.
final class Tally: Sendable {
    struct State {
        var sent = 0
        var acknowledged = 0
        var acknowledgedExisting = 0
        var refused: [String: Int] = [:]
        var gaveUp = 0
        var cuts = 0
        var resumes = 0
        var bytesKept = 0
        var backpressureWaits = 0
        var transportErrors = 0
        var requests = 0
        var bytesAcknowledged = 0
        /// Uploads whose answer carried their verdict (`Prefer: wait`).
        var answeredWithVerdict = 0
        /// Microseconds, up to an hour, 3 significant digits.
        var acknowledgement = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var finalStatus = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        /// Acknowledged images not yet seen in a final status, with their upload's start.
        var pending: [String: ContinuousClock.Instant] = [:]
        /// Images seen in a final status: id → outcome (`accepted`, `quarantined duplicate.near`, …).
        var finals: [String: String] = [:]
        /// Set when the phones have finished uploading.
        var loadOver = false
    }

    let state = Mutex(State())

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }

    /// An acknowledged upload: its latency, and its image to follow until it is final.
    func acknowledged(id: String, existing: Bool, bytes: Int, start: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        state.withLock { s in
            s.acknowledged += 1
            if existing { s.acknowledgedExisting += 1 }
            s.bytesAcknowledged += bytes
            _ = s.acknowledgement.record(Self.microseconds(now - start))
            if s.finals[id] == nil, s.pending[id] == nil { s.pending[id] = start }
        }
    }

    /// An upload answered with its verdict (`Prefer: wait` honoured): acknowledged and final at once.
    func answered(id: String, outcome: String, bytes: Int, start: ContinuousClock.Instant) {
        acknowledged(id: id, existing: false, bytes: bytes, start: start)
        state.withLock { $0.answeredWithVerdict += 1 }
        finished([id: outcome])
    }

    /// Images seen in a final status by the poller.
    func finished(_ outcomes: [String: String]) {
        let now = ContinuousClock.now
        state.withLock { s in
            for (id, outcome) in outcomes {
                guard let start = s.pending.removeValue(forKey: id) else { continue }
                s.finals[id] = outcome
                _ = s.finalStatus.record(Self.microseconds(now - start))
            }
        }
    }

    var pendingIds: [String] { state.withLock { Array($0.pending.keys) } }

    static func microseconds(_ d: Duration) -> UInt64 { UInt64(max(0, d.seconds * 1_000_000)) }
}
