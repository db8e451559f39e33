import Foundation
import HubCore
import Synchronization
import Testing

@Suite struct OffloadTests {
    final class Count: Sendable { let value = Atomic<Int>(0) }

    @Test("blocking work runs beside other blocking work, more of it at once than there are cores")
    func blockingWorkIsNotLimitedToTheCoreCount() async throws {
        // Each body blocks until every one of them has started: with a pool one thread per core wide (the
        // global dispatch queue on Linux), they would wait out the deadline instead.
        let n = 12
        let started = Count()
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<n {
                group.addTask {
                    try await offload {
                        started.value.add(1, ordering: .relaxed)
                        let deadline = Date().addingTimeInterval(3)
                        while started.value.load(ordering: .relaxed) < n, Date() < deadline { usleep(1_000) }
                        return started.value.load(ordering: .relaxed) == n
                    }
                }
            }
            for try await allStarted in group { #expect(allStarted) }
        }
    }

    @Test("pipeline work runs at a lower OS priority than request handling")
    func processingThreadsAreNicer() async throws {
        let request = try await offload { currentThreadNiceness() }
        let processing = try await offloadProcessing { currentThreadNiceness() }
        #expect(processing >= processingNiceness && processing > request, "request \(request), processing \(processing)")
        // A thread the processing work starts inherits its niceness (libtorch's threads among them).
        let child = try await offloadProcessing {
            let value = Mutex<Int32>(0)
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                value.withLock { $0 = currentThreadNiceness() }
                done.signal()
            }
            done.wait()
            return value.withLock { $0 }
        }
        #expect(child >= processingNiceness)
        #expect(try await offload { currentThreadNiceness() } == request, "request threads keep their priority")
    }

    @Test("side by side: both pieces run at once, the second on a nicer thread of its own, and errors come back")
    func sideBySideRunsBothAtOnce() throws {
        // Each piece waits for the other to have started: run one after the other, they would time out.
        let started = Count()
        let niceness = Mutex<Int32>(0)
        let meet: @Sendable () -> Bool = {
            started.value.add(1, ordering: .relaxed)
            let deadline = Date().addingTimeInterval(3)
            while started.value.load(ordering: .relaxed) < 2, Date() < deadline { usleep(1_000) }
            return started.value.load(ordering: .relaxed) == 2
        }
        let met = Mutex<[Bool]>([])
        let caller = pthread_self()
        try sideBySide({ met.withLock { $0.append(meet()) } }, {
            let together = meet()
            met.withLock { $0.append(together && pthread_equal(pthread_self(), caller) == 0) }
            niceness.withLock { $0 = currentThreadNiceness() }
        })
        #expect(met.withLock { $0 } == [true, true])
        #expect(niceness.withLock { $0 } >= processingNiceness)
        struct Boom: Error {}
        #expect(throws: Boom.self) { try sideBySide({}, { throw Boom() }) }
        #expect(throws: Boom.self) { try sideBySide({ throw Boom() }, {}) }
    }

    @Test func errorsComeBackToTheCaller() async {
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await offload { throw Boom() } }
    }
}
