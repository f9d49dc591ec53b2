// libpng (Debian libpng-dev) behind two C functions, so that libpng's setjmp/longjmp error
// handling stays inside C: Swift cannot call setjmp. `pilot_png_header` reads the IHDR only (the
// caller checks the size before allocating anything); `pilot_png_decode` decodes into the caller's
// W*H*3 buffer as 8-bit RGB:
//   - palette -> RGB, gray of 1/2/4 bits -> 8 bits (scaled as the PNG spec says), tRNS -> alpha;
//   - 16-bit samples keep their high byte (png_set_strip_16, as Pillow reads 16-bit RGB/RGBA);
//   - gray -> RGB by replication;
//   - alpha is composited on the background colour bg: round((c*a + bg*(255-a)) / 255);
//   - no gamma or colour-profile correction (gAMA, iCCP are ignored, as Pillow does).
// Rows are read one at a time into the output (or one RGBA row when there is alpha); only an
// interlaced image with alpha needs a whole RGBA image buffer.
#ifndef PILOT_CPNG_SHIM_H
#define PILOT_CPNG_SHIM_H
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t width, height;
    int32_t bit_depth, color_type, interlaced, has_trns;
    char message[240];
} pilot_png_info;

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    pilot_png_info *info;
} pilot_png_source;

static void pilot_png_on_error(png_structp png, png_const_charp msg) {
    pilot_png_source *src = (pilot_png_source *)png_get_error_ptr(png);
    if (src && src->info && src->info->message[0] == 0) {
        strncpy(src->info->message, msg ? msg : "libpng error", sizeof(src->info->message) - 1);
    }
    png_longjmp(png, 1);
}

static void pilot_png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void pilot_png_on_read(png_structp png, png_bytep out, size_t n) {
    pilot_png_source *src = (pilot_png_source *)png_get_io_ptr(png);
    if (src->size - src->pos < n) png_error(png, "file is truncated (read past its end)");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

/// 0 on success; -1 with info->message set on any failure. out == NULL reads the header only.
static inline int pilot_png_run(const uint8_t *data, size_t size, uint8_t *out,
                                uint8_t bg_r, uint8_t bg_g, uint8_t bg_b, pilot_png_info *info) {
    memset(info, 0, sizeof(*info));
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        strcpy(info->message, "not a PNG file (bad signature)");
        return -1;
    }
    pilot_png_source src = {data, size, 8, info};
    png_structp volatile png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, pilot_png_on_error, pilot_png_on_warning);
    if (!png) { strcpy(info->message, "libpng: out of memory"); return -1; }
    png_infop volatile pinfo = png_create_info_struct(png);
    uint8_t *volatile scratch = NULL;
    if (!pinfo) { png_structp p = png; png_destroy_read_struct(&p, NULL, NULL); strcpy(info->message, "libpng: out of memory"); return -1; }
    if (setjmp(png_jmpbuf(png))) {
        png_structp p = png; png_infop i = pinfo;
        free(scratch);
        png_destroy_read_struct(&p, &i, NULL);
        return -1;
    }
    png_set_read_fn(png, &src, pilot_png_on_read);
    png_set_sig_bytes(png, 8);
    // Our own size limit is checked by the caller between the two calls; libpng's default limit
    // (1e6 per side) stays as a second guard.
    png_read_info(png, pinfo);
    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, pinfo, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    info->width = w; info->height = h; info->bit_depth = depth; info->color_type = ctype;
    info->interlaced = interlace != PNG_INTERLACE_NONE;
    info->has_trns = png_get_valid(png, pinfo, PNG_INFO_tRNS) != 0;
    if (out == NULL) {
        png_structp p = png; png_infop i = pinfo;
        png_destroy_read_struct(&p, &i, NULL);
        return 0;
    }
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    int channels = png_get_channels(png, pinfo);
    if (channels != 3 && channels != 4) png_error(png, "unexpected channel count after expansion");
    size_t row3 = (size_t)w * 3, row4 = (size_t)w * 4;
    if (channels == 3) {
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < h; y++) png_read_row(png, out + y * row3, NULL);
    } else {
        size_t rows = passes > 1 ? h : 1;
        scratch = (uint8_t *)malloc(rows * row4);
        if (!scratch) png_error(png, "out of memory for the alpha buffer");
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < h; y++) {
                uint8_t *rgba = scratch + (passes > 1 ? y * row4 : 0);
                png_read_row(png, rgba, NULL);
                if (pass == passes - 1) {
                    uint8_t *dst = out + y * row3;
                    for (png_uint_32 x = 0; x < w; x++) {
                        unsigned a = rgba[4 * x + 3], na = 255 - a;
                        dst[3 * x + 0] = (uint8_t)((rgba[4 * x + 0] * a + bg_r * na + 127) / 255);
                        dst[3 * x + 1] = (uint8_t)((rgba[4 * x + 1] * a + bg_g * na + 127) / 255);
                        dst[3 * x + 2] = (uint8_t)((rgba[4 * x + 2] * a + bg_b * na + 127) / 255);
                    }
                }
            }
    }
    png_read_end(png, NULL);
    free(scratch);
    scratch = NULL;
    png_structp p = png; png_infop i = pinfo;
    png_destroy_read_struct(&p, &i, NULL);
    return 0;
}

static inline int pilot_png_header(const uint8_t *data, size_t size, pilot_png_info *info) {
    return pilot_png_run(data, size, NULL, 0, 0, 0, info);
}

static inline int pilot_png_decode(const uint8_t *data, size_t size, uint8_t *out,
                                   uint8_t bg_r, uint8_t bg_g, uint8_t bg_b, pilot_png_info *info) {
    return pilot_png_run(data, size, out, bg_r, bg_g, bg_b, info);
}
#endif
