// swift-tools-version: 6.1
import PackageDescription

/// Modules follow the image's journey (Ingest → Verify → Preprocess → Organize) plus the seams
/// (Catalog, BlobStore, Jobs) and the shells (HubServer, imagehub). Only `Imaging` calls libvips.
let package = Package(
    name: "DeepImagesHub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "imagehub", targets: ["imagehub"]),
        .library(name: "TorchKernels", type: .dynamic, targets: ["TorchKernels"]),
        .library(name: "FeatureKernels", type: .dynamic, targets: ["FeatureKernels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/yaslab/CSV.swift.git", from: "2.5.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CVips",
            pkgConfig: "vips",
            providers: [.apt(["libvips-dev"])]
        ),
        .target(
            name: "Imaging",
            dependencies: ["CVips", "FeatureMatch", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        // libtorch behind a narrow C API: TorchBridge forwards to TorchKernels, a shared library of its own
        // (libTorchKernels.so beside the binary) opened on first use, so that start-up never loads libtorch.
        .target(
            name: "TorchBridge",
            dependencies: ["KernelLibraries"],
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]
        ),
        // Where the bridges find their shared libraries (beside the binary, or a path from the environment).
        .target(name: "KernelLibraries", linkerSettings: [.linkedLibrary("dl")]),
        // The libtorch side (C++17: the 1.13 headers break under C++20).
        .target(
            name: "TorchKernels",
            // TorchBridge's header only: the bridge itself stays in the binary, not in the library it opens.
            cxxSettings: [.headerSearchPath("../TorchBridge/include"), .unsafeFlags(["-I/usr/include/torch/csrc/api/include", "-Wno-deprecated-declarations"])],
            linkerSettings: [.linkedLibrary("torch_cpu"), .linkedLibrary("c10")]
        ),
        // OpenCV behind a narrow C API: ORB and RANSAC for the geometric verification of near duplicates, and the
        // downscale that makes thumbnails; and the label model's softmax regression (OpenBLAS's sgemm, libLBFGS's
        // minimiser), so that refitting it never loads libtorch. FeatureMatch forwards to FeatureKernels (libFeatureKernels.so beside the
        // binary), which a thread of its own opens while the process starts: OpenCV, with the OpenBLAS and TBB it
        // brings, is off the start's path.
        .target(
            name: "FeatureMatch",
            dependencies: ["KernelLibraries"],
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]
        ),
        .target(
            name: "FeatureKernels",
            // FeatureMatch's header only: the bridge itself stays in the binary, not in the library it opens.
            cxxSettings: [.headerSearchPath("../FeatureMatch/include"), .unsafeFlags(["-I/usr/include/opencv4"])],
            linkerSettings: [.linkedLibrary("opencv_core"), .linkedLibrary("opencv_imgproc"), .linkedLibrary("opencv_features2d"), .linkedLibrary("opencv_calib3d"),
                             .linkedLibrary("openblas"), .linkedLibrary("lbfgs")]
        ),
        // OpenVINO's C API, opened at run time from the wheel `make setup` installs (models/openvino).
        .target(name: "OpenVINOBridge"),
        .target(
            name: "Embedding",
            dependencies: ["TorchBridge", "OpenVINOBridge", "FeatureMatch", "Imaging", "HubCore", "BlobStore",
                           .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "Training", dependencies: ["TorchBridge", "FeatureMatch", "HubCore", "Embedding"]),
        // ONNX export: Sources/ONNX/onnx.pb.swift is generated once from the official onnx.proto
        // (protoc + protoc-gen-swift 1.39.0, Visibility=Public) and committed.
        .target(name: "ONNX", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(
            name: "HubCore",
            dependencies: [
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "BlobStore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "Catalog",
            dependencies: [
                "HubCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Verify", dependencies: ["Imaging", "Catalog", "HubCore"]),
        .target(name: "Preprocess", dependencies: ["Imaging"]),
        .target(
            name: "Ingest",
            dependencies: [
                "Imaging", "Catalog", "BlobStore", "HubCore", "Verify", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "Jobs",
            dependencies: [
                "Catalog", "BlobStore", "Verify", "Preprocess", "HubCore", "Embedding", "Imaging", "Training", "ONNX",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Organize",
            dependencies: ["Catalog", "BlobStore", "HubCore", .product(name: "CSV", package: "CSV.swift")]
        ),
        .target(
            name: "HubServer",
            dependencies: [
                "Ingest", "Jobs", "Organize", "Catalog", "BlobStore", "HubCore", "Imaging", "Embedding", "Training",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        // Virtual phones over real HTTP (AsyncHTTPClient), latencies in HdrHistograms.
        .target(
            name: "Simulator",
            dependencies: [
                "HubCore", "Organize",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "CSV", package: "CSV.swift"),
            ]
        ),
        // The fuzz target over sniff → header → strict decode (scripts/fuzz.sh builds it with libFuzzer).
        .executableTarget(name: "ImageFuzz", dependencies: ["Imaging"]),
        .executableTarget(
            name: "imagehub",
            dependencies: [
                "HubServer", "Ingest", "Jobs", "Organize", "Catalog", "HubCore", "Imaging", "Embedding", "Training", "Simulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .target(name: "HubTesting", dependencies: ["Imaging", "HubServer", "HubCore", "Embedding", "Catalog"]),
        .testTarget(
            name: "HubTests",
            dependencies: [
                "HubTesting", "HubServer", "Imaging", "Catalog", "BlobStore", "Verify", "Preprocess",
                "Ingest", "Jobs", "Organize", "HubCore", "Embedding", "Simulator", "Training", "ONNX",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
