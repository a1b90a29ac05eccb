/* test_clip_views.c — the random views of the directional loss (nn/clip_views.h): drawn inside
 * the image and deterministic, identity and mirror exact, and gradients of every kind of view
 * against finite differences. */
#include "nn/clip_views.h"
#include "gradcheck.h"
#include "tensor/ops.h"
#include "test_util.h"

typedef struct {
    da_clip_view v;
} view_user;

static da_tensor *apply_view(da_ctx *ctx, da_tensor **in, void *user) {
    return da_clip_view_apply(ctx, in[0], &((view_user *)user)->v);
}

static void test_draw(void) {
    int lowpass = 0, mirror = 0, cropped = 0, ok = 1;
    for (int i = 0; i < 400; i++) {
        da_rng a, b;
        da_rng_init(&a, da_rng_at(9, (uint64_t)i));
        da_rng_init(&b, da_rng_at(9, (uint64_t)i));
        da_clip_view v, w;
        da_clip_view_draw(&a, 32, 24, 0.6f, &v);
        da_clip_view_draw(&b, 32, 24, 0.6f, &w);
        ok &= memcmp(&v, &w, sizeof v) == 0;
        ok &= v.top >= 0 && v.left >= 0 && v.top + v.h <= 32 && v.left + v.w <= 24;
        ok &= v.h >= 19 && v.w >= 14;   /* 0.6 of the sides, rounded */
        lowpass += v.lowpass;
        mirror += v.mirror;
        cropped += v.h < 32;
    }
    CHECK(ok, "views are deterministic and lie inside the image with sides >= 0.6 of it");
    CHECK(lowpass > 150 && lowpass < 250 && mirror > 150 && mirror < 250 && cropped > 300,
          "lowpass %d, mirror %d, cropped %d of 400 draws", lowpass, mirror, cropped);
    da_rng r;
    da_rng_init(&r, 1);
    da_clip_view v;
    da_clip_view_draw(&r, 3, 3, 1.0f, &v);
    CHECK(!v.lowpass && v.h == 3 && v.w == 3, "a 3x3 image has no low-pass view and scale 1 no crop");
}

static void test_exact(void) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    float data[2 * 1 * 6 * 5];
    da_rng r;
    da_rng_init(&r, 3);
    da_rng_uniform(&r, data, 60, -1.0f, 1.0f);
    da_tensor *x = da_from_data(&ctx, DA_SHAPE(2, 1, 6, 5), data);
    da_clip_view id = {0, 0, 6, 5, false, false}, mir = {0, 0, 6, 5, false, true};
    da_tensor *y = da_clip_view_apply(&ctx, x, &id);
    CHECK(memcmp(y->data, data, sizeof data) == 0, "the full, plain view is the image");
    da_tensor *z = da_clip_view_apply(&ctx, da_clip_view_apply(&ctx, x, &mir), &mir);
    CHECK(memcmp(z->data, data, sizeof data) == 0, "mirroring twice is the image");
    y = da_clip_view_apply(&ctx, x, &mir);
    CHECK(y->data[0] == data[4] && y->data[6] == data[8], "mirror flips left and right");
    da_ctx_free(&ctx);
}

static void test_gradients(void) {
    const da_clip_view views[] = {
        {1, 2, 5, 4, false, false}, {0, 0, 8, 8, true, false}, {2, 1, 6, 6, true, true}, {0, 0, 8, 8, false, true},
    };
    for (size_t k = 0; k < sizeof views / sizeof views[0]; k++) {
        da_rng r;
        da_rng_init(&r, 10 + k);
        da_tensor *x = gc_input(&r, 4, (const int64_t[]){2, 2, 8, 8}, 0.5f);
        view_user u = {views[k]};
        char name[64];
        snprintf(name, sizeof name, "view %zu", k);
        gradcheck(name, apply_view, 1, &x, &u, 1e-2f, 1e-3, 1e-2, 256);
        da_tensor_free(x);
    }
}

int main(void) {
    test_draw();
    test_exact();
    test_gradients();
    return tu_finish("test_clip_views");
}
