/* conv_dispatch.c — which backend computes a convolution (conv_backend.h).
 *
 * DIFFADAPT_CONV=blas, =dnnl or =wino forces one backend (tests and benchmarks use it to reach
 * every path); unset, =auto or an unknown value applies the measured rules below. A forced
 * backend that cannot run the convolution (oneDNN not built in; Winograd on a shape or CPU it
 * does not take) gives BLAS. The variable is read on every call, so a program (a test) may
 * change it between convolutions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tensor/ops/conv_backend.h"
#include "tensor/ops/gemm.h"

typedef enum { WANT_AUTO, WANT_BLAS, WANT_DNNL, WANT_WINO } want;

static want read_switch(void) {
    const char *v = getenv("DIFFADAPT_CONV");
    if (!v || !*v || strcmp(v, "auto") == 0) return WANT_AUTO;
    if (strcmp(v, "blas") == 0) return WANT_BLAS;
    if (strcmp(v, "dnnl") == 0) return WANT_DNNL;
    if (strcmp(v, "wino") == 0) return WANT_WINO;
    static bool warned;
    if (!warned) fprintf(stderr, "warning: DIFFADAPT_CONV='%s' is not auto, blas, dnnl or wino; using auto\n", v);
    warned = true;
    return WANT_AUTO;
}

/* The measured rule between BLAS and oneDNN (bench/run_conv_backends.sh; numbers in
 * docs/conv-backends.md), at 2 threads, AVX-512 and AVX2 alike (Winograd, below, is asked first):
 *   - oneDNN is 1.1-2.2x faster on every 3x3 row (stride 1 and 2, batch 32 and batch 1);
 *   - on the 1x1 stride-1 unpadded row the gemm path multiplies x in place (no im2col) and is
 *     1.2-1.25x faster than oneDNN's convolution, whose layout reorders cost as much as the
 *     product, unless the gemm runs a pre-AVX2 kernel (OpenBLAS's fallback without oneDNN's
 *     sgemm: then the convolution is 1.7-3x faster);
 *   - below SMALL_MACS multiply-adds (gradient checks, tiny layers) nothing was measured, and
 *     BLAS, which runs them on one thread, is kept. */
#define SMALL_MACS ((int64_t)1 << 20)

bool da_conv_direct_forced(void) {
    const char *algo = getenv("DIFFADAPT_CONV_ALGO");
    return algo && strcmp(algo, "direct") == 0;
}

/* Our Winograd (conv_winograd.c) on 3x3 stride-1 layers with WINO_MIN_CH+ channels each way
 * and enough 4x4 output tiles to pay for transforming every filter on each call
 * (bench_conv N,C,H,W,O sweep in docs/conv-backends.md, 2 threads, forward + backward):
 *   - below AVX-512 oneDNN has only direct convolution: ours is 1.3-2.5x faster from 128
 *     tiles (batch 32 at 8x8, batch 1 at 64x64 and up), mixed at 64 (0.89-1.31x), slower
 *     below (0.16-0.75x: the filter transform dominates);
 *   - on AVX-512 oneDNN runs its own Winograd from batch 16, 1.1-2x faster than ours, and its
 *     direct convolution below, which ours beats from 256 tiles (batch 1 at 64x64 and up,
 *     1.4-2.0x) and not at 64 (0.79-0.91x).
 * DIFFADAPT_CONV_ALGO=direct turns Winograd off, ours with oneDNN's. */
#define WINO_MIN_CH 32
#define WINO_MIN_TILES_AVX2 128
#define WINO_MIN_TILES_AVX512 256
#define DNNL_WINO_MIN_N 16   /* oneDNN 2.6's auto algorithm picks its Winograd from here (AVX-512) */

static bool wino_wanted(const da_conv_shape *s) {
    if (da_conv_direct_forced() || !da_conv_wino_fits(s) || s->C < WINO_MIN_CH || s->O < WINO_MIN_CH) return false;
    int64_t tiles = s->N * ((s->OH + 3) / 4) * ((s->OW + 3) / 4);
    if (!da_conv_dnnl_has_avx512()) return tiles >= WINO_MIN_TILES_AVX2;
    return s->N < DNNL_WINO_MIN_N && tiles >= WINO_MIN_TILES_AVX512;
}

static da_conv_backend auto_rule(const da_conv_shape *s) {
    int64_t macs = s->N * s->O * s->OH * s->OW * s->C * s->kh * s->kw;
    if (macs < SMALL_MACS) return DA_CONV_BLAS;
    if (wino_wanted(s)) return DA_CONV_WINO;
    if (!da_conv_dnnl_available()) return DA_CONV_BLAS;
    bool in_place_1x1 = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pt == 0 && s->pb == 0 && s->pl == 0 &&
                        s->pr == 0;
    if (in_place_1x1 && da_gemm_is_fast()) return DA_CONV_BLAS;
    return DA_CONV_DNNL;
}

da_conv_backend da_conv_choose(const da_conv_shape *s) {
    switch (read_switch()) {
    case WANT_BLAS: return DA_CONV_BLAS;
    case WANT_DNNL: return da_conv_dnnl_available() ? DA_CONV_DNNL : DA_CONV_BLAS;
    case WANT_WINO: return da_conv_wino_fits(s) ? DA_CONV_WINO : DA_CONV_BLAS;
    default: return auto_rule(s);
    }
}

int da_precision_from_name(const char *name, da_precision *out, char *err, size_t errlen) {
    if (strcmp(name, "fp32") == 0) {
        *out = DA_PRECISION_FP32;
    } else if (strcmp(name, "bf16") == 0) {
        if (!da_conv_dnnl_bf16_works()) {
            snprintf(err, errlen, "bf16 convolutions need the oneDNN backend on an AVX-512 CPU (here: oneDNN %s)",
                     da_conv_dnnl_isa());
            return -1;
        }
        *out = DA_PRECISION_BF16;
    } else if (strcmp(name, "auto") == 0) {
        /* With AVX512-BF16 alone, bf16 measured slower than float32 (one bf16 dot-product port
         * against two FMA ports), and its rounding would buy nothing. */
        *out = da_conv_dnnl_has_amx() && da_conv_dnnl_bf16_works() ? DA_PRECISION_BF16 : DA_PRECISION_FP32;
    } else {
        snprintf(err, errlen, "unknown precision '%s' (fp32, bf16 or auto)", name);
        return -1;
    }
    return 0;
}

const char *da_precision_name(da_precision p) { return p == DA_PRECISION_BF16 ? "bf16" : "fp32"; }

const char *da_conv_backend_describe(void) {
    static char line[256];
    const char *v = getenv("DIFFADAPT_CONV");
    const char *wino = da_conv_direct_forced() ? "no Winograd (DIFFADAPT_CONV_ALGO=direct)"
                       : da_conv_dnnl_has_avx512()
                           ? "3x3 stride 1 by Winograd: oneDNN's from batch 16, ours below from 256 4x4 tiles"
                           : "3x3 stride 1 by our Winograd from 128 4x4 tiles (oneDNN has none below AVX-512)";
    snprintf(line, sizeof line, "DIFFADAPT_CONV=%s, oneDNN %s, %s", v && *v ? v : "auto",
             da_conv_dnnl_available() ? da_conv_dnnl_isa() : "not built in", wino);
    return line;
}
