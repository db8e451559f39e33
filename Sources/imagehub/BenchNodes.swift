import ArgumentParser
import Catalog
import Foundation
import HubCore
import Simulator

/// One hub set-up the nodes benchmark measures, as the processes it starts.
enum NodesSetup: String, CaseIterable, ExpressibleByArgument {
    /// `serve` with SQLite: API and processing in one process.
    case embedded
    /// PostgreSQL, an API node and one worker process.
    case postgres1 = "postgres-1-worker"
    /// PostgreSQL, an API node and two worker processes.
    case postgres2 = "postgres-2-workers"

    var workerProcesses: Int { self == .postgres2 ? 2 : self == .postgres1 ? 1 : 0 }
}

struct NodesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "Embedded vs PostgreSQL with one and two worker processes: latency under simulated phones, then throughput.",
        discussion: """
            Each set-up runs as real `imagehub serve` processes on a fresh data directory (and, for PostgreSQL, a \
            fresh database made on --postgres and dropped afterwards). Phase 1: --devices phones upload at --rate \
            per second (open loop) for --duration seconds: acknowledgement and upload → final status percentiles. \
            Phase 2, --rounds times, each on another fresh hub, the set-ups one after the other in each round: \
            the phones upload --count photos as fast as they are answered (closed loop): final statuses per \
            second from the first upload to the last verdict, and the CPU time the whole machine spent busy \
            during it per final status (every process: nodes, PostgreSQL, the phones). The table gives each \
            set-up's median round, and its median ratio to embedded over the rounds, each round's set-ups \
            having shared the same minutes.
            """)

    @Argument(help: "Folder of photos; the parent folder name is the label.") var directory: String
    @Option(help: "A PostgreSQL server URL whose role may create databases, e.g. postgres://hub@127.0.0.1:5432/postgres.")
    var postgres: String
    @Option(parsing: .upToNextOption, help: "Set-ups to run.") var setups: [NodesSetup] = NodesSetup.allCases
    @Option(help: "Simulated phones.") var devices = 200
    @Option(help: "Uploads per second in the open-loop phase.") var rate = 15.0
    @Option(help: "Seconds of the open-loop phase.") var duration = 30.0
    @Option(help: "Uploads in the closed-loop phase (default: two passes over the photos).") var count: Int?
    @Flag(help: "Run the hubs without embeddings.") var noEmbed = false

    @Option(help: "Rounds of the closed-loop phase; each round runs every set-up once, one after the other, so that a round's set-ups share the same minutes.")
    var rounds = 3

    func run() async throws {
        let photos = try Workload.folders(directory)
        var latency: [NodesSetup: SimulationReport] = [:]
        for setup in setups {
            latency[setup] = try await measure(setup, photos: photos) { options in
                options.rate = rate
                options.duration = .milliseconds(Int64(duration * 1000))
            }
            FileHandle.standardError.write(Data("bench nodes: \(setup.rawValue) open loop done\n".utf8))
        }
        // Throughput moves with whatever else the machine runs; set-ups measured in the same minutes are
        // compared round by round, and the median round stands for each.
        var rates: [NodesSetup: [Double]] = [:], cpu: [NodesSetup: [Double]] = [:], lost: [NodesSetup: Int] = [:]
        for round in 1...max(1, rounds) {
            for setup in setups {
                var busy = 0.0
                let report = try await measure(setup, photos: photos, busy: &busy) { options in
                    options.count = count ?? 2 * photos.count
                }
                rates[setup, default: []].append(report.finalPerSecond)
                if report.final > 0, busy > 0 { cpu[setup, default: []].append(1000 * busy / Double(report.final)) }
                lost[setup, default: 0] += report.lost
                FileHandle.standardError.write(Data("bench nodes: round \(round), \(setup.rawValue): \(String(format: "%.1f", report.finalPerSecond)) img/s\n".utf8))
            }
        }
        var rows: [[String]] = []
        for setup in setups {
            let a = latency[setup]!.acknowledgementLatency, f = latency[setup]!.finalStatusLatency
            let mine = rates[setup] ?? []
            var ratio = "-"
            if let embedded = rates[.embedded], setup != .embedded {
                ratio = String(format: "%.2f×", Self.median(zip(mine, embedded).map { $0 / max($1, 0.001) }))
            }
            rows.append([setup.rawValue, String(format: "%.1f", Self.median(mine)), ratio,
                         String(format: "%.1f", a.p50), String(format: "%.1f", a.p99),
                         String(format: "%.0f", f.p50), String(format: "%.0f", f.p99),
                         cpu[setup].map { String(format: "%.0f", Self.median($0)) } ?? "-",
                         "\(latency[setup]!.lost + (lost[setup] ?? 0))"])
        }
        print("bench nodes: \(photos.count) photos, \(devices) phones, \(rate) uploads/s open loop for \(duration) s; "
              + "then closed loop, median of \(max(1, rounds)) rounds; embedding \(noEmbed ? "off" : "on"), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print(Table(headers: ["set-up", "img/s (closed loop)", "vs embedded", "ack p50 ms", "ack p99 ms", "final p50 ms", "final p99 ms", "CPU ms/img", "lost"],
                    rows: rows).text)
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Starts `setup` on a fresh hub, runs one simulation against it, stops it.
    func measure(_ setup: NodesSetup, photos: [SimulatedPhoto], _ configure: (inout SimulationOptions) -> Void) async throws -> SimulationReport {
        var busy = 0.0
        return try await measure(setup, photos: photos, busy: &busy, configure)
    }

    /// `measure`, also giving the CPU seconds the whole machine was busy during the simulation (every
    /// process: the nodes, PostgreSQL, the simulated phones), from `/proc/stat`; 0 where there is none.
    func measure(_ setup: NodesSetup, photos: [SimulatedPhoto], busy: inout Double,
                 _ configure: (inout SimulationOptions) -> Void) async throws -> SimulationReport {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-nodes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var environment = ["IMAGEHUB_EMBEDDING_ENABLED": noEmbed ? "false" : "true"]
        var database: String?
        if setup != .embedded {
            let name = "imagehub_bench_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            environment["IMAGEHUB_CATALOG_URL"] = try Catalog.createPostgresDatabase(serverURL: postgres, name: name)
            database = name
        }
        defer { if let database { try? Catalog.dropPostgresDatabase(serverURL: postgres, name: database) } }
        let made = try ChildProcess.run(ChildProcess.imagehub, ["keys", "create", "--role", "admin", "--data", dir.path], environment: environment)
        guard made.status == 0 else { throw ValidationError("imagehub keys create failed") }
        let key = String(decoding: made.output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        var nodes = [try ChildProcess(ChildProcess.imagehub, ["serve", "--data", dir.path, "--port", "0", "--role", setup == .embedded ? "all" : "api"],
                                      environment: environment)]
        for _ in 0..<setup.workerProcesses {
            nodes.append(try ChildProcess(ChildProcess.imagehub, ["serve", "--data", dir.path, "--port", "0", "--role", "worker"], environment: environment))
        }
        defer { for node in nodes { node.stop() } }
        for node in nodes { try await node.waitUntilListening() }
        var options = SimulationOptions(target: "http://127.0.0.1:\(nodes[0].listeningPort ?? 0)", key: key, photos: photos)
        options.devices = devices
        options.createLabels = true
        configure(&options)
        let before = NodesBench.busyCPUSeconds()
        let report = try await Simulation.run(options)
        if let before, let after = NodesBench.busyCPUSeconds() { busy = after - before }
        return report
    }

    /// CPU seconds every core of this machine has spent busy since boot (user, nice, system, irq, softirq;
    /// not idle, I/O wait or steal), from `/proc/stat`; nil where it cannot be read.
    static func busyCPUSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 7 else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / ticks
    }
}

extension ChildProcess {
    /// This very binary.
    static let imagehub = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()

    /// Waits until the node logs the port it listens on.
    func waitUntilListening() async throws {
        for _ in 0..<600 where listeningPort == nil {
            guard isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard listeningPort != nil else { throw ValidationError("a node did not start: \(logText.suffix(2000))") }
    }

    /// SIGTERM (a drain), then SIGKILL if it is still there after 30 s.
    func stop() {
        guard isRunning else { return }
        terminate()
        if !waitUntilExit(timeout: 30) { kill9() }
    }
}
