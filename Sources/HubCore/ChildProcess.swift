import Foundation
import Synchronization

/// A child process for the benchmarks and tests that run `imagehub serve` (and other programs) as real
/// processes: its standard error is kept as it arrives (a hub node's log).
///
/// Spawned with `posix_spawn` and reaped with `waitpid` on its own pid, never through Foundation's
/// `Process`, which sometimes never sees a child end while the process holds several others (a test then
/// waits forever). Every wait here has a time limit.
public final class ChildProcess: Sendable {
    public let processIdentifier: pid_t
    final class Log: Sendable { let text = Mutex("") }
    private let log = Log()
    /// The raw `waitpid` status once the child has been reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable`; its standard output is dropped, its standard error kept.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        let (read, write) = try ChildProcess.pipe()
        do {
            processIdentifier = try ChildProcess.spawn(executable, arguments, environment: environment, stdout: nil, stderr: write)
        } catch {
            close(read); close(write)
            throw error
        }
        close(write)
        let log = self.log
        Thread.detachNewThread {
            ChildProcess.drain(read) { data in log.text.withLock { $0 += String(decoding: data, as: UTF8.self) } }
            close(read)
        }
    }

    /// A child nobody holds any more is not left running (a test that failed half-way).
    deinit {
        if isRunning {
            kill(processIdentifier, SIGKILL)
            _ = waitUntilExit(timeout: 10)
        }
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

    /// Whether the child has not ended yet (reaps it when it has).
    public var isRunning: Bool {
        reaped.withLock { status in
            guard status == nil else { return false }
            var raw: Int32 = 0
            let result = waitpid(processIdentifier, &raw, WNOHANG)
            if result == processIdentifier || (result == -1 && errno == ECHILD) { status = result == -1 ? 0 : raw }
            return status == nil
        }
    }

    /// SIGTERM: a hub drains and exits.
    public func terminate() { if isRunning { kill(processIdentifier, SIGTERM) } }

    /// SIGKILL: no chance to clean up.
    public func kill9() { if isRunning { kill(processIdentifier, SIGKILL) } }

    /// Waits until the child has ended, at most `timeout` seconds; false when it is still running.
    @discardableResult
    public func waitUntilExit(timeout: Double = 120) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// The exit status of a child that exited; nil while it runs or when a signal ended it.
    public var exitStatus: Int32? {
        guard !isRunning, let raw = reaped.withLock({ $0 }) else { return nil }
        return raw & 0x7F == 0 ? ChildProcess.status(raw) : nil
    }

    /// Runs `executable` to its end on the calling thread: its exit status (128 + the signal's number when
    /// a signal ended it) and standard output (with standard error too when `mergeErrors`). Past `timeout`
    /// seconds the child is killed and this throws. Output a grandchild keeps writing after the child has
    /// ended (a daemon that inherited the pipe) is not waited for.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                           mergeErrors: Bool = false, timeout: Double = 900) throws -> (status: Int32, output: Data) {
        let (read, write) = try pipe()
        let pid: pid_t
        do {
            pid = try spawn(executable, arguments, environment: environment, stdout: write, stderr: mergeErrors ? write : 2)
        } catch {
            close(read); close(write)
            throw error
        }
        close(write)
        defer { close(read) }
        var output = Data()
        var raw: Int32 = 0
        var ended = false
        let deadline = Date().addingTimeInterval(timeout)
        func killed() -> HubError {
            kill(pid, SIGKILL)
            while waitpid(pid, &raw, 0) == -1, errno == EINTR {}
            return HubError(500, "process.timeout", "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) ran past \(Int(timeout)) s")
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var poller = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 100)
            if ready > 0 {
                let n = Foundation.read(read, &buffer, buffer.count)
                if n > 0 { output.append(contentsOf: buffer[0..<n]); continue }
                if n == 0 { break }                                   // end of output: every writer has closed it
                if errno == EINTR || errno == EAGAIN { continue }
                break
            }
            // Nothing to read for a while: the child may have ended while a grandchild holds the pipe open.
            if !ended, waitpid(pid, &raw, WNOHANG) == pid { ended = true }
            if ended {
                _ = fcntl(read, F_SETFL, fcntl(read, F_GETFL) | O_NONBLOCK)
                while case let n = Foundation.read(read, &buffer, buffer.count), n > 0 { output.append(contentsOf: buffer[0..<n]) }
                break
            }
            if Date() > deadline { throw killed() }
        }
        while !ended {
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid || (result == -1 && errno != EINTR) { break }
            if Date() > deadline { throw killed() }
            usleep(10_000)
        }
        return (status(raw), output)
    }

    /// What a whole process cost: its exit status, wall-clock seconds from spawn to exit, CPU seconds (user +
    /// system, its reaped children included) and peak resident memory in bytes (the largest of it and its
    /// children), from `wait4`.
    public struct Cost: Sendable {
        public var status: Int32
        public var seconds: Double
        public var cpuSeconds: Double
        public var peakRSS: Int
    }

    /// Runs `executable` to its end with its output thrown away, and says what it cost.
    public static func measure(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> Cost {
        let start = ContinuousClock.now
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(devNull) }
        let pid = try spawn(executable, arguments, environment: environment, stdout: nil, stderr: devNull)
        var raw: Int32 = 0
        var usage = rusage()
        while wait4(pid, &raw, 0, &usage) == -1, errno == EINTR {}
        let seconds = (ContinuousClock.now - start).seconds
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return Cost(status: status(raw), seconds: seconds, cpuSeconds: cpu, peakRSS: Int(usage.ru_maxrss) * 1024)
    }

    /// A `waitpid` status as a shell reports it: the exit status, or 128 + the signal's number.
    private static func status(_ raw: Int32) -> Int32 { raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F) }

    /// A pipe whose ends are closed in every other child (only the one spawned with it gets a copy).
    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard Foundation.pipe(&fds) == 0 else { throw HubError(500, "process.pipe", "pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    /// Spawns `executable` with standard input from /dev/null, standard output to `stdout` (nil: /dev/null)
    /// and standard error to `stderr`.
    private static func spawn(_ executable: URL, _ arguments: [String], environment: [String: String],
                              stdout: Int32?, stderr: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let stdout { posix_spawn_file_actions_adddup2(&actions, stdout, 1) } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        if stderr != 2 { posix_spawn_file_actions_adddup2(&actions, stderr, 2) }
        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + env).forEach { free($0) } }
        // The child starts with no signal blocked and every signal's default action, whatever this thread
        // blocks or ignores (the service lifecycle blocks SIGTERM and SIGINT to catch them): a Python pool
        // that stops its workers with SIGTERM would otherwise wait for them forever.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable.path, &actions, &attributes, argv, env)
        guard result == 0 else {
            throw HubError(500, "process.spawn", "cannot start \(executable.path): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Reads `fd` to its end, handing each chunk to `chunk`.
    private static func drain(_ fd: Int32, _ chunk: (Data) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Foundation.read(fd, &buffer, buffer.count)
            if n > 0 { chunk(Data(buffer[0..<n])); continue }
            if n == -1 && errno == EINTR { continue }
            return
        }
    }
}
