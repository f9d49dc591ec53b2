// oneDNN's C API (Debian's libdnnl-dev 2.6, the 2.x API), plus the OpenMP calls that keep its
// primitives single-threaded: Debian builds oneDNN with OpenMP (libgomp), and the engine splits
// products over its own threads instead (PilotTensor/BF16Matmul.swift).
#ifndef PILOT_CDNNL_SHIM_H
#define PILOT_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

// From libgomp (omp.h is GCC's and not on clang's include path).
int omp_get_max_threads(void);
void omp_set_num_threads(int);

// OpenMP's thread count is a per-thread setting: a thread that never set it runs oneDNN's parallel
// regions on every core. Each thread that creates or runs a primitive calls this first (1 unless
// the engine leaves the threading of products to the libraries, PILOT_GEMM_SPLIT=0).
static inline void pilot_dnnl_threads(int n) {
    if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

// Argument indices (macros that alias other macros).
static const int pilot_dnnl_arg_src = DNNL_ARG_SRC;
static const int pilot_dnnl_arg_weights = DNNL_ARG_WEIGHTS;
static const int pilot_dnnl_arg_dst = DNNL_ARG_DST;
static const int pilot_dnnl_arg_scratchpad = DNNL_ARG_SCRATCHPAD;

#endif
