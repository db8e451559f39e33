import Foundation
import HubCore

/// Batches embedding requests from concurrent jobs: a batch runs when `batchSize` requests wait or when
/// the oldest has waited `maxWait`, whichever comes first; requests arriving while the backbone's lanes are
/// all busy form the next batch. As many batches run at once as the backbone has lanes (OpenVINO's streams,
/// each on its share of the threads; libtorch: one, using every configured thread inside it).
public actor Embedder {
    public let backbone: Backbone
    public let batchSize: Int
    public let maxWait: Duration

    private struct Request {
        let input: [Float]
        let continuation: CheckedContinuation<Embedding, any Error>
    }
    private var pending: [Request] = []
    private var running = 0
    private var timerArmed = false
    /// Sizes of the batches run so far, and the most that ran at once (the benchmark and tests read them).
    public private(set) var batchSizes: [Int] = []
    public private(set) var mostAtOnce = 0

    public init(backbone: Backbone, batchSize: Int = 32, maxWait: Duration = .milliseconds(10)) {
        self.backbone = backbone
        self.batchSize = max(1, batchSize)
        self.maxWait = maxWait
    }

    /// The embedding of one model input (`backbone.input.count` floats, see `Image.modelInput`).
    public func embed(_ input: [Float]) async throws -> Embedding {
        guard input.count == backbone.input.count else {
            throw BackboneError(description: "model input has \(input.count) floats, expected \(backbone.input.count)")
        }
        return try await withCheckedThrowingContinuation { continuation in
            pending.append(Request(input: input, continuation: continuation))
            if pending.count >= batchSize {
                startIfIdle()
            } else if !timerArmed && running < laneCount {
                timerArmed = true
                Task { [maxWait] in
                    try? await Task.sleep(for: maxWait)
                    self.deadlinePassed()
                }
            }
        }
    }

    private func deadlinePassed() {
        timerArmed = false
        startIfIdle()
    }

    /// The backbone's lanes; one while it still loads in the background (asking would wait for the load
    /// inside the actor).
    private var laneCount: Int { backbone.isLoaded ? backbone.lanes : 1 }

    private func startIfIdle() {
        guard running < laneCount, !pending.isEmpty else { return }
        running += 1
        mostAtOnce = max(mostAtOnce, running)
        let batch = Array(pending.prefix(batchSize))
        pending.removeFirst(batch.count)
        batchSizes.append(batch.count)
        let backbone = self.backbone
        Task {
            do {
                let embeddings = try await offloadProcessing { try backbone.embed(batch.map(\.input)) }
                for (request, embedding) in zip(batch, embeddings) { request.continuation.resume(returning: embedding) }
            } catch {
                for request in batch { request.continuation.resume(throwing: error) }
            }
            self.finished()
        }
    }

    private func finished() {
        running -= 1
        // Whatever arrived meanwhile has waited a whole batch already: run it now.
        startIfIdle()
    }
}
