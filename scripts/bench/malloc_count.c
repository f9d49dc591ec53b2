// Allocation counter for `pilot bench`: LD_PRELOAD it and the bench reports heap allocations per
// training step (every malloc/calloc/realloc/memalign-family call counts one). Built by scripts/bench/bench.sh:
//   cc -O2 -shared -fPIC -o .build-engine/libmalloc_count.so scripts/bench/malloc_count.c
// It forwards to glibc's own entry points (__libc_*), so it needs no dlsym and cannot recurse.
#include <stddef.h>
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static unsigned long count;

unsigned long pilot_alloc_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }

#define COUNT() __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED)

void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { COUNT(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void *memalign(size_t al, size_t n) { COUNT(); return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { COUNT(); return __libc_memalign(al, n); }
void *valloc(size_t n) { COUNT(); return __libc_valloc(n); }
void *pvalloc(size_t n) { COUNT(); return __libc_pvalloc(n); }
int posix_memalign(void **out, size_t al, size_t n) {
    COUNT();
    if (al < sizeof(void *) || (al & (al - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(al, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
