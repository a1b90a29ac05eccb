/* fuzz_data.c — libFuzzer target for the data readers. The first byte picks the reader, the rest
 * is the file: 0 an image file (PNG/JPEG, da_image_read), 1 an IDX images file (gzip or not,
 * da_dataset_load), 2 the labels.csv of a folder holding two valid PNGs (da_dataset_load). Any
 * input must be refused with a message or load images within [-1,1]. */
#include <math.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/image.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A 2x2 grey PNG (a.png and b.png of the labelled folder). */
static const unsigned char PNG_2X2[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x57, 0xdd, 0x52, 0xf8, 0x00, 0x00, 0x00,
    0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x01, 0x00, 0x00, 0x06, 0x00, 0x01, 0xfe, 0x8c,
    0x67, 0xc8, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static void check_dataset(const char *spec) {
    da_dataset d;
    char err[1024];
    err[0] = 0;
    if (da_dataset_load(spec, NULL, &d, err, sizeof err)) {
        if (!err[0]) abort();
        return;
    }
    for (int64_t i = 0; i < d.n * d.c * d.h * d.w; i++)
        if (!(fabsf(d.images[i]) <= 1.0f)) abort();
    da_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char err[1024];
    switch (data[0] % 3) {
    case 0: {
        float *img = NULL;
        int c, h, w;
        const char *path = fuzz_file("image.png", data + 1, size - 1);
        /* a few bytes of TGA can declare 15 M pixels that decode (as zeros) legitimately but
         * slowly under the sanitizers: spend the time on other inputs */
        if (da_image_info(path, &c, &h, &w, err, sizeof err) == 0 && (int64_t)h * w > (1 << 20)) break;
        err[0] = 0;
        if (da_image_read(path, 0, &img, &c, &h, &w, err, sizeof err)) {
            if (!err[0]) abort();
        } else {
            for (int64_t i = 0; i < (int64_t)c * h * w; i++)
                if (!(fabsf(img[i]) <= 1.0f)) abort();
        }
        free(img);
        break;
    }
    case 1: check_dataset(fuzz_file("images-idx3-ubyte", data + 1, size - 1)); break;
    default: {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/folder", fuzz_dir());
        mkdir(dir, 0700);
        fuzz_file("folder/a.png", PNG_2X2, sizeof PNG_2X2);
        fuzz_file("folder/b.png", PNG_2X2, sizeof PNG_2X2);
        fuzz_file("folder/labels.csv", data + 1, size - 1);
        check_dataset(dir);
        break;
    }
    }
    return 0;
}
