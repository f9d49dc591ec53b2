// oneDNN 2.6's bf16 matmul against OpenBLAS's sgemm at a SmolLM2-135M step's shapes (M = 512), 1 thread:
// the measurement that decided the bf16 kernel (docs/performance.md, "bf16 kernel for frozen products").
// Prints GFLOP/s of sgemm, oneDNN bf16 with W read in place, with W reordered once into oneDNN's blocked
// layout, oneDNN f32, and the time of rounding x to bf16 and of decoding W to f32.
//   gcc -O2 -march=native -fopenmp scripts/bench/onednn_bf16_matmul.c -o /tmp/onednn_bf16 -ldnnl -lopenblas -lm
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /tmp/onednn_bf16 [ROUNDS]
#include <dnnl.h>
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <math.h>
#define CHK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d at %d\n", #x, s_, __LINE__); exit(1);} } while (0)
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static uint16_t bf16(float x) { uint32_t b; memcpy(&b, &x, 4); if (isnan(x)) return (b >> 16) | 0x40; b += 0x7fff + ((b >> 16) & 1); return b >> 16; }
static float f32(uint16_t h) { uint32_t b = (uint32_t)h << 16; float x; memcpy(&x, &b, 4); return x; }
static dnnl_engine_t eng; static dnnl_stream_t stream;

typedef struct { dnnl_primitive_t p; dnnl_memory_t a, b, c; } mm_t;
// C[M,N] = A[M,K] * B[K,N], A bf16 row-major, B bf16 with 'transB' meaning B stored as [N,K] row-major, C f32
static mm_t make(int M, int K, int N, int transB, int anyB, dnnl_data_type_t dt, void *A, void *B, float *C, int sum, const char **impl) {
    mm_t r; dnnl_memory_desc_t ad, bd, cd, bdu;
    dnnl_dims_t ad_d = {M, K}, bd_d = {K, N}, cd_d = {M, N};
    CHK(dnnl_memory_desc_init_by_tag(&ad, 2, ad_d, dt, dnnl_ab));
    CHK(dnnl_memory_desc_init_by_tag(&bdu, 2, bd_d, dt, transB ? dnnl_ba : dnnl_ab));
    if (anyB) CHK(dnnl_memory_desc_init_by_tag(&bd, 2, bd_d, dt, dnnl_format_tag_any)); else bd = bdu;
    CHK(dnnl_memory_desc_init_by_tag(&cd, 2, cd_d, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md; CHK(dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd));
    dnnl_primitive_attr_t attr; CHK(dnnl_primitive_attr_create(&attr));
    if (sum) { dnnl_post_ops_t po; CHK(dnnl_post_ops_create(&po)); CHK(dnnl_post_ops_append_sum(po, 1.0f)); CHK(dnnl_primitive_attr_set_post_ops(attr, po)); dnnl_post_ops_destroy(po); }
    dnnl_primitive_desc_t pd; CHK(dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL));
    CHK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    const dnnl_memory_desc_t *bq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    CHK(dnnl_primitive_create(&r.p, pd));
    CHK(dnnl_memory_create(&r.a, &ad, eng, A));
    CHK(dnnl_memory_create(&r.c, &cd, eng, C));
    if (anyB) { // reorder user B into the primitive's layout once
        dnnl_memory_t ub; CHK(dnnl_memory_create(&ub, &bdu, eng, B));
        CHK(dnnl_memory_create(&r.b, bq, eng, DNNL_MEMORY_ALLOCATE));
        dnnl_primitive_desc_t rpd; CHK(dnnl_reorder_primitive_desc_create(&rpd, &bdu, eng, bq, eng, NULL));
        dnnl_primitive_t rp; CHK(dnnl_primitive_create(&rp, rpd));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ub}, {DNNL_ARG_TO, r.b}};
        CHK(dnnl_primitive_execute(rp, stream, 2, args)); CHK(dnnl_stream_wait(stream));
    } else CHK(dnnl_memory_create(&r.b, &bd, eng, B));
    return r;
}
static void run(mm_t *m) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m->a}, {DNNL_ARG_WEIGHTS, m->b}, {DNNL_ARG_DST, m->c}};
    CHK(dnnl_primitive_execute(m->p, stream, 3, args)); CHK(dnnl_stream_wait(stream));
}
int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    openblas_set_num_threads(1); omp_set_num_threads(1);
    CHK(dnnl_engine_create(&eng, dnnl_cpu, 0)); CHK(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    printf("isa=0x%x omp_max=%d\n", dnnl_get_effective_cpu_isa(), omp_get_max_threads());
    int shapes[][2] = {{576, 960}, {576, 576}, {576, 3072}, {1536, 576}, {576, 49152}};
    const char *names[] = {"qkv", "o", "gate|up", "down", "head"};
    int M = 512;
    for (int s = 0; s < 5; s++) for (int dir = 0; dir < 2; dir++) {
        int in_ = shapes[s][0], out = shapes[s][1];
        // W [out, in_] row-major. forward: C[M,out] = X[M,in_] W^T (K=in_,N=out, B=W^T: transB). backward: C[M,in_] = DY[M,out] W (K=out,N=in_)
        int K = dir == 0 ? in_ : out, N = dir == 0 ? out : in_;
        float *x = malloc(4L * M * K), *w = malloc(4L * out * in_), *c = malloc(4L * M * N), *wt = malloc(4L * out * in_);
        uint16_t *xb = malloc(2L * M * K), *wb = malloc(2L * out * in_);
        srand(s * 2 + dir);
        for (long i = 0; i < (long)M * K; i++) { x[i] = rand() / (float)RAND_MAX - 0.5f; xb[i] = bf16(x[i]); }
        for (long i = 0; i < (long)out * in_; i++) { w[i] = (rand() / (float)RAND_MAX - 0.5f) * 0.1f; wb[i] = bf16(w[i]); }
        const char *impl1, *impl2, *impl3;
        mm_t plain = make(M, K, N, dir == 0, 0, dnnl_bf16, xb, wb, c, 0, &impl1);
        mm_t blocked = make(M, K, N, dir == 0, 1, dnnl_bf16, xb, wb, c, 0, &impl2);
        mm_t f32p = make(M, K, N, dir == 0, 0, dnnl_f32, x, w, c, 0, &impl3);
        double best[6] = {1e9, 1e9, 1e9, 1e9, 1e9, 1e9};
        for (int r = 0; r < reps; r++) {
            double t = now();
            if (dir == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, x, K, w, K, 0, c, N);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, x, K, w, N, 0, c, N);
            double t1 = now(); if (t1 - t < best[0]) best[0] = t1 - t;
            run(&plain); double t2 = now(); if (t2 - t1 < best[1]) best[1] = t2 - t1;
            run(&blocked); double t3 = now(); if (t3 - t2 < best[2]) best[2] = t3 - t2;
            run(&f32p); double t4 = now(); if (t4 - t3 < best[3]) best[3] = t4 - t3;
            for (long i = 0; i < (long)M * K; i++) xb[i] = bf16(x[i]);
            double t5 = now(); if (t5 - t4 < best[4]) best[4] = t5 - t4;
            for (long i = 0; i < (long)out * in_; i++) wt[i] = f32(wb[i]);
            double t6 = now(); if (t6 - t5 < best[5]) best[5] = t6 - t5;
        }
        double fl = 2.0 * M * N * K;
        printf("%-8s %s M=%d K=%5d N=%5d sgemm %6.1f GF | dnnl bf16 plainB %6.1f GF (%.2fx) [%s] | blockedB %6.1f (%.2fx) [%s] | dnnl f32 %6.1f [%s] | cvt x %.3f ms (%.1f%% of bf16) | decode W %.3f ms\n",
               names[s], dir ? "bwd" : "fwd", M, K, N, fl / best[0] * 1e-9, fl / best[1] * 1e-9, best[0] / best[1], impl1,
               fl / best[2] * 1e-9, best[0] / best[2], impl2, fl / best[3] * 1e-9, impl3, best[4] * 1e3, 100 * best[4] / best[1], best[5] * 1e3);
        fflush(stdout);
    }
    return 0;
}
