/* test_image.c — image files: exact PNG round trips (grey and RGB), channel conversion on read,
 * clamping, header probe, JPEG decoding, grid layout and size, and errors for bad files. */
#include <stb_image_write.h>

#include "data/image.h"
#include "test_util.h"
#include "tmpdir.h"

/* An 8-bit level as the float value the reader gives back. */
static float level(int v) { return (float)v / 127.5f - 1.0f; }

int main(void) {
    char dir[512], path[4096], err[1024];
    td_make(dir, sizeof dir, "image");

    /* RGB round trip: values on the 8-bit levels come back exactly */
    enum { C = 3, H = 5, W = 7 };
    float rgb[C * H * W];
    for (int i = 0; i < C * H * W; i++) rgb[i] = level((i * 37 + 11) % 256);
    td_path(path, sizeof path, dir, "rgb.png");
    CHECK(da_image_write_png(path, rgb, C, H, W, err, sizeof err) == 0, "%s", err);
    float *img = NULL;
    int c = 0, h = 0, w = 0;
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) == 0, "%s", err);
    CHECK(c == 3 && h == H && w == W, "shape %d,%d,%d", c, h, w);
    if (img) tu_close("rgb png round trip", img, rgb, C * H * W, 1e-6, 0);
    free(img);
    int ic, ih, iw;
    CHECK(da_image_info(path, &ic, &ih, &iw, err, sizeof err) == 0 && ic == 3 && ih == H && iw == W, "info %d %d %d", ic, ih, iw);

    /* RGB read as grey: 0.299R + 0.587G + 0.114B on the [-1,1] values */
    CHECK(da_image_read(path, 1, &img, &c, &h, &w, err, sizeof err) == 0 && c == 1, "%s", err);
    float grey[H * W];
    for (int p = 0; p < H * W; p++) grey[p] = 0.299f * rgb[p] + 0.587f * rgb[H * W + p] + 0.114f * rgb[2 * H * W + p];
    if (img) tu_close("rgb read as grey", img, grey, H * W, 1e-6, 0);
    free(img);

    /* grey round trip, and grey read as RGB copies the plane */
    td_path(path, sizeof path, dir, "grey.png");
    CHECK(da_image_write_png(path, grey, 1, H, W, err, sizeof err) == 0, "%s", err);
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) == 0 && c == 1, "%s", err);
    float q[H * W];
    for (int p = 0; p < H * W; p++) q[p] = level((int)lrintf((grey[p] + 1.0f) * 127.5f));
    if (img) tu_close("grey png round trip", img, q, H * W, 1e-6, 0);
    free(img);
    CHECK(da_image_read(path, 3, &img, &c, &h, &w, err, sizeof err) == 0 && c == 3, "%s", err);
    if (img) {
        tu_close("grey read as rgb (R)", img, q, H * W, 1e-6, 0);
        tu_close("grey read as rgb (B)", img + 2 * H * W, q, H * W, 1e-6, 0);
    }
    free(img);

    /* out-of-range values are clamped, NaN becomes black */
    float odd[4] = {2.0f, -3.0f, NAN, 0.0f}, want[4] = {1.0f, -1.0f, -1.0f, level(128)};
    td_path(path, sizeof path, dir, "odd.png");
    CHECK(da_image_write_png(path, odd, 1, 2, 2, err, sizeof err) == 0, "%s", err);
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) == 0, "%s", err);
    if (img) tu_close("clamped values", img, want, 4, 1e-6, 0);
    free(img);

    /* a JPEG (as CelebA ships) decodes to the right size, close to what was encoded */
    unsigned char jpg[16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 3; i++) jpg[i] = (unsigned char)(((i / 3) % 16) * 12 + 40);
    td_path(path, sizeof path, dir, "smooth.jpg");
    CHECK(stbi_write_jpg(path, 16, 16, 3, jpg, 95) == 1, "could not write a JPEG");
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) == 0 && c == 3 && h == 16 && w == 16, "%s", err);
    if (img) {
        double worst = 0;
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) worst = fmax(worst, fabs(img[y * 16 + x] - level(x * 12 + 40)));
        CHECK(worst < 0.1, "JPEG decodes too far from the encoded image: %g", worst);
    }
    free(img);

    /* grid: 5 images of 4×3 in 3 columns → 2 rows, 2-pixel borders */
    enum { N = 5, GH = 4, GW = 3 };
    float cells[N * GH * GW];
    for (int i = 0; i < N * GH * GW; i++) cells[i] = level((i * 5) % 256);
    td_path(path, sizeof path, dir, "grid.png");
    CHECK(da_image_write_grid(path, cells, N, 1, GH, GW, 3, err, sizeof err) == 0, "%s", err);
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) == 0, "%s", err);
    CHECK(c == 1 && h == 2 * (GH + 2) + 2 && w == 3 * (GW + 2) + 2, "grid is %d×%d×%d, expected 1×14×17", c, h, w);
    if (img && h == 14 && w == 17) {
        int placed = 1;
        for (int i = 0; i < N; i++)
            for (int y = 0; y < GH; y++)
                for (int x = 0; x < GW; x++) {
                    int gy = 2 + (i / 3) * (GH + 2) + y, gx = 2 + (i % 3) * (GW + 2) + x;
                    if (fabsf(img[gy * w + gx] - cells[(i * GH + y) * GW + x]) > 1e-6f) placed = 0;
                }
        CHECK(placed, "grid cells are not where they belong");
        CHECK(fabsf(img[0] - level(128)) < 1e-6f && fabsf(img[13 * 17 + 16] - level(128)) < 1e-6f, "border is not mid-grey");
        /* the empty sixth cell stays border-coloured */
        CHECK(fabsf(img[(2 + GH + 2) * w + 2 + 2 * (GW + 2)] - level(128)) < 1e-6f, "empty cell not filled with the border colour");
    }
    free(img);
    /* cols <= 0: a near-square layout (5 images → 3 columns, 2 rows) */
    CHECK(da_image_write_grid(path, cells, N, 1, GH, GW, 0, err, sizeof err) == 0, "%s", err);
    CHECK(da_image_info(path, &ic, &ih, &iw, err, sizeof err) == 0 && ih == 14 && iw == 17, "auto grid %d×%d", iw, ih);
    /* an RGB grid keeps its channels */
    CHECK(da_image_write_grid(path, rgb, 1, 3, H, W, 4, err, sizeof err) == 0, "%s", err);
    CHECK(da_image_info(path, &ic, &ih, &iw, err, sizeof err) == 0 && ic == 3 && ih == H + 4 && iw == W + 4, "rgb grid %d %d %d", ic, ih, iw);
    CHECK(da_image_write_grid(path, cells, 0, 1, GH, GW, 3, err, sizeof err) != 0, "an empty grid must fail");

    /* errors name the file */
    static const unsigned char bad_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 1, 2, 3};
    td_write(dir, "corrupt.png", bad_png, sizeof bad_png);
    td_path(path, sizeof path, dir, "corrupt.png");
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) != 0 && img == NULL, "a corrupt PNG must fail");
    CHECK(strstr(err, "corrupt.png") != NULL, "error does not name the file: %s", err);
    CHECK(da_image_info(path, &ic, &ih, &iw, err, sizeof err) != 0, "info on a corrupt PNG must fail");
    td_path(path, sizeof path, dir, "missing.png");
    CHECK(da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err) != 0 && strstr(err, "missing.png"), "missing file: %s", err);
    td_path(path, sizeof path, dir, "no/such/folder/x.png");
    CHECK(da_image_write_png(path, grey, 1, H, W, err, sizeof err) != 0, "writing into a missing folder must fail");
    CHECK(da_image_write_png(path, grey, 2, H, W, err, sizeof err) != 0, "2 channels must be refused");

    td_remove(dir);
    return tu_finish("test_image");
}
