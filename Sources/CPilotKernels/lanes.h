// The lane order every kernel level shares (pilot_kernels.h): 64 lanes, then a pairwise tree. The helpers
// are inlined into each level's functions and compiled with that level's instructions.
#ifndef PILOT_KERNELS_LANES_H
#define PILOT_KERNELS_LANES_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma clang fp contract(off)

#define PILOT_LANES 64
#define PILOT_INLINE static inline __attribute__((always_inline))

/// Longest bf16 row whose x is reordered on the stack (32 KiB) for the split kernels; longer rows take
/// the widening loads (the same bits either way).
#define PILOT_BF16_SPLIT_MAX 8192

/// acc[l] += acc[l + h] for h = 32, 16, 8, 4, 2, 1; returns acc[0].
PILOT_INLINE float pilot_tree(float *acc) {
    for (int h = PILOT_LANES / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) acc[l] += acc[l + h];
    return acc[0];
}

/// bfloat16 bits as Float32 (exact).
PILOT_INLINE float pilot_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/// IEEE half bits as Float32, exact, in software (HalfFloat.floatBits).
PILOT_INLINE float pilot_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x03ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {
        uint32_t m = mant, e = 113;
        while ((m & 0x0400) == 0) { m <<= 1; e -= 1; }
        bits = sign | (e << 23) | ((m & 0x03ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// The last `rem` (< 64) values of a row into lanes 0 ..< rem, then the tree.
PILOT_INLINE float pilot_tail_f32(float *acc, const float *w, const float *x, int rem) {
    for (int l = 0; l < rem; l++) acc[l] = fmaf(w[l], x[l], acc[l]);
    return pilot_tree(acc);
}

PILOT_INLINE float pilot_tail_bf16(float *acc, const uint16_t *w, const float *x, int rem) {
    for (int l = 0; l < rem; l++) acc[l] = fmaf(pilot_bf16(w[l]), x[l], acc[l]);
    return pilot_tree(acc);
}

/// The squared distance's tail: d = a − b, acc[l] = fma(d, d, acc[l]).
PILOT_INLINE float pilot_tail_sqdist(float *acc, const float *a, const float *b, int rem) {
    for (int l = 0; l < rem; l++) { float d = a[l] - b[l]; acc[l] = fmaf(d, d, acc[l]); }
    return pilot_tree(acc);
}

PILOT_INLINE void pilot_store(float *y, float dot, int accumulate) { *y = accumulate ? *y + dot : dot; }

#endif
