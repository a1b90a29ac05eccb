/* test_diffusion_cli.c — the diffusion commands end to end on a tiny data set: train-diffusion
 * (checkpoints, resume equals an uninterrupted run byte for byte, refusals, NaN stop, bad data
 * and configs), sample, invert, generate and edit (grid, PSNR), and bad model files. */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "io/safetensors.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"
#include "test_util.h"
#include "tmpdir.h"

static char DIR_[4096], CMD[16384], OUT[16384];
static const char *BIN;

/* Runs `diffadapt ARGS` (cwd = the temp folder), captures stdout+stderr into OUT; returns the exit code. */
static int run(const char *fmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(CMD, sizeof CMD, "cd '%s' && '%s' %s 2>&1", DIR_, BIN, args);
    FILE *p = popen(CMD, "r");
    size_t n = fread(OUT, 1, sizeof OUT - 1, p);
    OUT[n] = 0;
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool exists(const char *name) {
    char path[4200];
    struct stat st;
    return stat(td_path(path, sizeof path, DIR_, name), &st) == 0;
}

static bool same_file(const char *a, const char *b) {
    char pa[4200], pb[4200];
    FILE *fa = fopen(td_path(pa, sizeof pa, DIR_, a), "rb"), *fb = fopen(td_path(pb, sizeof pb, DIR_, b), "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = false;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* 24 images 8x8x1: bright squares on a dark background, labels 0/1; NaN in one pixel if asked. */
static void write_data(const char *name, bool with_nan) {
    float img[24 * 64];
    int64_t labels[24];
    da_rng r;
    da_rng_init(&r, 3);
    for (int i = 0; i < 24; i++) {
        int y0 = (int)da_rng_int(&r, 4), x0 = (int)da_rng_int(&r, 4);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) img[i * 64 + y * 8 + x] = (y >= y0 && y < y0 + 4 && x >= x0 && x < x0 + 4) ? 1.0f : -1.0f;
        labels[i] = i % 2;
    }
    if (with_nan) img[70] = NAN;
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", DA_SHAPE(24, 1, 8, 8), img);
    st_writer_add_i64(w, "labels", DA_SHAPE(24), labels);
    char path[4200], err[512];
    if (st_writer_save(w, td_path(path, sizeof path, DIR_, name), err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(2); }
    st_writer_free(w);
}

#define TINY "--ch 32 --ch-mult 1,1 --num-res-blocks 1 --attn 4 --batch 6 --warmup 2 --lr 1e-3 --threads 1"

int main(void) {
    BIN = getenv("DA_BIN");
    if (!BIN) tu_skip("DA_BIN not set");
    td_make(DIR_, sizeof DIR_, "diffcli");
    write_data("d.safetensors", false);
    write_data("nan.safetensors", true);

    const char *cmds[] = {"train-diffusion", "sample", "invert", "generate", "edit"};
    for (int i = 0; i < 5; i++) CHECK(run("%s --help", cmds[i]) == 0 && strstr(OUT, "usage: diffadapt"), "%s --help: %s", cmds[i], OUT);

    /* uninterrupted 6 steps vs 3 + resume to 6: byte-identical models */
    CHECK(run("train-diffusion --data d.safetensors --out a.safetensors " TINY " --steps 6 --checkpoint-every 3 --log a.csv") == 0,
          "train: %s", OUT);
    CHECK(exists("a.safetensors") && exists("a.ckpt.safetensors") && exists("a.csv"), "train outputs");
    CHECK(strstr(OUT, "loss") && strstr(OUT, "img/s") && strstr(OUT, "ETA"), "progress line lacks loss/img/s/ETA: %s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out b.safetensors " TINY " --steps 3") == 0, "train 3: %s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out b.safetensors --resume b.ckpt.safetensors --steps 6 --threads 1 --force") == 0,
          "resume: %s", OUT);
    CHECK(strstr(OUT, "resuming") != NULL, "resume message: %s", OUT);
    CHECK(same_file("a.safetensors", "b.safetensors"), "resumed model differs from the uninterrupted one");
    CHECK(same_file("a.ckpt.safetensors", "b.ckpt.safetensors"), "resumed checkpoint differs from the uninterrupted one");

    /* refusals and bad inputs */
    CHECK(run("train-diffusion --data d.safetensors --out a.safetensors " TINY " --steps 2") == 1 && strstr(OUT, "--force"), "%s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out c.safetensors --checkpoint a.ckpt.safetensors " TINY " --steps 2") == 1 &&
          strstr(OUT, "--resume"), "existing checkpoint: %s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out c.safetensors --resume a.ckpt.safetensors --steps 8 --batch 7") == 1 &&
          strstr(OUT, "--batch"), "changed setting on resume: %s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out c.safetensors --resume a.safetensors --steps 8") == 1 &&
          strstr(OUT, "not a diffadapt training checkpoint"), "resume from a model: %s", OUT);
    /* NaN pixels are refused by the loader (a NaN loss itself is covered in test_ddim) */
    CHECK(run("train-diffusion --data nan.safetensors --out c.safetensors " TINY " --batch 24 --steps 3") == 1 &&
          (strstr(OUT, "nan") || strstr(OUT, "NaN")) && !exists("c.safetensors"), "NaN data: %s", OUT);
    td_write_text(DIR_, "junk.safetensors", "not a tensor file at all");
    CHECK(run("train-diffusion --data junk.safetensors --out c.safetensors " TINY " --steps 2") == 1 && strstr(OUT, "junk.safetensors"),
          "bad data: %s", OUT);
    CHECK(run("train-diffusion --data missing.safetensors --out c.safetensors " TINY " --steps 2") == 1 && strstr(OUT, "missing.safetensors"),
          "missing data: %s", OUT);
    td_write_text(DIR_, "big.yml", "model:\n  ch: 32\n  ch_mult: [1, 2]\n  num_res_blocks: 1\n  attn_resolutions: []\n"
                                   "  in_channels: 1\n  out_ch: 1\ndata:\n  image_size: 16\n  channels: 1\n");
    CHECK(run("train-diffusion --data d.safetensors --out c.safetensors --config big.yml --steps 2") == 1 && strstr(OUT, "8x8x1") &&
          strstr(OUT, "16x16x1"), "config/data mismatch: %s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out c.safetensors --ch 48 --steps 2") == 1 && strstr(OUT, "ch 48"), "ch 48: %s", OUT);
    CHECK(run("train-diffusion --data d.safetensors --out c.safetensors --ch-mult 1,x --steps 2") == 2 && strstr(OUT, "--ch-mult"), "%s", OUT);

    /* sample, invert, generate, edit */
    CHECK(run("sample --model a.safetensors --n 4 --steps 5 --out s.png --threads 1") == 0 && exists("s.png"), "sample png: %s", OUT);
    CHECK(run("sample --model a.safetensors --n 3 --steps 5 --eta 1 --out s.safetensors --threads 1") == 0, "sample st: %s", OUT);
    st_file f;
    char path[4200], err[512];
    if (st_open(td_path(path, sizeof path, DIR_, "s.safetensors"), &f, err, sizeof err) == 0) {
        const st_tensor_info *t = st_find(&f, "images");
        CHECK(t && t->ndim == 4 && t->shape[0] == 3 && t->shape[1] == 1 && t->shape[2] == 8, "sample tensor shape");
        st_close(&f);
    } else CHECK(0, "%s", err);
    CHECK(run("sample --model a.safetensors --n 4 --steps 5 --out s.png") == 1 && strstr(OUT, "--force"), "sample overwrite: %s", OUT);
    CHECK(run("invert --model a.safetensors --input d.safetensors --take 5 --t0 300 --steps 10 --out l.safetensors --threads 1") == 0,
          "invert: %s", OUT);
    if (st_open(td_path(path, sizeof path, DIR_, "l.safetensors"), &f, err, sizeof err) == 0) {
        const st_tensor_info *t = st_find(&f, "latents");
        CHECK(t && t->ndim == 4 && t->shape[0] == 5 && st_find(&f, "labels") && st_meta_get(&f, "t0") &&
              !strcmp(st_meta_get(&f, "t0"), "300"), "latents file");
        st_close(&f);
    } else CHECK(0, "%s", err);
    CHECK(run("generate --model a.safetensors --latents l.safetensors --steps 10 --out g.safetensors --threads 1") == 0, "generate: %s", OUT);
    CHECK(run("generate --model a.safetensors --latents l.safetensors --steps 10 --out gdir --threads 1") == 0 && exists("gdir/000004.png") &&
          exists("gdir/labels.csv"), "generate PNG: %s", OUT);
    CHECK(run("generate --model a.safetensors --latents d.safetensors --steps 10 --out g2.safetensors") == 1 && strstr(OUT, "latents"),
          "generate from non-latents: %s", OUT);
    CHECK(run("edit --model a.safetensors --model-gen b.safetensors --input d.safetensors --take 4 --t0 200 --inv-steps 20 --gen-steps 20 "
              "--out e --threads 1") == 0 && exists("e/grid.png") && exists("e/000003.png") && strstr(OUT, "PSNR"), "edit: %s", OUT);
    /* the same model reconstructs: a meaningful PSNR */
    char *ps = strstr(OUT, "mean ");
    double psnr = ps ? atof(ps + 5) : 0;
    CHECK(psnr > 20, "edit 20/20 PSNR %.2f dB", psnr);

    /* the degree of change in generate: 1 is the "fine-tuned" model (ft, another seed) alone, byte
     * for byte; 0 the original (a) alone; 0.5 neither */
    CHECK(run("train-diffusion --data d.safetensors --out ft.safetensors " TINY " --steps 2 --seed 5") == 0, "train ft: %s", OUT);
    CHECK(run("generate --model ft.safetensors --latents l.safetensors --steps 10 --out gb --threads 1") == 0, "generate b: %s", OUT);
    CHECK(run("generate --model ft.safetensors --latents l.safetensors --steps 10 --out gb1 --model-ratio 1 --threads 1") == 0,
          "--model-ratio 1: %s", OUT);
    CHECK(run("generate --model ft.safetensors --original a.safetensors --latents l.safetensors --steps 10 --out gb0 "
              "--model-ratio 0 --threads 1") == 0, "--model-ratio 0: %s", OUT);
    CHECK(run("generate --model ft.safetensors --original a.safetensors --latents l.safetensors --steps 10 --out gbh "
              "--model-ratio 0.5 --threads 1") == 0, "--model-ratio 0.5: %s", OUT);
    int same1 = 0, same0 = 0, half_b = 0, half_a = 0;
    for (int i = 0; i < 5; i++) {
        char n1[64], n2[64];
        snprintf(n1, sizeof n1, "gb1/%06d.png", i);
        snprintf(n2, sizeof n2, "gb/%06d.png", i);
        same1 += same_file(n1, n2);
        half_b += snprintf(n1, sizeof n1, "gbh/%06d.png", i) > 0 && same_file(n1, n2);
        snprintf(n1, sizeof n1, "gb0/%06d.png", i);
        snprintf(n2, sizeof n2, "gdir/%06d.png", i);
        same0 += same_file(n1, n2);
        half_a += snprintf(n1, sizeof n1, "gbh/%06d.png", i) > 0 && same_file(n1, n2);
    }
    CHECK(same1 == 5, "--model-ratio 1: %d of 5 images equal plain generation with --model", same1);
    CHECK(same0 == 5, "--model-ratio 0: %d of 5 images equal generation with the original model", same0);
    CHECK(half_a == 0 && half_b == 0, "--model-ratio 0.5: %d images equal the original's, %d the fine-tuned's", half_a, half_b);
    CHECK(run("generate --model ft.safetensors --latents l.safetensors --out gx --model-ratio 0.5") == 2 && strstr(OUT, "--original"),
          "--model-ratio without --original: %s", OUT);
    CHECK(run("generate --model ft.safetensors --original a.safetensors --latents l.safetensors --out gx --model-ratio 2") == 2 &&
          strstr(OUT, "out of range"), "--model-ratio 2: %s", OUT);
    /* edit: --model-ratio 0 generates with the inverting model, a reconstruction */
    CHECK(run("edit --model a.safetensors --input d.safetensors --take 4 --t0 200 --inv-steps 20 --gen-steps 20 --out e_rec "
              "--threads 1") == 0, "edit reconstruction: %s", OUT);
    CHECK(run("edit --model a.safetensors --model-gen ft.safetensors --model-ratio 0 --input d.safetensors --take 4 --t0 200 "
              "--inv-steps 20 --gen-steps 20 --out e_r0 --threads 1") == 0, "edit --model-ratio 0: %s", OUT);
    CHECK(same_file("e_rec/000003.png", "e_r0/000003.png") && same_file("e_rec/000000.png", "e_r0/000000.png"),
          "edit --model-ratio 0 differs from the reconstruction");

    /* bad model files */
    CHECK(run("sample --model junk.safetensors --out x.png") == 1 && strstr(OUT, "junk.safetensors"), "junk model: %s", OUT);
    CHECK(run("sample --model d.safetensors --out x.png") == 1 && strstr(OUT, "--config"), "no config: %s", OUT);
    td_write_text(DIR_, "other.json", "{\"model\": {\"ch\": 64, \"ch_mult\": [1,1], \"num_res_blocks\": 1, \"attn_resolutions\": [4],"
                                      " \"in_channels\": 1, \"out_ch\": 1}, \"data\": {\"image_size\": 8}}");
    CHECK(run("sample --model a.safetensors --config other.json --out x.png") == 1 && strstr(OUT, "temb.dense.0.weight") &&
          strstr(OUT, "(128,32)") && strstr(OUT, "(256,64)"), "mismatched config: %s", OUT);
    CHECK(run("invert --model a.safetensors --input d.safetensors --pad 4 --out l2.safetensors") == 1 && strstr(OUT, "16x16x1"),
          "wrong image size: %s", OUT);
    CHECK(run("invert --model a.safetensors --input d.safetensors --t0 1000 --out l2.safetensors") == 1 && strstr(OUT, "--t0"), "%s", OUT);

    td_remove(DIR_);
    return tu_finish("test_diffusion_cli");
}
