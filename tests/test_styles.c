/* test_styles.c — the style bank: lookup by name and synonym, one held-out style (pencil), every
 * renderer deterministic, in range and alias-safe, and each one doing what its name says on a
 * Fashion-MNIST-like blob. `test_styles --grid PATH` also writes the docs/styles.png overview
 * (8 Fashion-MNIST test images, one row per style in table order). */
#include "data/dataset.h"
#include "data/image.h"
#include "data/styles.h"
#include "test_util.h"

enum { S = 28 };

/* A bright, textured ellipse on black, like a Fashion-MNIST garment. */
static void blob(float *img) {
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            float dy = (float)(y - 14) / 10.0f, dx = (float)(x - 14) / 7.0f;
            img[y * S + x] = dy * dy + dx * dx <= 1.0f ? 0.6f + 0.1f * (float)((x + y) % 3 == 0) : -1.0f;
        }
}

static double mean(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

/* Gradient energy: the sum of squared differences between horizontal and vertical neighbours. */
static double variation(const float *x) {
    double s = 0;
    for (int y = 0; y < S; y++)
        for (int i = 0; i < S; i++) {
            if (i + 1 < S) s += pow(x[y * S + i + 1] - x[y * S + i], 2);
            if (y + 1 < S) s += pow(x[(y + 1) * S + i] - x[y * S + i], 2);
        }
    return s;
}

static int count_below(const float *x, int n, float t) {
    int k = 0;
    for (int i = 0; i < n; i++) k += x[i] < t;
    return k;
}

static void test_table(void) {
    int n = da_style_count(), held = 0;
    CHECK(n >= 14, "only %d styles", n);
    for (int i = 0; i < n; i++) {
        const da_style *s = da_style_get(i);
        held += s->held_out;
        CHECK(s->render && s->description && s->synonyms, "style %s incomplete", s->name);
        CHECK(da_style_find(s->name) == s, "%s is not found by its own name", s->name);
        for (const char *const *w = s->synonyms; *w; w++)
            CHECK(da_style_find(*w) == s, "synonym \"%s\" of %s finds %s", *w, s->name,
                  da_style_find(*w) ? da_style_find(*w)->name : "nothing");
    }
    /* the panel decision: pencil, hatching, stipple are test-only; xdog is validation-only; every
     * other style trains the mini-CLIP; held_out says exactly "not a training style" */
    int n_test = 0, n_val = 0;
    for (int i = 0; i < n; i++) {
        const da_style *s = da_style_get(i);
        CHECK(s->held_out == (s->use != DA_STYLE_TRAIN), "%s: held_out disagrees with its use", s->name);
        n_test += s->use == DA_STYLE_TEST;
        n_val += s->use == DA_STYLE_VALIDATION;
    }
    const da_style *panel[8];
    int np = da_style_test_panel(panel, 8);
    CHECK(np == 3 && n_test == 3 && held == 4 && n_val == 1, "test panel %d (%d), validation %d, held out %d", np, n_test,
          n_val, held);
    CHECK(np == 3 && !strcmp(panel[0]->name, "pencil") && !strcmp(panel[1]->name, "hatching") &&
              !strcmp(panel[2]->name, "stipple"),
          "the test panel is pencil, hatching, stipple in that order");
    CHECK(da_style_validation() && !strcmp(da_style_validation()->name, "xdog"), "xdog is the validation style");
    static const char *const pairs[][2] = {
        {"Sketch", "sobel"},          {"a pencil sketch", "pencil"}, {"Line-Art", "contour"}, {"outline", "contour"},
        {"blurry", "blur"},           {"PHOTO", "photo"},            {"picture", "photo"},    {"upside down", "upside-down"},
        {"high_contrast", "high-contrast"}, {"drawing style", "sobel"}, {"  the   silhouette ", "silhouette"},
        {"laplacian sketch", "laplacian"}, {"negative", "negative"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const da_style *s = da_style_find(pairs[i][0]);
        CHECK(s && strcmp(s->name, pairs[i][1]) == 0, "\"%s\" finds %s, expected %s", pairs[i][0], s ? s->name : "nothing",
              pairs[i][1]);
    }
    CHECK(da_style_find("watercolour") == NULL && da_style_find("") == NULL && da_style_find("a") == NULL,
          "unknown names must not match");
}

/* Every style: deterministic, in [-1,1], finite, alias-safe; on grey and RGB images. */
static void test_generic(void) {
    enum { C = 3, H = 20, W = 24 };
    static float rgb[C * H * W], a[C * H * W], b[C * H * W], inplace[C * H * W];
    da_rng r;
    da_rng_init(&r, 5);
    da_rng_uniform(&r, rgb, C * H * W, -1.0f, 1.0f);
    static float grey[S * S];
    blob(grey);
    for (int i = 0; i < da_style_count(); i++) {
        const da_style *s = da_style_get(i);
        for (int k = 0; k < 2; k++) {
            const float *in = k ? rgb : grey;
            int c = k ? C : 1, h = k ? H : S, w = k ? W : S, n = c * h * w;
            da_rng r1, r2;
            da_rng_init(&r1, 42);
            da_rng_init(&r2, 42);
            da_style_render(s, in, c, h, w, a, &r1);
            da_style_render(s, in, c, h, w, b, &r2);
            CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "%s (c=%d) is not deterministic", s->name, c);
            int ok = 1;
            for (int j = 0; j < n; j++) ok &= a[j] >= -1.0f && a[j] <= 1.0f;
            CHECK(ok, "%s (c=%d) leaves [-1,1]", s->name, c);
            memcpy(inplace, in, sizeof(float) * (size_t)n);
            da_rng_init(&r1, 42);
            da_style_render(s, inplace, c, h, w, inplace, &r1);
            CHECK(memcmp(a, inplace, sizeof(float) * (size_t)n) == 0, "%s (c=%d) in place differs", s->name, c);
            /* the input is left alone */
            static float again[C * H * W];
            if (k) {
                da_rng_uniform(&(da_rng){.seed = 5}, again, C * H * W, -1.0f, 1.0f);
                CHECK(memcmp(again, rgb, sizeof rgb) == 0, "%s changed its input", s->name);
            }
        }
    }
    /* only "noisy" depends on the rng's state */
    for (int i = 0; i < da_style_count(); i++) {
        const da_style *s = da_style_get(i);
        da_rng r1, r2;
        da_rng_init(&r1, 1);
        da_rng_init(&r2, 2);
        da_style_render(s, rgb, C, H, W, a, &r1);
        da_style_render(s, rgb, C, H, W, b, &r2);
        int same = memcmp(a, b, sizeof a) == 0;
        CHECK(same == (strcmp(s->name, "noisy") != 0), "%s: seeds 1 and 2 give %s images", s->name, same ? "the same" : "different");
    }
    /* the batch renderer: image i uses the stream seeded da_rng_at(seed, i), also in place */
    const da_style *noisy = da_style_find("noisy");
    static float batch[4 * S * S], want[4 * S * S];
    for (int i = 0; i < 4; i++) blob(batch + i * S * S);
    for (int i = 0; i < 4; i++) {
        da_rng ri;
        da_rng_init(&ri, da_rng_at(77, (uint64_t)i));
        da_style_render(noisy, batch + i * S * S, 1, S, S, want + i * S * S, &ri);
    }
    da_style_render_batch(noisy, batch, 4, 1, S, S, batch, 77);
    CHECK(memcmp(batch, want, sizeof want) == 0, "batch rendering differs from image-by-image rendering");
    CHECK(memcmp(batch, batch + S * S, sizeof(float) * S * S) != 0, "every image of a batch got the same noise");
}

/* Each style does what its name says, on the blob (bright object on black). */
static void test_behaviour(void) {
    static float in[S * S], out[S * S], out2[S * S];
    blob(in);
    const int n = S * S;
    da_rng r;
    da_rng_init(&r, 3);
    /* sobel: dark lines on white */
    da_style_render(da_style_find("sobel"), in, 1, S, S, out, &r);
    CHECK(mean(out, n) > 0.0, "sobel mean %g: not dark lines on white", mean(out, n));
    CHECK(out[0] == 1.0f && out[14 * S + 14] > 0.5f, "sobel background/flat inside not white (%g, %g)", out[0], out[14 * S + 14]);
    CHECK(count_below(out, n, -0.5f) > 10, "sobel draws no dark outline");
    /* contour: thin black lines on white */
    da_style_render(da_style_find("contour"), in, 1, S, S, out, &r);
    int black = count_below(out, n, 0.0f);
    CHECK(black > 20 && black < n / 5 && out[0] == 1.0f, "contour has %d black pixels of %d", black, n);
    CHECK(out[4 * S + 14] == -1.0f || out[5 * S + 14] == -1.0f, "contour misses the top of the ellipse");
    /* laplacian and pencil: strokes on white */
    const char *sketches[] = {"laplacian", "pencil"};
    for (int k = 0; k < 2; k++) {
        da_style_render(da_style_find(sketches[k]), in, 1, S, S, out, &r);
        CHECK(mean(out, n) > 0.3 && out[0] > 0.9f && count_below(out, n, 0.0f) > 10, "%s: mean %g, corner %g, %d dark pixels",
              sketches[k], mean(out, n), out[0], count_below(out, n, 0.0f));
    }
    /* pencil does not depend on the polarity: a dark object on white gives the same sketch */
    static float inv[S * S];
    for (int i = 0; i < n; i++) inv[i] = -in[i];
    da_style_render(da_style_find("pencil"), in, 1, S, S, out, &r);
    da_style_render(da_style_find("pencil"), inv, 1, S, S, out2, &r);
    tu_close("pencil of the inverted image", out2, out, n, 1e-5, 0);
    /* the new held-out renderers: dark marks on white paper whatever the polarity */
    const char *panel_styles[] = {"hatching", "stipple", "xdog"};
    for (int k = 0; k < 3; k++) {
        const da_style *st = da_style_find(panel_styles[k]);
        da_style_render(st, in, 1, S, S, out, &r);
        da_style_render(st, inv, 1, S, S, out2, &r);
        CHECK(out[0] == 1.0f && mean(out, n) > 0.0 && count_below(out, n, 0.0f) > 20, "%s: corner %g, mean %g, %d dark",
              panel_styles[k], out[0], mean(out, n), count_below(out, n, 0.0f));
        tu_close(panel_styles[k], out2, out, n, 1e-5, 0);
    }
    /* hatching draws lines inside the object (tone), not only its outline; stipple is binary */
    da_style_render(da_style_find("hatching"), in, 1, S, S, out, &r);
    int inner_dark = 0;
    for (int y = 10; y < 18; y++)
        for (int x = 10; x < 18; x++) inner_dark += out[y * S + x] < 0.0f;
    CHECK(inner_dark > 4 && inner_dark < 48, "hatching: %d of 64 inner pixels inked", inner_dark);
    da_style_render(da_style_find("stipple"), in, 1, S, S, out, &r);
    int binary = 1;
    for (int i = 0; i < n; i++) binary &= out[i] == 1.0f || out[i] == -1.0f;
    CHECK(binary, "stipple is not black dots on white");
    /* silhouette: the ellipse black, the rest white */
    da_style_render(da_style_find("silhouette"), in, 1, S, S, out, &r);
    int inside = 0;
    for (int i = 0; i < n; i++) inside += in[i] > -1.0f;
    CHECK(count_below(out, n, 0.0f) == inside && out[14 * S + 14] == -1.0f && out[0] == 1.0f, "silhouette: %d black, object %d",
          count_below(out, n, 0.0f), inside);
    /* photometric and geometric ones */
    da_style_render(da_style_find("photo"), in, 1, S, S, out, &r);
    CHECK(memcmp(in, out, sizeof in) == 0, "photo changed the image");
    da_style_render(da_style_find("negative"), in, 1, S, S, out, &r);
    CHECK(out[0] == 1.0f && out[14 * S + 14] == -in[14 * S + 14], "negative");
    da_style_render(da_style_find("upside-down"), in, 1, S, S, out, &r);
    CHECK(out[0] == in[n - 1] && out[3 * S + 5] == in[(S - 4) * S + S - 6], "upside-down is not a 180° turn");
    da_style_render(da_style_find("upside-down"), out, 1, S, S, out, &r);
    CHECK(memcmp(in, out, sizeof in) == 0, "turning twice is not the identity");
    da_style_render(da_style_find("dark"), in, 1, S, S, out, &r);
    CHECK(mean(out, n) < mean(in, n) - 0.1 && out[14 * S + 14] < -0.5f, "dark");
    da_style_render(da_style_find("bright"), in, 1, S, S, out, &r);
    CHECK(mean(out, n) > mean(in, n) + 0.3 && out[0] > 0.0f, "bright");
    da_style_render(da_style_find("high-contrast"), in, 1, S, S, out, &r);
    CHECK(out[14 * S + 14] == 1.0f && out[0] == -1.0f, "high-contrast keeps mid-bright cloth grey (%g)", out[14 * S + 14]);
    da_style_render(da_style_find("blur"), in, 1, S, S, out, &r);
    CHECK(variation(out) < 0.5 * variation(in) && out[0] < -0.999f, "blur keeps %g of the variation", variation(out) / variation(in));
    da_style_render(da_style_find("noisy"), in, 1, S, S, out, &r);
    double diff = 0;
    for (int i = 0; i < n; i++) diff += fabs(out[i] - in[i]);
    CHECK(diff / n > 0.1 && diff / n < 0.4, "noise of mean size %g", diff / n);
    da_style_render(da_style_find("pixelated"), in, 1, S, S, out, &r);
    int blocks = 1;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) blocks &= out[y * S + x] == out[(y / 4 * 4) * S + x / 4 * 4];
    CHECK(blocks && memcmp(in, out, sizeof in) != 0, "pixelated is not 4×4 blocks on 28×28");
}

/* On real Fashion-MNIST images (when installed): sobel is dark lines on white; the grid. */
static void test_fashion_mnist(const char *grid) {
    da_dataset d;
    char err[1024];
    da_data_opts o = {.take = 200, .seed = 11};
    if (da_dataset_load("fashion-mnist:test", &o, &d, err, sizeof err)) {
        if (grid) {
            fprintf(stderr, "cannot make the grid: %s\n", err);
            tu_failed++;
        } else {
            printf("fashion-mnist part skipped: %s\n", err);
        }
        return;
    }
    static float out[S * S];
    double m = 0;
    for (int64_t i = 0; i < d.n; i++) {
        da_style_render(da_style_find("sobel"), d.images + i * S * S, 1, S, S, out, NULL);
        m += mean(out, S * S);
    }
    CHECK(m / (double)d.n > 0.3, "sobel on Fashion-MNIST has mean %g: not dark lines on white", m / (double)d.n);
    if (grid) {
        /* one image of each of 8 classes: t-shirt, pullover, dress, coat, sandal, sneaker, bag, ankle boot */
        static const int classes[8] = {0, 2, 3, 4, 5, 7, 8, 9};
        int64_t pick[8];
        int got = 0;
        for (int k = 0; k < 8; k++)
            for (int64_t i = 0; i < d.n; i++)
                if (d.labels[i] == classes[k]) {
                    pick[got++] = i;
                    break;
                }
        int ns = da_style_count();
        float *cells = malloc(sizeof(float) * (size_t)ns * 8 * S * S);
        for (int s = 0; s < ns; s++)
            for (int j = 0; j < got; j++) {
                da_rng r;
                da_rng_init(&r, (uint64_t)j);
                da_style_render(da_style_get(s), d.images + pick[j] * S * S, 1, S, S, cells + ((size_t)s * 8 + (size_t)j) * S * S, &r);
            }
        CHECK(da_image_write_grid(grid, cells, (int64_t)ns * 8, 1, S, S, 8, err, sizeof err) == 0, "%s", err);
        printf("wrote %s: rows =", grid);
        for (int s = 0; s < ns; s++) printf(" %s", da_style_get(s)->name);
        printf("\n");
        free(cells);
    }
    da_dataset_free(&d);
}

int main(int argc, char **argv) {
    const char *grid = argc == 3 && strcmp(argv[1], "--grid") == 0 ? argv[2] : NULL;
    test_table();
    test_generic();
    test_behaviour();
    test_fashion_mnist(grid);
    return tu_finish("test_styles");
}
