import CDNNL

/// One oneDNN matmul primitive for a fixed shape, made once and run many times:
///
///     C[m, n] = A[m, k]·B[k, n]  (+ C when `accumulate`, oneDNN's sum post-op)
///
/// A is bf16, packed rows (the activations, converted just before). B is bf16 read in place: a frozen
/// weight W [O, I] row-major with leading dimension `ldb`, either as Wᵀ (`transB`, B[k, n] = W[n, k]) or
/// as W itself (B[k, n] = W[k, n]). C is Float32 with leading dimension `ldc`. oneDNN accumulates in
/// Float32 with the CPU's bf16 dot-product instruction (VDPBF16PS; AMX on CPUs that have it).
///
/// The primitive is made and run on `threads` OpenMP threads (the count is set on the calling thread;
/// oneDNN fixes its work split when the primitive is made): 1 when the engine splits products over its
/// own threads (`BF16Products`), as it does for sgemm; the engine's count under `PILOT_GEMM_SPLIT=0`.
/// Scratch memory is the caller's (oneDNN's user scratchpad mode), so two plans can run at once on two
/// threads. Each plan has its own memory objects and stream; a plan runs on one thread at a time.
final class BF16Matmul: @unchecked Sendable {
    let m: Int, n: Int, k: Int, threads: Int
    let implementation: String
    /// Bytes of scratch memory a run needs (0: none).
    let scratchpadBytes: Int
    private let primitive: dnnl_primitive_t
    private let stream: dnnl_stream_t
    private let a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t
    private let scratchpad: dnnl_memory_t?

    init(m: Int, n: Int, k: Int, transB: Bool, ldb: Int, ldc: Int, accumulate: Bool, threads: Int = 1) throws(BF16KernelError) {
        self.m = m; self.n = n; self.k = k; self.threads = threads
        guard let engine = BF16Kernel.engine else { throw BF16KernelError(call: "dnnl_engine_create", status: dnnl_runtime_error) }
        pilot_dnnl_threads(Int32(threads))
        var ad = try Self.matrix(rows: m, cols: k, rowStride: k, colStride: 1, type: dnnl_bf16)
        var bd = try Self.matrix(rows: k, cols: n, rowStride: transB ? 1 : ldb, colStride: transB ? ldb : 1, type: dnnl_bf16)
        var cd = try Self.matrix(rows: m, cols: n, rowStride: ldc, colStride: 1, type: dnnl_f32)
        var desc = dnnl_matmul_desc_t()
        try dnnlCheck(dnnl_matmul_desc_init(&desc, &ad, &bd, nil, &cd), "dnnl_matmul_desc_init")

        var attr: dnnl_primitive_attr_t?
        try dnnlCheck(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        try dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "dnnl_primitive_attr_set_scratchpad_mode")
        if accumulate {
            var ops: dnnl_post_ops_t?
            try dnnlCheck(dnnl_post_ops_create(&ops), "dnnl_post_ops_create")
            defer { dnnl_post_ops_destroy(ops) }
            try dnnlCheck(dnnl_post_ops_append_sum(ops, 1), "dnnl_post_ops_append_sum")
            try dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops")
        }
        var pd: dnnl_primitive_desc_t?
        try dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, attr, engine, nil), "dnnl_primitive_desc_create (bf16 matmul \(m)×\(k)·\(k)×\(n))")
        defer { dnnl_primitive_desc_destroy(pd) }
        var impl: UnsafePointer<CChar>?
        try dnnlCheck(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), "dnnl_primitive_desc_query")
        implementation = impl.map { String(cString: $0) } ?? "?"
        var sd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)!.pointee
        scratchpadBytes = dnnl_memory_desc_get_size(&sd)

        var p: dnnl_primitive_t?
        try dnnlCheck(dnnl_primitive_create(&p, pd), "dnnl_primitive_create")
        primitive = p!
        var s: dnnl_stream_t?
        try dnnlCheck(dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
        stream = s!
        func memory(_ d: inout dnnl_memory_desc_t) throws(BF16KernelError) -> dnnl_memory_t {
            var mem: dnnl_memory_t?
            try dnnlCheck(dnnl_memory_create(&mem, &d, engine, nil), "dnnl_memory_create")
            return mem!
        }
        a = try memory(&ad); b = try memory(&bd); c = try memory(&cd)
        scratchpad = scratchpadBytes > 0 ? try memory(&sd) : nil
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_stream_destroy(stream)
        dnnl_memory_destroy(a); dnnl_memory_destroy(b); dnnl_memory_destroy(c)
        if let scratchpad { dnnl_memory_destroy(scratchpad) }
    }

    /// A 2-D memory descriptor with explicit strides (in elements).
    private static func matrix(rows: Int, cols: Int, rowStride: Int, colStride: Int, type: dnnl_data_type_t) throws(BF16KernelError) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var dims: dnnl_dims_t = (Int64(rows), Int64(cols), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var strides: dnnl_dims_t = (Int64(rowStride), Int64(colStride), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let status = withUnsafePointer(to: &dims) { d in
            withUnsafePointer(to: &strides) { s in
                dnnl_memory_desc_init_by_strides(&md, 2, UnsafeRawPointer(d).assumingMemoryBound(to: Int64.self), type,
                                                 UnsafeRawPointer(s).assumingMemoryBound(to: Int64.self))
            }
        }
        try dnnlCheck(status, "dnnl_memory_desc_init_by_strides")
        return md
    }

    /// Runs the product on the calling thread; `scratch` holds at least `scratchpadBytes`.
    func run(a pa: UnsafePointer<UInt16>, b pb: UnsafeRawPointer, c pc: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer?) {
        pilot_dnnl_threads(Int32(threads))
        dnnl_memory_set_data_handle(a, UnsafeMutableRawPointer(mutating: pa))
        dnnl_memory_set_data_handle(b, UnsafeMutableRawPointer(mutating: pb))
        dnnl_memory_set_data_handle(c, pc)
        var args = (dnnl_exec_arg_t(arg: pilot_dnnl_arg_src, memory: a), dnnl_exec_arg_t(arg: pilot_dnnl_arg_weights, memory: b),
                    dnnl_exec_arg_t(arg: pilot_dnnl_arg_dst, memory: c), dnnl_exec_arg_t(arg: pilot_dnnl_arg_scratchpad, memory: scratchpad))
        if let scratchpad { dnnl_memory_set_data_handle(scratchpad, scratch) }
        let count: Int32 = scratchpad == nil ? 3 : 4
        var status = withUnsafePointer(to: &args) {
            dnnl_primitive_execute(primitive, stream, count, UnsafeRawPointer($0).assumingMemoryBound(to: dnnl_exec_arg_t.self))
        }
        if status == dnnl_success { status = dnnl_stream_wait(stream) }
        // The plan was made for these shapes and strides, so oneDNN has no reason to refuse a run.
        precondition(status == dnnl_success, "oneDNN dnnl_primitive_execute failed with status \(status.rawValue) (\(m)×\(k)·\(k)×\(n), \(implementation))")
    }
}
