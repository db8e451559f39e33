import Foundation
import Synchronization
import NIOPosix

/// The threads blocking work runs on. Not `DispatchQueue.global()`: on Linux that runs about one block
/// per core, so four pipeline workers on two cores ran two jobs at a time, and a core sat idle whenever a
/// job waited on an fsync, a SQLite lock or a libvips worker thread (`bench ingest`: 42 img/s with the
/// global queue; docs/benchmarks.md has the figure with this pool). The pool is wider than any worker count
/// we configure; how much runs at once is bounded by the callers (pipeline workers, requests in flight).
private let blockingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: max(16, 4 * ProcessInfo.processInfo.activeProcessorCount))
    pool.start()
    return pool
}()

/// Runs blocking work (libvips, SQLite, fsync) off Swift's cooperative pool, whose few threads
/// must stay free for request handling.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        // The pool is never shut down, so every item runs (`state` is always `.active`).
        blockingPool.submit { _ in continuation.resume(with: Result { try body() }) }
    }
}

/// The threads pipeline work runs on: decoding, renditions, embedding, verdicts. Apart from `blockingPool`
/// so that request handling never queues behind it, and at a lower OS priority (see `offloadProcessing`).
private let processingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: max(16, 4 * ProcessInfo.processInfo.activeProcessorCount))
    pool.start()
    return pool
}()

/// How much nicer than request handling the processing threads are (Linux `nice`, per thread).
public let processingNiceness: Int32 = 10

/// Runs pipeline work off Swift's cooperative pool on a thread of lower OS priority than request handling:
/// when an API node and a worker share cores (or one process does both), the scheduler serves an
/// upload's acknowledgement before the next photo's pixels. On Linux `nice` is per thread, so each item
/// sets its own thread's (threads it starts, libtorch's among them, inherit it).
public func offloadProcessing<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        processingPool.submit { _ in
            lowerThreadPriority()
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Runs `other` on a thread of its own, at the processing threads' niceness, while `body` runs on the calling
/// thread; returns once both have, rethrowing `body`'s error, else `other`'s. For two independent pieces of
/// background work on a node with a core to spare (not Dispatch's pool: its threads also run Swift's tasks,
/// request handling among them, and would keep the lowered priority).
public func sideBySide(_ body: () throws -> Void, _ other: @escaping @Sendable () throws -> Void) throws {
    let otherError = Mutex<(any Error)?>(nil), done = DispatchSemaphore(value: 0)
    let thread = Thread {
        lowerThreadPriority()
        do { try other() } catch { otherError.withLock { $0 = error } }
        done.signal()
    }
    thread.name = "side by side"
    thread.start()
    var failure: (any Error)?
    do { try body() } catch { failure = error }
    done.wait()
    if let failure { throw failure }
    if let error = otherError.withLock({ $0 }) { throw error }
}

/// Gives the calling thread the processing threads' niceness (no-op where it already has it).
public func lowerThreadPriority() {
    #if os(Linux)
    // Who 0 is the calling thread: under NPTL the nice value belongs to the thread, not the process.
    if getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) < processingNiceness {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, processingNiceness)
    }
    #endif
}

/// The calling thread's niceness (tests check which pool a piece of work ran on).
public func currentThreadNiceness() -> Int32 {
    #if os(Linux)
    return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    #else
    return 0
    #endif
}
