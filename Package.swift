// swift-tools-version:6.0
// Pilot: federated multimodal instruction tuning as an MPI job.
// Layering (arrows point down only):
//   C shims (CMPI, COpenBLAS, CDNNL, CHDF5, CZlib, CTurboJPEG, CPNG) and CPilotKernels (decode-step products, C)
//   -> PilotCore (errors, checksums)
//   -> PilotTensor (buffers, sgemm, kernels)   PilotComm (communicator protocol, MPI + in-process)   PilotHDF5 (HDF5 store)
//   -> PilotLM (model files: safetensors/GGUF readers, byte-level BPE, chat formats, LlamaConfig, the
//      Hugging Face name table and weights, PEFT adapter I/O, the frozen CLIP tower)
//   -> PilotModel (layers, the one Llama-family decoder for training, evaluation and generation, connectors,
//      the multimodal model, losses, optimiser; imports PilotLM and PilotHDF5)
//      PilotData (benchmark generator, tokenizer, metrics)
//   -> PilotJob (the job's ranks: placement, sampling, all-ranks checks; its files: round checkpoints, metrics.h5)
//   -> PilotFederation (typed settings, aggregation math, strategies, the round in three roles, checkpoints, metrics)
//   -> PilotReport (tables, plots)   PilotPretrain (the base model)
//   -> PilotCLI (subcommands) -> pilot (executable)
import PackageDescription

let release: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "Pilot",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pilot", targets: ["pilot"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Curve25519 key agreement, HKDF and ChaCha20 for secure aggregation (`secure.aggregation`)
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // MARK: C system libraries (Debian packages) with small shims for macro-only constants
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // oneDNN's bf16 matmul for bf16 frozen bases on CPUs with AVX512_BF16 or AMX (Debian ships no .pc file)
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev", "hdf5-tools"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),

        // MARK: Pilot's own compiled kernels (C: per-function AVX2/AVX-512, chosen at run time)
        .target(name: "CPilotKernels", path: "Sources/CPilotKernels"),

        // MARK: Library layers
        .target(name: "PilotCore"),
        .target(name: "PilotTensor", dependencies: ["PilotCore", "COpenBLAS", "CDNNL", "CPilotKernels"], swiftSettings: release),
        .target(name: "PilotComm", dependencies: ["PilotCore", "CMPI"]),
        .target(name: "PilotHDF5", dependencies: ["PilotCore", "CHDF5"]),
        .target(name: "PilotModel", dependencies: ["PilotCore", "PilotTensor", "PilotHDF5", "PilotLM"], swiftSettings: release),
        .target(name: "PilotLM", dependencies: ["PilotCore", "PilotTensor"], swiftSettings: release),
        .target(name: "PilotData", dependencies: ["PilotCore", "PilotHDF5", "CZlib", "CTurboJPEG", "CPNG"], swiftSettings: release),
        .target(name: "PilotJob", dependencies: ["PilotCore", "PilotTensor", "PilotComm", "PilotHDF5", "PilotData"], swiftSettings: release),
        .target(name: "PilotFederation", dependencies: [
            "PilotJob",
            "PilotCore", "PilotTensor", "PilotComm", "PilotHDF5", "PilotModel", "PilotData", "PilotLM",
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: release),
        .target(name: "PilotReport", dependencies: ["PilotCore", "PilotHDF5", "PilotData", "PilotJob", "PilotFederation"], swiftSettings: release),
        .target(name: "PilotPretrain", dependencies: [
            "PilotCore", "PilotTensor", "PilotComm", "PilotHDF5", "PilotModel", "PilotData", "PilotJob", "PilotFederation", "PilotLM",
        ], swiftSettings: release),
        .target(name: "PilotCLI", dependencies: [
            "PilotCore", "PilotTensor", "PilotComm", "PilotHDF5", "PilotModel", "PilotData", "PilotJob", "PilotFederation",
            "PilotReport", "PilotPretrain",
            "PilotLM",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: Executable
        .executableTarget(name: "pilot", dependencies: ["PilotCLI"]),

        // MARK: Tests
        .target(name: "PilotTestSupport", dependencies: ["PilotCore"], path: "Tests/PilotTestSupport"),
        .testTarget(name: "PilotCoreTests", dependencies: ["PilotCore", "PilotTestSupport"]),
        .testTarget(name: "PilotTensorTests", dependencies: ["PilotTensor", "PilotTestSupport"]),
        .testTarget(name: "PilotCommTests", dependencies: ["PilotComm", "PilotTestSupport"]),
        .testTarget(name: "PilotHDF5Tests", dependencies: ["PilotHDF5", "PilotTestSupport"]),
        .testTarget(name: "PilotModelTests", dependencies: ["PilotModel", "PilotLM", "PilotTestSupport"]),
        .testTarget(name: "PilotLMTests", dependencies: ["PilotLM", "PilotTensor", "PilotTestSupport"]),
        .testTarget(name: "PilotDataTests", dependencies: ["PilotData", "PilotTestSupport"]),
        .testTarget(name: "PilotFederationTests", dependencies: ["PilotJob", "PilotFederation", "PilotReport", "PilotPretrain", "PilotComm", "PilotModel", "PilotLM", "PilotData", "PilotTestSupport"]),
        .testTarget(name: "PilotIntegrationTests", dependencies: ["PilotTestSupport", "PilotHDF5", "PilotLM"]),
    ],
    swiftLanguageModes: [.v6]
)
