/* bench_finetune_memory.c — peak memory and time of one DiffusionCLIP fine-tuning batch (one
 * image, random weights) in chain, chain+recompute or per-step mode, for a UNet config and a CLIP size.
 * usage: bench_finetune_memory [--config default|celebahq256|FILE] [--mode chain|chain-recompute|per-step|step-tape]
 *                              [--steps 6] [--clip vitb32|small] [--threads N]
 * Prints one `RESULT` line: arena peak, model+grads+Adam, frozen CLIP, their total and the RSS peak.
 * step-tape: only the arena that one taped generation step keeps (what each extra chain step adds). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "diffusion/ddim.h"
#include "diffusion/finetune.h"
#include "tensor/rng.h"
#include "util/progress.h"

static void celebahq256(da_unet_config *c) {
    da_unet_config_default(c);
    c->in_channels = 3;
    c->out_ch = 3;
    c->ch = 128;
    int mult[6] = {1, 1, 2, 2, 4, 4};
    memcpy(c->ch_mult, mult, sizeof mult);
    c->n_levels = 6;
    c->num_res_blocks = 2;
    c->attn_resolutions[0] = 16;
    c->n_attn = 1;
    c->dropout = 0.0f;
    c->resolution = 256;
}

int main(int argc, char **argv) {
    const char *config = "default", *mode = "chain", *clip_size = "vitb32";
    int steps = 6, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clip")) clip_size = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s (see the comment at the top of bench_finetune_memory.c)\n", argv[i]);
            return 2;
        }
    }
    da_set_threads(threads);
    char err[2048];
    da_unet_config uc;
    if (!strcmp(config, "default")) da_unet_config_default(&uc);
    else if (!strcmp(config, "celebahq256")) celebahq256(&uc);
    else {
        da_unet_config_default(&uc);
        if (da_unet_config_load(config, &uc, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            return 1;
        }
    }
    da_unet m;
    if (da_unet_init(&m, &uc, 1, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    da_clip_config cc;
    da_clip_config_default(&cc);   /* ViT-B/32 */
    if (!strcmp(clip_size, "small")) {
        cc.vision_width = 256; cc.vision_layers = 4; cc.vision_heads = 4; cc.vision_mlp = 1024;
        cc.text_width = 256; cc.text_layers = 4; cc.text_heads = 4; cc.text_mlp = 1024; cc.embed_dim = 256;
    }
    da_clip clip;
    if (da_clip_init(&clip, &cc, 2, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    /* a random unit text direction: the tokenizer plays no part in memory or time */
    float *dir = malloc(sizeof(float) * (size_t)cc.embed_dim);
    da_rng r;
    da_rng_init(&r, 3);
    da_rng_normal(&r, dir, cc.embed_dim, 0.0f, 1.0f);
    double nrm = 0;
    for (int i = 0; i < cc.embed_dim; i++) nrm += (double)dir[i] * dir[i];
    for (int i = 0; i < cc.embed_dim; i++) dir[i] /= (float)sqrt(nrm);

    da_ft_config fc;
    da_ft_config_default(&fc);
    fc.train_steps = steps;
    fc.mode = strcmp(mode, "per-step") ? DA_FT_CHAIN : DA_FT_PER_STEP;
    fc.recompute = !strcmp(mode, "chain-recompute");
    if (strcmp(mode, "chain") && strcmp(mode, "per-step") && strcmp(mode, "chain-recompute") && strcmp(mode, "step-tape")) {
        fprintf(stderr, "--mode is chain, chain-recompute, per-step or step-tape\n");
        return 2;
    }
    da_finetuner f;
    if (da_ft_init(&f, &fc, &m, &clip, dir, NULL, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = 8e-6;
    da_adam opt;
    da_adam_init(&opt, &ac, f.params, f.n_params, err, sizeof err);
    int64_t per = (int64_t)uc.in_channels * uc.resolution * uc.resolution;
    float *x0 = malloc(sizeof(float) * (size_t)per), *lat = malloc(sizeof(float) * (size_t)per);
    da_rng_uniform(&r, x0, per, -1.0f, 1.0f);
    da_rng_normal(&r, lat, per, 0.0f, 1.0f);
    da_ctx ctx;
    da_ctx_init(&ctx);
    char cs[256];
    fprintf(stderr, "unet %s (%.1f M params), clip %s (%.1f M params), mode %s, %d steps, %d threads\n",
            da_unet_config_str(&uc, cs, sizeof cs), (double)da_unet_num_params(&m) / 1e6, clip_size,
            (double)da_params_count(&clip.params) / 1e6, mode, steps, da_get_threads());
    double t = da_now();
    if (!strcmp(mode, "step-tape")) {
        /* one generation step on the tape, no backward: what the chain keeps per step */
        int64_t shape[4] = {1, uc.in_channels, uc.resolution, uc.resolution};
        da_set_grad(&ctx, true);
        ctx.training = true;
        da_tensor *x = da_from_data(&ctx, 4, shape, lat);
        size_t before = ctx.arena.in_use;
        da_tensor *eps = da_unet_eps(&ctx, x, f.ts[0], &m);
        da_ddim_step(&ctx, &f.sched, x, eps, f.ts[0], f.ts_next[0], 0.0f, NULL, NULL);
        printf("RESULT config=%s mode=step-tape step_tape_MB=%.1f peak_MB=%.1f seconds=%.2f\n", config,
               (double)(ctx.arena.in_use - before) / 1e6, (double)ctx.arena.peak / 1e6, da_now() - t);
        return 0;
    }
    da_ft_terms terms;
    if (da_ft_train_batch(&f, &opt, &ctx, x0, lat, 1, 7, NULL, &terms, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    double secs = da_now() - t;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double arena = (double)ctx.arena.peak / 1e6, model = (double)da_ft_model_bytes(&f) / 1e6,
           frozen = (double)da_ft_frozen_bytes(&f) / 1e6, rss = (double)ru.ru_maxrss / 1e3;
    printf("RESULT config=%s mode=%s steps=%d arena_MB=%.1f model_grads_adam_MB=%.1f frozen_clip_MB=%.1f "
           "total_MB=%.1f rss_MB=%.1f seconds=%.2f loss=%.4f\n",
           config, mode, steps, arena, model, frozen, arena + model + frozen, rss, secs, terms.loss);
    da_ctx_free(&ctx);
    da_adam_free(&opt);
    da_ft_free(&f);
    da_clip_free(&clip);
    da_unet_free(&m);
    free(dir);
    free(x0);
    free(lat);
    return 0;
}
