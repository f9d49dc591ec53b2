import COpenBLAS
import PilotTensor

/// y[O] = W[O, I]·x (+ y when `accumulate`) for one row x [I], W row-major (Hugging Face [out, in]).
/// An inference-only decoder's single-row products go here: an m = 1 sgemm packs the whole weight
/// matrix on every call (most of a decode step's time, measured with perf), a matrix-vector product
/// streams it once. Blocks of output rows run on `Parallel`'s threads; each y[o] is one dot product,
/// so the split does not change the result. The training decoder keeps sgemm (the multimodal model's
/// evaluation keeps its bits).
func gemvRow(y: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, x: UnsafePointer<Float>,
             outFeatures O: Int, inFeatures I: Int, accumulate: Bool) {
    Parallel.rows(O, costPerItem: I, context: (y, w, x, I, accumulate)) { c, lo, hi in
        let (y, w, x, I, accumulate) = c
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(hi - lo), Int32(I), 1, w + lo * I, Int32(I), x, 1,
                    accumulate ? 1 : 0, y + lo, 1)
    }
}
