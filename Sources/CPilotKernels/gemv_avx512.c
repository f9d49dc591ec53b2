// The AVX-512 level: 64 lanes in four zmm accumulators (lanes 0-15, 16-31, 32-47, 48-63), one row after
// another, so the weights stream from memory once, in order.
#if defined(__x86_64__)
#include <immintrin.h>
#include "pilot_kernels.h"
#include "lanes.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)

/// The tree of pilot_tree on (a0, a1, a2, a3): lanes l + 32, 16, 8, 4, 2, 1 folded into l.
PILOT_INLINE float tree(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    __m512 s16 = _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(s16), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s16), 1)));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

/// The accumulators into acc[64], to finish a row whose length is not a multiple of 64 (lanes.h).
PILOT_INLINE void spill(__m512 a0, __m512 a1, __m512 a2, __m512 a3, float *acc) {
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
    _mm512_storeu_ps(acc + 32, a2);
    _mm512_storeu_ps(acc + 48, a3);
}

void pilot_gemv_f32_avx512(const float *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 32), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 48), _mm512_loadu_ps(x + k + 48), a3);
        }
        float dot;
        if (k == n) dot = tree(a0, a1, a2, a3);
        else { float acc[64]; spill(a0, a1, a2, a3, acc); dot = pilot_tail_f32(acc, w + k, x + k, (int)(n - k)); }
        pilot_store(y + r, dot, accumulate);
    }
}

void pilot_sqdist_rows_avx512(const float *b, const float *a, float *y, ptrdiff_t rows, ptrdiff_t n) {
    for (ptrdiff_t r = 0; r < rows; r++, b += n) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k));
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16));
            __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + k + 32), _mm512_loadu_ps(b + k + 32));
            __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + k + 48), _mm512_loadu_ps(b + k + 48));
            a0 = _mm512_fmadd_ps(d0, d0, a0);
            a1 = _mm512_fmadd_ps(d1, d1, a1);
            a2 = _mm512_fmadd_ps(d2, d2, a2);
            a3 = _mm512_fmadd_ps(d3, d3, a3);
        }
        if (k == n) y[r] = tree(a0, a1, a2, a3);
        else { float acc[64]; spill(a0, a1, a2, a3, acc); y[r] = pilot_tail_sqdist(acc, a + k, b + k, (int)(n - k)); }
    }
}

/// 16 bfloat16 values as Float32.
PILOT_INLINE __m512 bf16x16(const uint16_t *p) {
    __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

/// bf16 rows of n ≤ PILOT_BF16_SPLIT_MAX values, 64 at a time as two 64-byte loads, each split into its
/// even elements (v << 16) and its odd ones (v & 0xffff0000): two simple operations per 32 weights
/// instead of two widening loads and two shifts. `xs` is x with each 32 values reordered the same way
/// (16 even, then 16 odd); each accumulator lane still sums the elements of one lane of the order, in
/// the same sequence, and the lanes are put back in order before the tree.
static void gemv_bf16_split(const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    float xs[PILOT_BF16_SPLIT_MAX];
    ptrdiff_t whole = n / 64 * 64;
    for (ptrdiff_t c = 0; c < whole; c += 32)
        for (int i = 0; i < 16; i++) { xs[c + i] = x[c + 2 * i]; xs[c + 16 + i] = x[c + 2 * i + 1]; }
    const __m512i high = _mm512_set1_epi32((int)0xffff0000);
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        __m512 e0 = _mm512_setzero_ps(), o0 = e0, e1 = e0, o1 = e0;   // lanes 0,2..30 | 1,3..31 | 32,34..62 | 33..63
        for (ptrdiff_t k = 0; k < whole; k += 64) {
            __m512i v0 = _mm512_loadu_si512(w + k), v1 = _mm512_loadu_si512(w + k + 32);
            e0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xs + k), e0);
            o0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, high)), _mm512_loadu_ps(xs + k + 16), o0);
            e1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xs + k + 32), e1);
            o1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, high)), _mm512_loadu_ps(xs + k + 48), o1);
        }
        __m512 a0 = _mm512_permutex2var_ps(e0, lo, o0), a1 = _mm512_permutex2var_ps(e0, hi, o0);
        __m512 a2 = _mm512_permutex2var_ps(e1, lo, o1), a3 = _mm512_permutex2var_ps(e1, hi, o1);
        float dot;
        if (whole == n) dot = tree(a0, a1, a2, a3);
        else { float acc[64]; spill(a0, a1, a2, a3, acc); dot = pilot_tail_bf16(acc, w + whole, x + whole, (int)(n - whole)); }
        pilot_store(y + r, dot, accumulate);
    }
}

void pilot_gemv_bf16_avx512(const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    if (n <= PILOT_BF16_SPLIT_MAX) return gemv_bf16_split(w, x, y, rows, n, accumulate);
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64) {
            a0 = _mm512_fmadd_ps(bf16x16(w + k), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(bf16x16(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(bf16x16(w + k + 32), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(bf16x16(w + k + 48), _mm512_loadu_ps(x + k + 48), a3);
        }
        float dot;
        if (k == n) dot = tree(a0, a1, a2, a3);
        else { float acc[64]; spill(a0, a1, a2, a3, acc); dot = pilot_tail_bf16(acc, w + k, x + k, (int)(n - k)); }
        pilot_store(y + r, dot, accumulate);
    }
}

/// 16 int8 values as Float32 times the block's scale (rounded once, as decodeRows).
PILOT_INLINE __m512 q8x16(const uint8_t *q, __m512 d) {
    __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(v), d);
}

/// A Q8_0 block's scale, broadcast.
PILOT_INLINE __m512 scale(const uint8_t *block) {
    uint16_t h;
    memcpy(&h, block, 2);
    return _mm512_set1_ps(_cvtsh_ss(h));
}

void pilot_gemv_q8_avx512(const uint8_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64, w += 68) {   // two blocks: lanes 0-31 and 32-63
            __m512 d0 = scale(w), d1 = scale(w + 34);
            a0 = _mm512_fmadd_ps(q8x16(w + 2, d0), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(q8x16(w + 18, d0), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(q8x16(w + 36, d1), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(q8x16(w + 52, d1), _mm512_loadu_ps(x + k + 48), a3);
        }
        if (k < n) {   // an odd last block: lanes 0-31
            __m512 d = scale(w);
            a0 = _mm512_fmadd_ps(q8x16(w + 2, d), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(q8x16(w + 18, d), _mm512_loadu_ps(x + k + 16), a1);
            w += 34;
        }
        pilot_store(y + r, tree(a0, a1, a2, a3), accumulate);
    }
}

float pilot_read_sum_avx512(const void *p, size_t bytes) {
    const float *f = p;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < bytes / 4; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(f + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(f + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(f + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(f + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

#pragma clang attribute pop
#endif
