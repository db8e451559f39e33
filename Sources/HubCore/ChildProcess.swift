import Foundation
import Synchronization

/// A child process whose standard error is kept as it arrives (a hub node's log), for the benchmarks and
/// tests that run `imagehub serve` as real processes.
public final class ChildProcess: Sendable {
    public let process: Process
    final class Log: Sendable { let text = Mutex("") }
    private let log = Log()

    /// Starts `executable`; its standard output is dropped, its standard error kept.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [log] handle in
            let data = handle.availableData
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }  // the process has exited
            log.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        self.process = process
    }

    /// What the process has written to standard error so far.
    public var logText: String { log.text.withLock { $0 } }

    /// The port a hub logged with "listening on http://HOST:PORT" (it may have been asked for port 0).
    public var listeningPort: Int? {
        log.text.withLock { text in
            text.range(of: #"listening on http://[^:\s]+:(\d+)"#, options: .regularExpression)
                .flatMap { Int(text[$0].split(separator: ":").last ?? "") }
        }
    }

    /// Runs `executable` to its end on the calling thread: its exit status and standard output (with
    /// standard error too when `mergeErrors`).
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                           mergeErrors: Bool = false) throws -> (status: Int32, output: Data) {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        if mergeErrors { p.standardError = out }
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, data)
    }
}
