import Hummingbird
import Logging
import ServiceLifecycle

/// The whole hub as one application: the HTTP server and the worker pool, shut down gracefully together.
public func buildApplication(hub: Hub, host: String, port: Int, logger: Logger = Logger(label: "imagehub")) -> some ApplicationProtocol {
    var app = Application(router: buildRouter(hub: hub),
                          configuration: .init(address: .hostname(host, port: port), serverName: "imagehub"),
                          logger: logger)
    app.addServices(hub.workers)
    return app
}
