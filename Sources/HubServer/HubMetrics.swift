import Metrics
import Prometheus
import Synchronization

/// The process's Prometheus registry behind swift-metrics (bootstrapped once per process).
public enum HubMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let done = Mutex(false)

    static func bootstrap() {
        done.withLock { done in
            guard !done else { return }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
        }
    }
}
