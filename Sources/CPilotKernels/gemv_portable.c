// The portable level (any CPU) and the dispatch to the others.
#include "pilot_kernels.h"
#include "lanes.h"

void pilot_gemv_f32_avx2(const float *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
void pilot_gemv_bf16_avx2(const uint16_t *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
void pilot_gemv_q8_avx2(const uint8_t *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
float pilot_read_sum_avx2(const void *, size_t);
void pilot_gemv_f32_avx512(const float *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
void pilot_gemv_bf16_avx512(const uint16_t *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
void pilot_gemv_q8_avx512(const uint8_t *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
float pilot_read_sum_avx512(const void *, size_t);
void pilot_sqdist_rows_avx2(const float *, const float *, float *, ptrdiff_t, ptrdiff_t);
void pilot_sqdist_rows_avx512(const float *, const float *, float *, ptrdiff_t, ptrdiff_t);

int pilot_kernel_best(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return PILOT_KERNEL_AVX512;
    if (avx2) return PILOT_KERNEL_AVX2;
#endif
    return PILOT_KERNEL_PORTABLE;
}

static void gemv_f32_portable(const float *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        float acc[PILOT_LANES] = {0};
        ptrdiff_t k = 0;
        for (; k + PILOT_LANES <= n; k += PILOT_LANES)
            for (int l = 0; l < PILOT_LANES; l++) acc[l] = fmaf(w[k + l], x[k + l], acc[l]);
        pilot_store(y + r, pilot_tail_f32(acc, w + k, x + k, (int)(n - k)), accumulate);
    }
}

static void gemv_bf16_portable(const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++, w += n) {
        float acc[PILOT_LANES] = {0};
        ptrdiff_t k = 0;
        for (; k + PILOT_LANES <= n; k += PILOT_LANES)
            for (int l = 0; l < PILOT_LANES; l++) acc[l] = fmaf(pilot_bf16(w[k + l]), x[k + l], acc[l]);
        pilot_store(y + r, pilot_tail_bf16(acc, w + k, x + k, (int)(n - k)), accumulate);
    }
}

static void gemv_q8_portable(const uint8_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t n, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float acc[PILOT_LANES] = {0};
        for (ptrdiff_t b = 0; b < n / 32; b++, w += 34) {
            uint16_t h;
            memcpy(&h, w, 2);
            float d = pilot_half(h), *a = acc + 32 * (b & 1);
            const int8_t *q = (const int8_t *)(w + 2);
            for (int l = 0; l < 32; l++) a[l] = fmaf((float)q[l] * d, x[32 * b + l], a[l]);
        }
        pilot_store(y + r, pilot_tree(acc), accumulate);
    }
}

static float read_sum_portable(const void *p, size_t bytes) {
    const float *f = p;
    float acc[16] = {0};
    for (size_t i = 0; i < bytes / 4; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += f[i + l];
    float s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

static void sqdist_rows_portable(const float *b, const float *a, float *y, ptrdiff_t rows, ptrdiff_t n) {
    for (ptrdiff_t r = 0; r < rows; r++, b += n) {
        float acc[PILOT_LANES] = {0};
        ptrdiff_t k = 0;
        for (; k + PILOT_LANES <= n; k += PILOT_LANES)
            for (int l = 0; l < PILOT_LANES; l++) { float d = a[k + l] - b[k + l]; acc[l] = fmaf(d, d, acc[l]); }
        y[r] = pilot_tail_sqdist(acc, a + k, b + k, (int)(n - k));
    }
}

#if defined(__x86_64__)
#define DISPATCH(name, ...) \
    switch (kernel) { \
    case PILOT_KERNEL_AVX512: return name##_avx512(__VA_ARGS__); \
    case PILOT_KERNEL_AVX2: return name##_avx2(__VA_ARGS__); \
    default: break; \
    }
#else
#define DISPATCH(name, ...) (void)kernel;
#endif

void pilot_gemv_f32(int kernel, const float *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate) {
    DISPATCH(pilot_gemv_f32, w, x, y, rows, cols, accumulate)
    gemv_f32_portable(w, x, y, rows, cols, accumulate);
}

void pilot_gemv_bf16(int kernel, const uint16_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate) {
    DISPATCH(pilot_gemv_bf16, w, x, y, rows, cols, accumulate)
    gemv_bf16_portable(w, x, y, rows, cols, accumulate);
}

void pilot_gemv_q8(int kernel, const uint8_t *w, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate) {
    DISPATCH(pilot_gemv_q8, w, x, y, rows, cols, accumulate)
    gemv_q8_portable(w, x, y, rows, cols, accumulate);
}

float pilot_read_sum(int kernel, const void *p, size_t bytes) {
    DISPATCH(pilot_read_sum, p, bytes)
    return read_sum_portable(p, bytes);
}

void pilot_sqdist_rows(int kernel, const float *b, const float *a, float *y, ptrdiff_t rows, ptrdiff_t cols) {
    DISPATCH(pilot_sqdist_rows, b, a, y, rows, cols)
    sqdist_rows_portable(b, a, y, rows, cols);
}
