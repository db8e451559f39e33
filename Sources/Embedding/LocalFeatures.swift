import FeatureMatch
import Foundation
import Imaging

/// ORB keypoints of one image (OpenCV), for the geometric check of a near-duplicate candidate.
public final class LocalFeatures: @unchecked Sendable {
    private let pointer: OpaquePointer
    /// Keypoints found (zero for an image without texture).
    public let count: Int

    /// The side the check works at: the image is scaled (down or up) to this long side, in grey, so that
    /// ORB's fixed 31-pixel patches and borders mean the same on a 200-pixel copy and on a 4000-pixel
    /// original.
    public static let side = 512
    public static let maxFeatures = 1000

    /// Detects keypoints on `image`, scaled to `side` and turned grey first.
    public init(_ image: Image) throws {
        let scaled = image.longSide > Self.side ? try image.fitted(longSide: Self.side)
            : try image.resized(width: max(1, image.width * Self.side / image.longSide), height: max(1, image.height * Self.side / image.longSide))
        let grey = try scaled.grey()
        let pixels = try grey.bytes()
        guard pixels.count == grey.width * grey.height else {
            throw BackboneError(description: "local features: \(pixels.count) bytes for \(grey.width)×\(grey.height)")
        }
        var error: UnsafeMutablePointer<CChar>?
        guard let made = dih_features_detect(pixels, Int32(grey.width), Int32(grey.height), Int32(Self.maxFeatures), &error) else {
            throw BackboneError(description: "local features: \(Self.take(error))")
        }
        pointer = made
        count = Int(dih_features_count(made))
    }

    deinit { dih_features_free(pointer) }

    /// How `self` and `other` agree: ratio-test matches, and how many of them one similarity transform
    /// (rotation, uniform scale, translation; RANSAC, 3 px) explains.
    public func match(_ other: LocalFeatures) throws -> GeometricMatch {
        var matches: Int32 = 0, inliers: Int32 = 0, scale = 0.0
        var error: UnsafeMutablePointer<CChar>?
        guard dih_features_match(pointer, other.pointer, 0.8, 3.0, &matches, &inliers, &scale, &error) == 0 else {
            throw BackboneError(description: "matching local features: \(Self.take(error))")
        }
        return GeometricMatch(matches: Int(matches), inliers: Int(inliers), scale: scale)
    }

    private static func take(_ error: UnsafeMutablePointer<CChar>?) -> String {
        guard let error else { return "unknown error" }
        defer { dih_features_string_free(error) }
        return String(cString: error)
    }
}

/// The outcome of matching two images' local features.
public struct GeometricMatch: Sendable, Equatable {
    public let matches: Int
    public let inliers: Int
    /// The fitted transform's scale (the second image's pixels per the first's).
    public let scale: Double

    /// Whether one picture is a crop, resize or re-encoding of the other: at least `minInliers` matches fit
    /// one similarity transform, and they are at least `minRatio` of all matches. A copy keeps every matched
    /// keypoint on one transform (84–100% of the matches on the shared photos' copies); a second shot of the
    /// same scene matches its still parts only (63% for two frames of one kitchen shoot), and photos of
    /// different scenes match a few keypoints by chance, which no single transform explains.
    public func isCopy(minInliers: Int = 25, minRatio: Double = 0.7) -> Bool {
        inliers >= minInliers && Double(inliers) >= minRatio * Double(max(1, matches))
    }
}
