// Pilot's own compiled kernels: the one-row products of a decode step (y = W·x over a frozen matrix in
// f32, bf16 or q8) and a read loop that measures memory bandwidth. Swift compiles for the baseline CPU of
// its target (SSE2 on x86-64) and cannot enable AVX2 or AVX-512 per function, so these are C with
// per-function target attributes, chosen at run time (`pilot_kernel_best`); every level computes the same
// bits (the order is fixed below, and every level uses fused multiply-adds).
//
// The order of a dot product of n values w·x (the reference, GEMVTests): 64 lanes, lane l accumulates
// the elements k with k mod 64 = l in increasing k, acc[l] = fma(w[k], x[k], acc[l]) from +0; then the
// lanes are added pairwise, acc[l] += acc[l + h] for h = 32, 16, 8, 4, 2, 1; acc[0] is the dot product.
// 64 lanes are four AVX-512 or eight AVX2 accumulators: enough independent chains to hide the latency of
// the fused multiply-adds (q8 with two chains ran at 0.65× the speed of four, measured).
// A bf16 or q8 weight enters as its Float32 value, as `FrozenMatrix.decodeRows` makes it (bf16 exact;
// q8 w = Float(q)·d with d the block's f16 scale as Float32, rounded once), so each dtype's product is the
// f32 product of the decoded row.
#ifndef PILOT_KERNELS_H
#define PILOT_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Instruction-set levels of the kernels; a caller passes one that `pilot_kernel_best` allows.
enum {
    PILOT_KERNEL_PORTABLE = 0,   // plain C with fmaf (any CPU)
    PILOT_KERNEL_AVX2 = 1,       // x86-64 with AVX2, FMA and F16C
    PILOT_KERNEL_AVX512 = 2,     // x86-64 with AVX-512 F, BW and VL, FMA and F16C
};

/// The highest level this CPU runs.
int pilot_kernel_best(void);

/// y[r] = W[r]·x (+ y[r] when `accumulate`) for r < rows; W row-major [rows, cols].
void pilot_gemv_f32(int kernel, const float *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate);
/// W as bfloat16 bits.
void pilot_gemv_bf16(int kernel, const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate);
/// W as GGUF Q8_0 blocks along each row (34 bytes per 32 values: f16 scale d, then 32 int8 q); cols % 32 == 0.
void pilot_gemv_q8(int kernel, const uint8_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate);

/// y[r] = ‖a − B[r]‖² for r < rows; B row-major [rows, cols]. The order of the dot product above, with
/// d = a[k] − B[r][k] and acc[l] = fma(d, d, acc[l]); the same bits on every level (ATA's distances, DistributedATA).
void pilot_sqdist_rows(int kernel, const float *b, const float *a, float *y, ptrdiff_t rows, ptrdiff_t cols);

/// Reads `bytes` (a multiple of 256, 64-byte aligned) at `p` with the level's widest loads and returns the sum
/// of the floats there, so that the loads cannot be dropped: a read-bandwidth probe.
float pilot_read_sum(int kernel, const void *p, size_t bytes);

#endif
