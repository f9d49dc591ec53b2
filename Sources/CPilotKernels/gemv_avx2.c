// The AVX2 level: 64 lanes in eight ymm accumulators (a[j] holds lanes 8j ..< 8j + 8), one row after another.
#if defined(__x86_64__)
#include <immintrin.h>
#include "pilot_kernels.h"
#include "lanes.h"

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/// The tree of pilot_tree on a[0 ..< 8].
PILOT_INLINE float tree(const __m256 *a) {
    __m256 b0 = _mm256_add_ps(a[0], a[4]), b1 = _mm256_add_ps(a[1], a[5]);   // l < 32: + acc[l + 32]
    __m256 b2 = _mm256_add_ps(a[2], a[6]), b3 = _mm256_add_ps(a[3], a[7]);
    __m256 c0 = _mm256_add_ps(b0, b2), c1 = _mm256_add_ps(b1, b3);           // l < 16: + acc[l + 16]
    __m256 c = _mm256_add_ps(c0, c1);                                        // l < 8:  + acc[l + 8]
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

PILOT_INLINE void spill(const __m256 *a, float *acc) {
    for (int j = 0; j < 8; j++) _mm256_storeu_ps(acc + 8 * j, a[j]);
}

void pilot_gemv_f32_avx2(const float *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64)
            for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(_mm256_loadu_ps(w + k + 8 * j), _mm256_loadu_ps(x + k + 8 * j), a[j]);
        float dot;
        if (k == n) dot = tree(a);
        else { float acc[64]; spill(a, acc); dot = pilot_tail_f32(acc, w + k, x + k, (int)(n - k)); }
        pilot_store(y + r, dot, accumulate);
    }
}

void pilot_sqdist_rows_avx2(const float *b, const float *a, float *y, ptrdiff_t rows, ptrdiff_t n) {
    for (ptrdiff_t r = 0; r < rows; r++, b += n) {
        __m256 acc8[8];
        for (int j = 0; j < 8; j++) acc8[j] = _mm256_setzero_ps();
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64)
            for (int j = 0; j < 8; j++) {
                __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + k + 8 * j), _mm256_loadu_ps(b + k + 8 * j));
                acc8[j] = _mm256_fmadd_ps(d, d, acc8[j]);
            }
        if (k == n) y[r] = tree(acc8);
        else { float acc[64]; spill(acc8, acc); y[r] = pilot_tail_sqdist(acc, a + k, b + k, (int)(n - k)); }
    }
}

/// 8 bfloat16 values as Float32.
PILOT_INLINE __m256 bf16x8(const uint16_t *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/// As the AVX-512 level's split kernel (gemv_avx512.c), 16 values per 32-byte load: a[2j] and a[2j+1]
/// hold lanes 16j + 0, 2 .. 14 and 16j + 1, 3 .. 15 until the row ends; `xs` has each 16 values of x as 8
/// even, then 8 odd.
static void gemv_bf16_split(const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    float xs[PILOT_BF16_SPLIT_MAX];
    ptrdiff_t whole = n / 64 * 64;
    for (ptrdiff_t c = 0; c < whole; c += 16)
        for (int i = 0; i < 8; i++) { xs[c + i] = x[c + 2 * i]; xs[c + 8 + i] = x[c + 2 * i + 1]; }
    const __m256i high = _mm256_set1_epi32((int)0xffff0000);
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        for (ptrdiff_t k = 0; k < whole; k += 64)
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(w + k + 16 * j));
                a[2 * j] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(xs + k + 16 * j), a[2 * j]);
                a[2 * j + 1] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), _mm256_loadu_ps(xs + k + 16 * j + 8), a[2 * j + 1]);
            }
        for (int j = 0; j < 4; j++) {   // back in order: even e, odd o → e0 o0 e1 o1 … per 16 lanes
            __m256 l = _mm256_unpacklo_ps(a[2 * j], a[2 * j + 1]), h = _mm256_unpackhi_ps(a[2 * j], a[2 * j + 1]);
            a[2 * j] = _mm256_permute2f128_ps(l, h, 0x20);
            a[2 * j + 1] = _mm256_permute2f128_ps(l, h, 0x31);
        }
        float dot;
        if (whole == n) dot = tree(a);
        else { float acc[64]; spill(a, acc); dot = pilot_tail_bf16(acc, w + whole, x + whole, (int)(n - whole)); }
        pilot_store(y + r, dot, accumulate);
    }
}

void pilot_gemv_bf16_avx2(const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    if (n <= PILOT_BF16_SPLIT_MAX) return gemv_bf16_split(w, x, y, rows, n, accumulate);
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64)
            for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(bf16x8(w + k + 8 * j), _mm256_loadu_ps(x + k + 8 * j), a[j]);
        float dot;
        if (k == n) dot = tree(a);
        else { float acc[64]; spill(a, acc); dot = pilot_tail_bf16(acc, w + k, x + k, (int)(n - k)); }
        pilot_store(y + r, dot, accumulate);
    }
}

/// One Q8_0 block (scale, 32 int8) times x[0 ..< 32] into a[0 ..< 4]; w = Float(q)·d rounded once, as decodeRows.
PILOT_INLINE void q8block(const uint8_t *block, const float *x, __m256 *a) {
    uint16_t h;
    memcpy(&h, block, 2);
    __m256 d = _mm256_set1_ps(_cvtsh_ss(h));
    for (int j = 0; j < 4; j++) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block + 2 + 8 * j)));
        a[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), d), _mm256_loadu_ps(x + 8 * j), a[j]);
    }
}

void pilot_gemv_q8_avx2(const uint8_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        ptrdiff_t k = 0;
        for (; k + 64 <= n; k += 64, w += 68) {   // two blocks: lanes 0-31 and 32-63
            q8block(w, x + k, a);
            q8block(w + 34, x + k + 32, a + 4);
        }
        if (k < n) { q8block(w, x + k, a); w += 34; }   // an odd last block: lanes 0-31
        pilot_store(y + r, tree(a), accumulate);
    }
}

float pilot_read_sum_avx2(const void *p, size_t bytes) {
    const float *f = p;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < bytes / 4; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(f + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(f + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(f + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(f + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

#pragma clang attribute pop
#endif
