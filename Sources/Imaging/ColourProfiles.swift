import CVips
import Crypto
import Foundation
import Synchronization

/// What the hub has learnt about each embedded ICC profile it met: whether it describes sRGB itself, and
/// otherwise the transform from it into sRGB, built once. lcms takes 2–4 ms to build a transform (it inverts
/// the output profile's tone curves), more than converting a small photo's pixels, and the photos of one
/// phone or one tool carry the same profile: importing 300 small look-alike photos, 57 of them in Adobe RGB,
/// Nikon or Apple profiles, spent 4% of its CPU building libvips's transforms. The `capacity` profiles used
/// last are kept, each by its SHA-256 (uploaders choose the profiles: the cache holds digests and
/// transforms, not their bytes); a profile over `largest` bytes is judged afresh each time.
final class ColourProfiles: Sendable {
    static let shared = ColourProfiles(capacity: 32)
    /// Profiles above this size are not kept (phones write a few KB; LUT profiles run to a few hundred).
    static let largest = 1 << 20

    /// One profile's verdict; `transform` is shared by threads (made without lcms's one-pixel cache).
    final class Entry: @unchecked Sendable {
        let isSRGB: Bool
        let transform: cmsHTRANSFORM?

        init(profile: UnsafeRawBufferPointer) {
            isSRGB = cvips_icc_data_is_srgb(profile.baseAddress, profile.count) != 0
            guard !isSRGB, let srgb = ColourProfiles.srgb else {
                transform = nil
                return
            }
            transform = srgb.withUnsafeBytes { s in cvips_rgb_to_srgb_transform(profile.baseAddress, profile.count, s.baseAddress, s.count) }
        }

        deinit { if let transform { cvips_transform_free(transform) } }
    }

    /// libvips's sRGB profile, the one its `icc_transform` converts to and attaches.
    static let srgb: Data? = {
        Vips.start()
        guard let blob = cvips_srgb_profile() else { return nil }
        defer { cvips_blob_unref(blob) }
        var length = 0
        guard let data = cvips_blob_data(blob, &length) else { return nil }
        return Data(bytes: data, count: length)
    }()

    private let capacity: Int
    private let state = Mutex<(entries: [SHA256Digest: (entry: Entry, used: UInt64)], clock: UInt64)>(([:], 0))

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// The entry for `profile`, made on first sight (outside the lock: two threads meeting a new profile at
    /// once may both build it, and one is kept).
    func entry(for profile: UnsafeRawBufferPointer) -> Entry {
        guard profile.count <= Self.largest else { return Entry(profile: profile) }
        let digest = SHA256.hash(data: profile)
        if let known = state.withLock({ state -> Entry? in
            guard let found = state.entries[digest] else { return nil }
            state.clock += 1
            state.entries[digest] = (found.entry, state.clock)
            return found.entry
        }) { return known }
        let made = Entry(profile: profile)
        return state.withLock { state in
            state.clock += 1
            if let found = state.entries[digest] {
                state.entries[digest] = (found.entry, state.clock)
                return found.entry
            }
            if state.entries.count >= capacity, let oldest = state.entries.min(by: { $0.value.used < $1.value.used })?.key {
                state.entries[oldest] = nil
            }
            state.entries[digest] = (made, state.clock)
            return made
        }
    }

    /// The entry for `profile` (tests).
    func entry(for profile: Data) -> Entry { profile.withUnsafeBytes { entry(for: $0) } }

    /// Profiles known now (tests).
    var count: Int { state.withLock { $0.entries.count } }
}
