#if canImport(Glibc)
import Glibc
#endif
import CDNNL

/// Whether products against a bf16 frozen weight run on a real bf16 kernel (oneDNN's matmul with
/// bf16 inputs and Float32 accumulation and output) or decode the weight to Float32 tiles for sgemm.
///
/// The kernel is used when oneDNN finds AVX512_BF16 (or AMX-BF16) on this CPU (`dnnl_get_effective_cpu_isa`,
/// from cpuid; `ONEDNN_MAX_CPU_ISA` lowers it) and `PILOT_BF16_KERNEL` is not `off`. Elsewhere oneDNN
/// would emulate bf16 on plain AVX-512 or refuse it, slower than decode+sgemm, so the fallback runs.
/// `pilot bench` prints `summary`.
public enum BF16Kernel {
    /// Whether this CPU has a bf16 dot-product instruction set that oneDNN uses.
    public static let cpuHasBF16: Bool = {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue   // AMX's value contains these bits too
        return isa & bf16 == bf16
    }()

    /// `PILOT_BF16_KERNEL=off` (or `0`) in the environment: always the decode+sgemm path.
    public static let disabledByEnvironment: Bool = {
        guard let e = getenv("PILOT_BF16_KERNEL") else { return false }
        let v = String(cString: e).lowercased()
        return v == "off" || v == "0" || v == "false"
    }()

    /// What a `FrozenProducts()` uses unless told otherwise.
    public static var isUsable: Bool { cpuHasBF16 && !disabledByEnvironment }

    /// oneDNN's version, e.g. "2.6.3".
    public static var oneDNNVersion: String {
        let v = dnnl_version()!.pointee
        return "\(v.major).\(v.minor).\(v.patch)"
    }

    /// oneDNN's ISA name for this CPU.
    public static var isaName: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: "avx2_vnni"
        case dnnl_cpu_isa_avx2: "avx2"
        default: "isa 0x\(String(dnnl_get_effective_cpu_isa().rawValue, radix: 16))"
        }
    }

    /// The implementation oneDNN picks for a step-sized bf16 product (512 × 576 · 576 × 960, W read
    /// transposed), e.g. "brg:avx512_core_bf16"; nil when no CPU engine or primitive could be made.
    public static let implementation: String? = {
        guard let plan = try? BF16Matmul(m: 512, n: 960, k: 576, transB: true, ldb: 576, ldc: 960, accumulate: false) else { return nil }
        return plan.implementation
    }()

    /// What a bf16 base's products run on in this process, as a run records it: "oneDNN <implementation>"
    /// or "decode+sgemm". The bits of a bf16 run depend on it (docs/engine.md).
    public static var runName: String {
        isUsable ? "oneDNN " + (implementation ?? "(no primitive)") : "decode+sgemm"
    }

    /// One line for `pilot bench` and `pilot selftest`: which kernel a bf16 base's products run on.
    public static var summary: String {
        if disabledByEnvironment { return "bf16 and q8 products: decode to f32 + sgemm (PILOT_BF16_KERNEL=off)" }
        if !cpuHasBF16 { return "bf16 and q8 products: decode to f32 + sgemm (oneDNN \(oneDNNVersion) sees \(isaName), no AVX512_BF16/AMX)" }
        return "bf16 and q8 products: oneDNN \(oneDNNVersion) bf16 matmul (\(implementation ?? "no primitive"), \(isaName))"
    }

    /// The process's one oneDNN CPU engine (thread-safe; primitives are created on it).
    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var e: dnnl_engine_t?
        return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
    }()
}

/// A oneDNN call that failed: which call and its status.
public struct BF16KernelError: Error, CustomStringConvertible {
    public let call: String
    public let status: dnnl_status_t
    public var description: String {
        "oneDNN \(call) failed with status \(status.rawValue) (run with PILOT_BF16_KERNEL=off to use the decode+sgemm path instead)"
    }
}

@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ call: String) throws(BF16KernelError) {
    if status != dnnl_success { throw BF16KernelError(call: call, status: status) }
}
