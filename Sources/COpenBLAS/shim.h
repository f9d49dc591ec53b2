// OpenBLAS's CBLAS interface plus its runtime configuration calls.
#ifndef PILOT_COPENBLAS_SHIM_H
#define PILOT_COPENBLAS_SHIM_H
#include <cblas.h>

static inline int pilot_openblas_threads(void) { return openblas_get_num_threads(); }
static inline void pilot_openblas_set_threads(int n) { openblas_set_num_threads(n); }
static inline const char *pilot_openblas_config(void) { return openblas_get_config(); }
static inline const char *pilot_openblas_corename(void) { return openblas_get_corename(); }
static inline int pilot_openblas_parallel(void) { return openblas_get_parallel(); }

#endif
