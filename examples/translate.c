/* translate.c — an example program on the public API only (diffadapt.h).
 *
 *   translate ORIGINAL FINETUNED                translates 4 synthetic images in memory
 *   translate ORIGINAL FINETUNED DATA OUT_DIR   also translates a data set into OUT_DIR
 *
 * Build against an installed diffadapt:
 *   cc -std=c11 translate.c $(pkg-config --cflags --libs diffadapt) -o translate
 */
#include <diffadapt.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints one line per stage when it ends, to stderr. */
static void on_progress(void *user, const char *stage, int64_t done, int64_t total) {
    (void)user;
    if (done == total) fprintf(stderr, "%s: %lld/%lld\n", stage, (long long)done, (long long)total);
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: %s ORIGINAL FINETUNED [DATA OUT_DIR]\n", argv[0]);
        return 2;
    }
    char err[1024];
    da_model *orig = NULL, *ft = NULL;
    float *x = NULL;
    int status = 1;
    da_threads_set(0);   /* all cores */
    if (da_model_load(argv[1], NULL, &orig, err, sizeof err) || da_model_load(argv[2], NULL, &ft, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    int c, side;
    da_model_image_shape(orig, &c, &side);
    printf("diffadapt %s, model %dx%dx%d\n", da_version(), side, side, c);

    /* four images in [-1,1]: discs of different radii */
    const int64_t n = 4, per = (int64_t)c * side * side;
    x = malloc(sizeof(float) * (size_t)(n * per));
    float *before = malloc(sizeof(float) * (size_t)(n * per));
    if (!x || !before) {
        fprintf(stderr, "error: out of memory\n");
        free(before);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < per; k++) {
            int64_t p = k % ((int64_t)side * side);
            double dy = (double)(p / side) - side / 2.0, dx = (double)(p % side) - side / 2.0;
            double r = side * (0.15 + 0.08 * (double)i);
            x[i * per + k] = before[i * per + k] = dx * dx + dy * dy < r * r ? 1.0f : -1.0f;
        }

    da_translate_settings s;
    da_translate_defaults(&s);
    if (da_translate_images(orig, ft, &s, x, n, on_progress, NULL, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        free(before);
        goto done;
    }
    double change = 0;
    for (int64_t k = 0; k < n * per; k++) change += x[k] > before[k] ? x[k] - before[k] : before[k] - x[k];
    free(before);
    printf("translated %lld images in memory: mean |change| %.4f\n", (long long)n, change / (double)(n * per));

    if (argc == 5) {
        if (da_translate_dataset(orig, ft, &s, argv[3], argv[4], on_progress, NULL, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
        printf("translated %s into %s\n", argv[3], argv[4]);
    }
    status = 0;
done:
    free(x);
    da_model_free(ft);
    da_model_free(orig);
    return status;
}
