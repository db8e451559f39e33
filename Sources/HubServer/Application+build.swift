import Hummingbird
import Logging
import ServiceLifecycle

/// What one `imagehub serve` process does: everything, or one side of a hub spread over many nodes
/// that share a PostgreSQL catalog and a data directory.
public enum NodeRole: String, Sendable, CaseIterable {
    /// The HTTP API and the processing, in one process (the embedded default).
    case all
    /// The HTTP API only: uploads are stored and answered; worker nodes process them.
    case api
    /// Processing, training, maintenance and webhooks; HTTP only for `/healthz` and `/metrics`.
    case worker
}

/// The whole hub as one application: the HTTP server and the worker pool, shut down gracefully together.
/// `onListening` gets the bound port (port 0 asks the system for a free one). An `api` node's pool has
/// no workers (its settings say 0) and runs nothing; a `worker` node serves only the system routes.
public func buildApplication(hub: Hub, host: String, port: Int, role: NodeRole = .all, logger: Logger = Logger(label: "imagehub"),
                             onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    var app = Application(router: role == .worker ? buildSystemRouter(hub: hub) : buildRouter(hub: hub),
                          configuration: .init(address: .hostname(host, port: port), serverName: "imagehub"),
                          onServerRunning: { await onListening($0.localAddress?.port ?? port) },
                          logger: logger)
    app.addServices(hub.workers)
    return app
}

/// Runs `app` until SIGTERM or SIGINT, then drains it: the server stops taking connections and finishes the
/// requests it holds, the workers the jobs they hold. A drain that takes longer than `drainSeconds` (a client
/// that never finishes its body, say) is cut short: what is left is cancelled, and the process ends.
public func runUntilSignalled(_ app: some ApplicationProtocol, drainSeconds: Double, logger: Logger) async throws {
    var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = .milliseconds(Int64(drainSeconds * 1000))
    configuration.maximumCancellationDuration = .seconds(5)
    try await ServiceGroup(configuration: configuration).run()
}
