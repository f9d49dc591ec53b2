// HDF5's native types and flags are macros that expand to library globals or casts,
// which Swift cannot import. Each getter below returns one of them.
#ifndef PILOT_CHDF5_SHIM_H
#define PILOT_CHDF5_SHIM_H
#include <stdio.h>
#include <hdf5.h>

static inline hid_t pilot_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t pilot_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t pilot_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t pilot_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t pilot_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t pilot_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t pilot_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t pilot_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t pilot_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t pilot_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t pilot_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t pilot_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline unsigned pilot_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned pilot_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned pilot_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned pilot_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hid_t pilot_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t pilot_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t pilot_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t pilot_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t pilot_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t pilot_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t pilot_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t pilot_H5S_ALL(void) { return H5S_ALL; }
static inline int pilot_H5T_CSET_UTF8(void) { return H5T_CSET_UTF8; }

// Silences HDF5's automatic printing of its error stack: the store turns the stack into Swift errors.
static inline herr_t pilot_h5_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// Collects the current default error stack into `buf` (newest first), one "func: message" per line.
typedef struct { char *buf; size_t cap; size_t len; } pilot_h5_errbuf;
static inline herr_t pilot_h5_walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    pilot_h5_errbuf *b = (pilot_h5_errbuf *)data;
    if (b->len + 1 >= b->cap) return 0;
    int w = snprintf(b->buf + b->len, b->cap - b->len, "%s%s(): %s",
                     b->len ? "; " : "", err->func_name ? err->func_name : "?", err->desc ? err->desc : "");
    if (w > 0) b->len += (size_t)w;
    if (b->len >= b->cap) b->len = b->cap - 1;
    (void)n;
    return 0;
}
static inline size_t pilot_h5_error_stack(char *buf, size_t cap) {
    pilot_h5_errbuf b = { buf, cap, 0 };
    if (cap) buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, pilot_h5_walk_cb, &b);
    H5Eclear2(H5E_DEFAULT);
    return b.len;
}
#endif
