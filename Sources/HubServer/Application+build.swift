import Hummingbird
import Logging
import ServiceLifecycle

/// The whole hub as one application: the HTTP server and the worker pool, shut down gracefully together.
/// `onListening` gets the bound port (port 0 asks the system for a free one).
public func buildApplication(hub: Hub, host: String, port: Int, logger: Logger = Logger(label: "imagehub"),
                             onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    var app = Application(router: buildRouter(hub: hub),
                          configuration: .init(address: .hostname(host, port: port), serverName: "imagehub"),
                          onServerRunning: { await onListening($0.localAddress?.port ?? port) },
                          logger: logger)
    app.addServices(hub.workers)
    return app
}
