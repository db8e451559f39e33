import ArgumentParser
import Catalog
import Foundation
import HubCore
import HubServer
import Hummingbird
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the hub: the HTTP API and the pipeline workers in one process, or one of them (--role).")

    @OptionGroup var data: DataOption
    @Option(help: "What this node runs: all (API and processing), api (HTTP only) or worker (processing, training, maintenance, webhooks; /healthz and /metrics on --port).")
    var role: NodeRole = .all
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: a free port the system picks; the log says which).") var port = 8080

    func run() async throws {
        let role = self.role
        let hub = try await Hub.open(path: data.data) { if role == .api { $0.workers = 0 } }
        let logger = Logger(label: "imagehub")
        if try hub.catalog.userCount(role: .admin) == 0 {
            logger.notice("no admin key yet: create one with `imagehub keys create --role admin --data \(data.data)`")
        }
        logger.notice("serving \(data.data) as \(role.rawValue) node, catalog \(hub.catalog.engine.rawValue), \(hub.settings.workers) workers")
        let app = buildApplication(hub: hub, host: host, port: port, role: role, logger: logger) { bound in
            logger.notice("listening on http://\(host):\(bound)")
        }
        try await runUntilSignalled(app, drainSeconds: hub.settings.drainSeconds, logger: logger)
    }
}

extension NodeRole: ExpressibleByArgument {}
