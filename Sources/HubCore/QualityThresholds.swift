import Foundation

/// The quality limits an image is held to: under a minimum (or over the brightness maximum) it is
/// quarantined with the matching `quality.*` reason code.
public struct QualityThresholds: Sendable, Codable, Equatable {
    public var minSharpness: Double
    public var minBrightness: Double
    public var maxBrightness: Double
    public var minContrast: Double

    public init(minSharpness: Double, minBrightness: Double, maxBrightness: Double, minContrast: Double) {
        self.minSharpness = minSharpness
        self.minBrightness = minBrightness
        self.maxBrightness = maxBrightness
        self.minContrast = minContrast
    }
}

extension HubSettings {
    /// The global thresholds (`quality.*`): every label's until it learns its own, and the strictest any
    /// label is held to.
    public var globalQuality: QualityThresholds {
        QualityThresholds(minSharpness: minSharpness, minBrightness: minBrightness, maxBrightness: maxBrightness, minContrast: minContrast)
    }
}
