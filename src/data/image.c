/* image.c — reading image files with Debian's compiled stb_image (libstb) and writing 8-bit PNG
 * files and PNG grids with stb_image_write into memory, then atomically to disk. */
#include "data/image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "util/atomic.h"

/* A pixel value in [-1,1] (clamped; NaN becomes -1) as an 8-bit level, rounded to nearest. */
static unsigned char to_u8(float x) {
    float v = x > 1.0f ? 1.0f : x;
    if (!(v >= -1.0f)) v = -1.0f; /* also catches NaN */
    return (unsigned char)lrintf((v + 1.0f) * 127.5f);
}

int da_image_read(const char *path, int channels, float **out, int *c, int *h, int *w, char *err, size_t errlen) {
    *out = NULL;
    if (channels != 0 && channels != 1 && channels != 3) {
        snprintf(err, errlen, "%s: cannot convert to %d channels (use 1 for grey or 3 for RGB)", path, channels);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open image %s: %s", path, strerror(errno));
        return -1;
    }
    int iw = 0, ih = 0, comp = 0;
    unsigned char *px = stbi_load_from_file(f, &iw, &ih, &comp, 0);
    fclose(f);
    if (!px) {
        const char *why = stbi_failure_reason();
        snprintf(err, errlen, "%s: not a readable image (%s); expected PNG, JPEG, BMP, GIF, TGA or PNM", path,
                 why ? why : "unknown error");
        return -1;
    }
    if (iw <= 0 || ih <= 0 || comp < 1 || comp > 4) {
        stbi_image_free(px);
        snprintf(err, errlen, "%s: unsupported image layout (%d×%d, %d components)", path, iw, ih, comp);
        return -1;
    }
    /* Colour components stored in the file, alpha dropped: 1 (grey, grey+alpha) or 3 (RGB, RGBA). */
    int src_c = comp <= 2 ? 1 : 3;
    int dst_c = channels ? channels : src_c;
    size_t plane = (size_t)iw * (size_t)ih;
    float *img = malloc(plane * (size_t)dst_c * sizeof(float));
    if (!img) {
        stbi_image_free(px);
        snprintf(err, errlen, "%s: out of memory for a %d×%d image", path, iw, ih);
        return -1;
    }
    for (size_t p = 0; p < plane; p++) {
        const unsigned char *q = px + p * (size_t)comp;
        float v[3];
        for (int k = 0; k < src_c; k++) v[k] = (float)q[k] / 127.5f - 1.0f;
        if (dst_c == src_c) {
            for (int k = 0; k < dst_c; k++) img[(size_t)k * plane + p] = v[k];
        } else if (dst_c == 1) {
            img[p] = 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2];
        } else {
            for (int k = 0; k < 3; k++) img[(size_t)k * plane + p] = v[0];
        }
    }
    stbi_image_free(px);
    *out = img;
    *c = dst_c;
    *h = ih;
    *w = iw;
    return 0;
}

int da_image_info(const char *path, int *c, int *h, int *w, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open image %s: %s", path, strerror(errno));
        return -1;
    }
    int iw = 0, ih = 0, comp = 0;
    int ok = stbi_info_from_file(f, &iw, &ih, &comp);
    fclose(f);
    if (!ok || iw <= 0 || ih <= 0 || comp < 1 || comp > 4) {
        const char *why = stbi_failure_reason();
        snprintf(err, errlen, "%s: not a readable image (%s); expected PNG, JPEG, BMP, GIF, TGA or PNM", path,
                 why ? why : "unknown error");
        return -1;
    }
    *c = comp <= 2 ? 1 : 3;
    *h = ih;
    *w = iw;
    return 0;
}

/* stb_image_write hands the encoded PNG over in pieces; they are gathered in a growing buffer. */
typedef struct {
    unsigned char *data;
    size_t size, cap;
    int failed;
} png_buffer;

static void png_append(void *ctx, void *data, int size) {
    png_buffer *b = ctx;
    if (b->failed || size <= 0) return;
    if (b->size + (size_t)size > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->size + (size_t)size) cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->size, data, (size_t)size);
    b->size += (size_t)size;
}

/* Encodes 8-bit interleaved pixels (h,w,c) as PNG and writes the file atomically. */
static int write_png_u8(const char *path, const unsigned char *hwc, int c, int h, int w, char *err, size_t errlen) {
    png_buffer b = {0};
    int ok = stbi_write_png_to_func(png_append, &b, w, h, c, hwc, w * c);
    if (!ok || b.failed) {
        free(b.data);
        snprintf(err, errlen, "%s: PNG encoding failed (%d×%d, %d channels; out of memory?)", path, w, h, c);
        return -1;
    }
    int rc = da_atomic_write(path, b.data, b.size, err, errlen);
    free(b.data);
    return rc;
}

static int check_shape(const char *path, int c, int h, int w, char *err, size_t errlen) {
    if (c != 1 && c != 3) {
        snprintf(err, errlen, "%s: a PNG needs 1 or 3 channels, the image has %d", path, c);
        return -1;
    }
    if (h <= 0 || w <= 0 || h > 65535 || w > 65535) {
        snprintf(err, errlen, "%s: cannot write a %d×%d image (each side must be 1..65535)", path, w, h);
        return -1;
    }
    return 0;
}

int da_image_write_png(const char *path, const float *chw, int c, int h, int w, char *err, size_t errlen) {
    if (check_shape(path, c, h, w, err, errlen)) return -1;
    size_t plane = (size_t)h * (size_t)w;
    unsigned char *px = malloc(plane * (size_t)c);
    if (!px) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (size_t p = 0; p < plane; p++)
        for (int k = 0; k < c; k++) px[p * (size_t)c + (size_t)k] = to_u8(chw[(size_t)k * plane + p]);
    int rc = write_png_u8(path, px, c, h, w, err, errlen);
    free(px);
    return rc;
}

/* Grid layout: a 2-pixel border around and between the cells, in mid-grey (level 128) so that
 * it separates both dark-background and white-background images. cols <= 0 picks a near-square
 * layout (ceil(sqrt(n)) columns). */
int da_image_write_grid(const char *path, const float *images, int64_t n, int c, int h, int w, int cols,
                        char *err, size_t errlen) {
    enum { BORDER = 2 };
    if (n <= 0) {
        snprintf(err, errlen, "%s: no images to put in the grid", path);
        return -1;
    }
    if (check_shape(path, c, h, w, err, errlen)) return -1;
    if (cols <= 0) {
        cols = (int)ceil(sqrt((double)n));
        while ((int64_t)cols * cols < n) cols++;
    }
    if ((int64_t)cols > n) cols = (int)n;
    int64_t rows = (n + cols - 1) / cols;
    int64_t gw = (int64_t)cols * (w + BORDER) + BORDER, gh = rows * (h + BORDER) + BORDER;
    if (gw > 65535 || gh > 65535) {
        snprintf(err, errlen, "%s: a grid of %lld images of %d×%d in %d columns would be %lld×%lld pixels; use fewer images",
                 path, (long long)n, w, h, cols, (long long)gw, (long long)gh);
        return -1;
    }
    unsigned char *px = malloc((size_t)gw * (size_t)gh * (size_t)c);
    if (!px) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memset(px, 128, (size_t)gw * (size_t)gh * (size_t)c);
    size_t plane = (size_t)h * (size_t)w;
    for (int64_t i = 0; i < n; i++) {
        const float *img = images + (size_t)i * (size_t)c * plane; /* (c,h,w) */
        int64_t x0 = BORDER + (i % cols) * (w + BORDER), y0 = BORDER + (i / cols) * (h + BORDER);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < c; k++)
                    px[((size_t)(y0 + y) * (size_t)gw + (size_t)(x0 + x)) * (size_t)c + (size_t)k] =
                        to_u8(img[(size_t)k * plane + (size_t)y * (size_t)w + (size_t)x]);
    }
    int rc = write_png_u8(path, px, c, (int)gh, (int)gw, err, errlen);
    free(px);
    return rc;
}
