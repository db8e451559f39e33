import Foundation
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
