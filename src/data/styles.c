/* styles.c — the style renderers of styles.h: line drawings (Sobel, contours, Laplacian), the
 * held-out pencil sketch (colour dodge), and photometric/geometric styles; plus name lookup. */
#include "data/styles.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor.h"

/* ---- helpers on single planes (h,w), values in [0,1] ---------------------------------------- */

/* Sizes of blurs and blocks grow with the image; 28×28 (Fashion-MNIST) is the unit. */
static float unit(int h, int w) {
    float s = (float)(h < w ? h : w) / 28.0f;
    return s < 1.0f ? 1.0f : s;
}

static float clamp01(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }

static float *alloc_plane(int h, int w) {
    float *p = calloc((size_t)h * (size_t)w, sizeof(float));
    da_check(p != NULL, "style", "out of memory for a %d×%d plane", h, w);
    return p;
}

/* The grey image in [0,1]: 0.299R + 0.587G + 0.114B for RGB. */
static void grey01(const float *in, int c, int h, int w, float *g) {
    size_t n = (size_t)h * (size_t)w;
    for (size_t i = 0; i < n; i++) {
        float v = c == 3 ? 0.299f * in[i] + 0.587f * in[n + i] + 0.114f * in[2 * n + i] : in[i];
        g[i] = clamp01((v + 1.0f) * 0.5f);
    }
}

/* A grey plane in [0,1] written to every channel of out in [-1,1]. */
static void store_grey(const float *g, int c, int h, int w, float *out) {
    size_t n = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++)
        for (size_t i = 0; i < n; i++) out[(size_t)k * n + i] = 2.0f * clamp01(g[i]) - 1.0f;
}

/* Pixel (y,x) with the edge pixels repeated outside the image. */
static float at(const float *p, int h, int w, int y, int x) {
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    return p[(size_t)y * (size_t)w + (size_t)x];
}

/* Separable Gaussian blur (radius ceil(3σ), edges repeated); dst may equal src. */
static void gaussian_blur(const float *src, int h, int w, float sigma, float *dst) {
    int r = (int)ceilf(3.0f * sigma);
    if (r < 1) r = 1;
    float *k = malloc(sizeof(float) * (size_t)(2 * r + 1));
    float *tmp = alloc_plane(h, w);
    da_check(k != NULL, "style", "out of memory");
    float sum = 0.0f;
    for (int i = -r; i <= r; i++) sum += k[i + r] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] /= sum;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0.0f;
            for (int i = -r; i <= r; i++) s += k[i + r] * at(src, h, w, y, x + i);
            tmp[(size_t)y * (size_t)w + (size_t)x] = s;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0.0f;
            for (int i = -r; i <= r; i++) s += k[i + r] * at(tmp, h, w, y + i, x);
            dst[(size_t)y * (size_t)w + (size_t)x] = s;
        }
    free(tmp);
    free(k);
}

/* Sobel gradients and magnitude; returns the largest magnitude. gx, gy may be NULL. */
static float sobel(const float *g, int h, int w, float *mag, float *gx, float *gy) {
    float mx = 0.0f;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float a = at(g, h, w, y - 1, x - 1), b = at(g, h, w, y - 1, x), c = at(g, h, w, y - 1, x + 1);
            float d = at(g, h, w, y, x - 1), f = at(g, h, w, y, x + 1);
            float p = at(g, h, w, y + 1, x - 1), q = at(g, h, w, y + 1, x), r = at(g, h, w, y + 1, x + 1);
            float sx = (c + 2.0f * f + r) - (a + 2.0f * d + p), sy = (p + 2.0f * q + r) - (a + 2.0f * b + c);
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            mag[i] = sqrtf(sx * sx + sy * sy);
            if (gx) gx[i] = sx;
            if (gy) gy[i] = sy;
            if (mag[i] > mx) mx = mag[i];
        }
    return mx;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median of the outermost ring of pixels: the background level of a centred object, even when
 * the object touches the edge in places. */
static float border_median(const float *g, int h, int w) {
    size_t n = 0, cap = h > 1 && w > 1 ? 2 * (size_t)h + 2 * (size_t)w - 4 : (size_t)h * (size_t)w;
    float *ring = malloc(sizeof(float) * cap);
    da_check(ring != NULL, "style", "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (y == 0 || x == 0 || y == h - 1 || x == w - 1) ring[n++] = g[(size_t)y * (size_t)w + (size_t)x];
    qsort(ring, n, sizeof(float), cmp_float);
    float m = n % 2 ? ring[n / 2] : 0.5f * (ring[n / 2 - 1] + ring[n / 2]);
    free(ring);
    return m;
}

/* The grey image on "paper": in [0,1] with a light background (an image whose border is darker
 * than mid-grey, a bright object on black as in Fashion-MNIST, is inverted). */
static void paper_grey(const float *in, int c, int h, int w, float *g) {
    grey01(in, c, h, w, g);
    if (border_median(g, h, w) < 0.5f)
        for (size_t i = 0; i < (size_t)h * (size_t)w; i++) g[i] = 1.0f - g[i];
}

/* ---- the styles ------------------------------------------------------------------------------- */

static void r_photo(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    memcpy(out, in, sizeof(float) * (size_t)c * (size_t)h * (size_t)w);
}

/* 1 − Sobel magnitude / its maximum: dark lines on white whatever the image's polarity. */
static void r_sobel(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    float *g = alloc_plane(h, w), *m = alloc_plane(h, w);
    grey01(in, c, h, w, g);
    float mx = sobel(g, h, w, m, NULL, NULL);
    for (size_t i = 0; i < (size_t)h * (size_t)w; i++) g[i] = mx > 1e-6f ? 1.0f - m[i] / mx : 1.0f;
    store_grey(g, c, h, w, out);
    free(g);
    free(m);
}

/* Thin contours: Sobel on a lightly blurred image, non-maximum suppression along the gradient,
 * then hysteresis (strong > 30 % of the maximum, weak > 12 % when joined to a strong pixel). */
static void r_contour(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    float *g = alloc_plane(h, w), *m = alloc_plane(h, w), *gx = alloc_plane(h, w), *gy = alloc_plane(h, w);
    unsigned char *edge = calloc(n, 1);
    int *stack = malloc(sizeof(int) * n);
    da_check(edge && stack, "style", "out of memory");
    grey01(in, c, h, w, g);
    gaussian_blur(g, h, w, 0.5f * sqrtf(unit(h, w)), g);
    float mx = sobel(g, h, w, m, gx, gy);
    int top = 0;
    for (int y = 0; y < h && mx > 1e-6f; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            float v = m[i];
            if (v < 0.12f * mx) continue;
            /* the neighbours across the edge, with the gradient direction in 45° steps */
            float ax = fabsf(gx[i]), ay = fabsf(gy[i]);
            int dy, dx;
            if (ay <= 0.4142f * ax) dy = 0, dx = 1;
            else if (ax <= 0.4142f * ay) dy = 1, dx = 0;
            else if ((gx[i] > 0) == (gy[i] > 0)) dy = 1, dx = 1;
            else dy = 1, dx = -1;
            if (v < at(m, h, w, y + dy, x + dx) || v < at(m, h, w, y - dy, x - dx)) continue;
            edge[i] = 1; /* weak */
            if (v >= 0.30f * mx) {
                edge[i] = 2;
                stack[top++] = (int)i;
            }
        }
    while (top > 0) { /* grow strong edges into touching weak ones */
        int i = stack[--top], y = i / w, x = i % w;
        for (int ddy = -1; ddy <= 1; ddy++)
            for (int ddx = -1; ddx <= 1; ddx++) {
                int yy = y + ddy, xx = x + ddx;
                if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
                size_t j = (size_t)yy * (size_t)w + (size_t)xx;
                if (edge[j] == 1) {
                    edge[j] = 2;
                    stack[top++] = (int)j;
                }
            }
    }
    for (size_t i = 0; i < n; i++) g[i] = edge[i] == 2 ? 0.0f : 1.0f;
    store_grey(g, c, h, w, out);
    free(g);
    free(m);
    free(gx);
    free(gy);
    free(edge);
    free(stack);
}

/* Laplacian-of-Gaussian sketch: strokes where the brightness curves, darker for stronger ones. */
static void r_laplacian(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    float *g = alloc_plane(h, w), *l = alloc_plane(h, w);
    grey01(in, c, h, w, g);
    gaussian_blur(g, h, w, 0.5f * sqrtf(unit(h, w)), g);
    float mx = 0.0f;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0.0f;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) s += at(g, h, w, y + dy, x + dx);
            float v = fabsf(s - 9.0f * at(g, h, w, y, x));
            l[(size_t)y * (size_t)w + (size_t)x] = v;
            if (v > mx) mx = v;
        }
    for (size_t i = 0; i < n; i++) g[i] = mx > 1e-6f ? 1.0f - clamp01(2.0f * l[i] / mx - 0.1f) : 1.0f;
    store_grey(g, c, h, w, out);
    free(g);
    free(l);
}

/* Pencil sketch (held out): colour dodge of the grey image with its blurred inverse,
 * grey / (1 − blur(1 − grey)). The grey image is taken with a light background ("paper"):
 * an image whose border (median) is darker than mid-grey (a bright object on black, as Fashion-MNIST)
 * is inverted first, so the sketch is dark strokes on white either way. */
static void r_pencil(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    float *g = alloc_plane(h, w), *b = alloc_plane(h, w);
    paper_grey(in, c, h, w, g);
    for (size_t i = 0; i < n; i++) b[i] = 1.0f - g[i];
    gaussian_blur(b, h, w, 1.5f * unit(h, w), b);
    for (size_t i = 0; i < n; i++) {
        float den = 1.0f - b[i];
        g[i] = den > 1e-4f ? clamp01(g[i] / den) : 1.0f;
    }
    store_grey(g, c, h, w, out);
    free(g);
    free(b);
}

/* Extended difference of Gaussians (validation only): u = (1+p)·G_σ(g) − p·G_kσ(g) on the paper
 * image, white where u ≥ ε, else 1 + tanh(φ(u − ε)); a soft ink drawing with filled dark areas. */
static void r_xdog(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    float *g = alloc_plane(h, w), *a = alloc_plane(h, w), *b = alloc_plane(h, w);
    paper_grey(in, c, h, w, g);
    float sigma = 0.6f * unit(h, w), p = 20.0f, eps = 0.1f, phi = 10.0f;
    gaussian_blur(g, h, w, sigma, a);
    gaussian_blur(g, h, w, 1.6f * sigma, b);
    for (size_t i = 0; i < n; i++) {
        float u = (1.0f + p) * a[i] - p * b[i];
        g[i] = u >= eps ? 1.0f : clamp01(1.0f + tanhf(phi * (u - eps)));
    }
    store_grey(g, c, h, w, out);
    free(g);
    free(a);
    free(b);
}

/* Pen-and-ink hatching (test panel): white paper, diagonal hatch lines where the paper image is
 * darker than 0.8, cross-hatching below 0.55, a third direction below 0.3, and a dark outline
 * where the Sobel magnitude exceeds a quarter of its maximum. Tone comes from line density, not
 * from edges: a family the mini-CLIP's edge renderers do not cover. */
static void r_hatching(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    float *g = alloc_plane(h, w), *m = alloc_plane(h, w), *o = alloc_plane(h, w);
    paper_grey(in, c, h, w, g);
    gaussian_blur(g, h, w, 0.5f * unit(h, w), g);
    float mx = sobel(g, h, w, m, NULL, NULL);
    int period = (int)lrintf(3.0f * unit(h, w));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            float v = g[i], ink = 1.0f;
            if (v < 0.80f && (x + y) % period == 0) ink = 0.15f;
            if (v < 0.55f && ((x - y) % period + period) % period == 0) ink = 0.15f;
            if (v < 0.30f && y % period == period / 2) ink = 0.15f;
            if (mx > 1e-6f && m[i] > 0.25f * mx) ink = 0.0f;
            o[i] = ink;
        }
    store_grey(o, c, h, w, out);
    (void)n;
    free(g);
    free(m);
    free(o);
}

/* Stippling (test panel): ordered dithering of the lightly blurred paper image with a 4×4 Bayer
 * matrix — black dots on white whose density follows the tone (a halftone print). */
static void r_stipple(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    static const int bayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};
    float *g = alloc_plane(h, w);
    paper_grey(in, c, h, w, g);
    gaussian_blur(g, h, w, 0.5f * unit(h, w), g);
    int cell = (int)lrintf(unit(h, w));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            float t = ((float)bayer[(y / cell) % 4][(x / cell) % 4] + 0.5f) / 16.0f;
            g[i] = g[i] < t ? 0.0f : 1.0f;
        }
    store_grey(g, c, h, w, out);
    free(g);
}

static void r_negative(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    for (size_t i = 0; i < (size_t)c * (size_t)h * (size_t)w; i++) out[i] = -in[i];
}

static void r_blur(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++) gaussian_blur(in + (size_t)k * n, h, w, 1.0f * unit(h, w), out + (size_t)k * n);
}

/* Gaussian noise of standard deviation 0.3 (on the [-1,1] scale), clamped. */
static void r_noisy(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    da_rng_normal(rng, out, (int64_t)n, 0.0f, 0.3f);
    for (size_t i = 0; i < n; i++) {
        float v = in[i] + out[i];
        out[i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
    }
}

/* Blocks of about a seventh of the shorter side, each filled with its mean. */
static void r_pixelated(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    int b = (int)lrintf((float)(h < w ? h : w) / 7.0f);
    if (b < 2) b = 2;
    size_t n = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++)
        for (int y0 = 0; y0 < h; y0 += b)
            for (int x0 = 0; x0 < w; x0 += b) {
                int y1 = y0 + b < h ? y0 + b : h, x1 = x0 + b < w ? x0 + b : w;
                float s = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) s += in[(size_t)k * n + (size_t)y * (size_t)w + (size_t)x];
                s /= (float)((y1 - y0) * (x1 - x0));
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) out[(size_t)k * n + (size_t)y * (size_t)w + (size_t)x] = s;
            }
}

/* Intensity maps on the [0,1] scale, channel by channel. */
static void map01(const float *in, int c, int h, int w, float *out, float a, float b) {
    for (size_t i = 0; i < (size_t)c * (size_t)h * (size_t)w; i++) {
        float v = clamp01(a * (in[i] + 1.0f) * 0.5f + b);
        out[i] = 2.0f * v - 1.0f;
    }
}

static void r_dark(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    map01(in, c, h, w, out, 0.3f, 0.0f);
}

static void r_bright(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    map01(in, c, h, w, out, 0.45f, 0.55f);
}

static void r_high_contrast(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    map01(in, c, h, w, out, 3.0f, 0.5f - 1.5f);
}

/* Turned by 180°. */
static void r_upside_down(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++)
        for (size_t i = 0; i < n; i++) out[(size_t)k * n + i] = in[(size_t)k * n + (n - 1 - i)];
}

/* The object filled black on white: pixels that differ from the background level (the border
 * median) by more than 0.1 are the object, and so is everything the background cannot reach. */
static void r_silhouette(const float *in, int c, int h, int w, float *out, da_rng *rng) {
    (void)rng;
    size_t n = (size_t)h * (size_t)w;
    float *g = alloc_plane(h, w);
    unsigned char *bg = calloc(n, 1);
    int *stack = malloc(sizeof(int) * n);
    da_check(bg && stack, "style", "out of memory");
    grey01(in, c, h, w, g);
    float level = border_median(g, h, w);
    int top = 0;
    /* flood the background in from every border pixel that is not part of the object */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            if ((y == 0 || x == 0 || y == h - 1 || x == w - 1) && fabsf(g[i] - level) <= 0.1f) {
                bg[i] = 1;
                stack[top++] = (int)i;
            }
        }
    while (top > 0) {
        int i = stack[--top], y = i / w, x = i % w;
        static const int dy[4] = {-1, 1, 0, 0}, dx[4] = {0, 0, -1, 1};
        for (int d = 0; d < 4; d++) {
            int yy = y + dy[d], xx = x + dx[d];
            if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
            size_t j = (size_t)yy * (size_t)w + (size_t)xx;
            if (!bg[j] && fabsf(g[j] - level) <= 0.1f) {
                bg[j] = 1;
                stack[top++] = (int)j;
            }
        }
    }
    for (size_t i = 0; i < n; i++) g[i] = bg[i] ? 1.0f : 0.0f;
    store_grey(g, c, h, w, out);
    free(g);
    free(bg);
    free(stack);
}

/* ---- the table ---------------------------------------------------------------------------------- */

#define SYN(...) ((const char *const[]){__VA_ARGS__, NULL})

static const da_style STYLES[] = {
    {"photo", DA_STYLE_TRAIN, false, SYN("photograph", "picture", "image", "original", "real", "realistic", "natural"),
     "the image unchanged", r_photo},
    {"sobel", DA_STYLE_TRAIN, false, SYN("sketch", "sketches", "drawing", "drawings", "line drawing", "edge drawing", "hand drawing"),
     "1 - normalised Sobel magnitude: dark lines on white", r_sobel},
    {"contour", DA_STYLE_TRAIN, false, SYN("outline", "outlines", "contours", "line art", "lineart", "edges", "edge map", "contour drawing"),
     "thin thresholded edges (non-maximum suppression + hysteresis): black lines on white", r_contour},
    {"laplacian", DA_STYLE_TRAIN, false, SYN("laplacian sketch", "ink", "ink sketch", "ink drawing", "scribble"),
     "Laplacian-of-Gaussian strokes on white", r_laplacian},
    {"pencil", DA_STYLE_TEST, true, SYN("pencil sketch", "pencil drawing", "graphite", "charcoal"),
     "TEST PANEL (held out): colour dodge of the grey image with its blurred inverse", r_pencil},
    {"hatching", DA_STYLE_TEST, true, SYN("hatched", "cross hatching", "crosshatch", "pen and ink", "engraving"),
     "TEST PANEL (held out): pen-and-ink hatching whose density follows the tone, dark outline", r_hatching},
    {"stipple", DA_STYLE_TEST, true, SYN("stippled", "stippling", "dotted", "halftone", "dithered"),
     "TEST PANEL (held out): black dots on white, ordered dithering of the tone", r_stipple},
    {"xdog", DA_STYLE_VALIDATION, true, SYN("difference of gaussians", "toon", "cartoon", "comic"),
     "VALIDATION (held out): extended difference of Gaussians ink drawing, for choosing recipes", r_xdog},
    {"negative", DA_STYLE_TRAIN, false, SYN("inverted", "invert", "inverse", "negative image", "film negative"),
     "intensities inverted", r_negative},
    {"blur", DA_STYLE_TRAIN, false, SYN("blurry", "blurred", "out of focus", "defocused", "gaussian blur", "soft"),
     "Gaussian blur (sigma = 1 pixel per 28)", r_blur},
    {"noisy", DA_STYLE_TRAIN, false, SYN("noise", "grainy", "gaussian noise", "static", "film grain"),
     "Gaussian noise, standard deviation 0.3 on [-1,1]", r_noisy},
    {"pixelated", DA_STYLE_TRAIN, false, SYN("pixel art", "pixels", "low resolution", "low res", "mosaic", "blocky"),
     "blocks of 1/7 of the shorter side", r_pixelated},
    {"dark", DA_STYLE_TRAIN, false, SYN("dim", "underexposed", "night", "low light"),
     "intensities scaled to 30 %", r_dark},
    {"bright", DA_STYLE_TRAIN, false, SYN("overexposed", "light", "washed out"),
     "intensities mapped to [0.55, 1]", r_bright},
    {"high-contrast", DA_STYLE_TRAIN, false, SYN("contrast", "contrasty", "harsh contrast"),
     "contrast tripled around mid-grey", r_high_contrast},
    {"upside-down", DA_STYLE_TRAIN, false, SYN("flipped", "rotated", "rotated 180", "turned over", "inverted vertically"),
     "turned by 180 degrees", r_upside_down},
    {"silhouette", DA_STYLE_TRAIN, false, SYN("silhouettes", "shadow", "shadows", "black shape", "filled shape"),
     "the object filled black on white", r_silhouette},
};

int da_style_count(void) { return (int)(sizeof STYLES / sizeof STYLES[0]); }

int da_style_test_panel(const da_style **out, int max) {
    int k = 0;
    for (int i = 0; i < da_style_count() && k < max; i++)
        if (STYLES[i].use == DA_STYLE_TEST) out[k++] = &STYLES[i];
    return k;
}

const da_style *da_style_validation(void) {
    for (int i = 0; i < da_style_count(); i++)
        if (STYLES[i].use == DA_STYLE_VALIDATION) return &STYLES[i];
    return NULL;
}

const da_style *da_style_get(int i) {
    da_check(i >= 0 && i < da_style_count(), "da_style_get", "index %d outside 0..%d", i, da_style_count() - 1);
    return &STYLES[i];
}

/* Lower case, '-' '_' and runs of white space as one space, no leading article, no trailing
 * "style". */
static void normalise(const char *s, char *out, size_t len) {
    size_t k = 0;
    bool space = true; /* drops leading spaces */
    for (; *s && k + 1 < len; s++) {
        char ch = (char)tolower((unsigned char)*s);
        if (ch == '-' || ch == '_' || isspace((unsigned char)ch)) {
            if (!space) out[k++] = ' ';
            space = true;
        } else {
            out[k++] = ch;
            space = false;
        }
    }
    while (k && out[k - 1] == ' ') k--;
    out[k] = '\0';
    static const char *const articles[] = {"a ", "an ", "the "};
    for (size_t i = 0; i < 3; i++) {
        size_t a = strlen(articles[i]);
        if (strncmp(out, articles[i], a) == 0) {
            memmove(out, out + a, strlen(out + a) + 1);
            break;
        }
    }
    size_t n = strlen(out);
    if (n > 6 && strcmp(out + n - 6, " style") == 0) out[n - 6] = '\0';
}

const da_style *da_style_find(const char *name) {
    if (!name) return NULL;
    char want[128], have[128];
    normalise(name, want, sizeof want);
    if (!want[0]) return NULL;
    for (int i = 0; i < da_style_count(); i++) {
        normalise(STYLES[i].name, have, sizeof have);
        if (strcmp(want, have) == 0) return &STYLES[i];
        for (const char *const *s = STYLES[i].synonyms; *s; s++) {
            normalise(*s, have, sizeof have);
            if (strcmp(want, have) == 0) return &STYLES[i];
        }
    }
    return NULL;
}

void da_style_render(const da_style *s, const float *in, int c, int h, int w, float *out, da_rng *rng) {
    da_check(s && (c == 1 || c == 3) && h > 0 && w > 0, "da_style_render", "bad image shape (%d,%d,%d)", c, h, w);
    da_rng own;
    if (!rng) {
        da_rng_init(&own, 0);
        rng = &own;
    }
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    const float *src = in;
    float *copy = NULL;
    if (out < in + n && in < out + n) { /* renderers read and write separate buffers */
        copy = malloc(sizeof(float) * n);
        da_check(copy != NULL, "da_style_render", "out of memory");
        memcpy(copy, in, sizeof(float) * n);
        src = copy;
    }
    s->render(src, c, h, w, out, rng);
    free(copy);
}

void da_style_render_batch(const da_style *s, const float *in, int64_t n, int c, int h, int w, float *out, uint64_t seed) {
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    #pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; i++) {
        da_rng r;
        da_rng_init(&r, da_rng_at(seed, (uint64_t)i));
        da_style_render(s, in + per * (size_t)i, c, h, w, out + per * (size_t)i, &r);
    }
}
