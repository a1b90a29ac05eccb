/* test_same_pipeline.c — `diffadapt finetune` + `diffadapt translate` with the experiment's
 * settings write the same weights and the same images, byte for byte, as the experiment's own
 * fine-tuning and translation stages: there is one DiffusionCLIP run, not two. The model has
 * dropout, so the batch seeds must agree too. */
#include <unistd.h>

#include "data/dataset.h"
#include "data/image.h"
#include "experiment/experiment.h"
#include "util/atomic.h"
#include "util/files.h"
#include "io/safetensors.h"
#include "nn/unet.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"
#include "test_util.h"
#include "tiny_clip.h"
#include "tiny_unet.h"
#include "tmpdir.h"
#include "cli_run.h"

#define RES 8
#define N 7   /* images: two DDIM batches of 3 and one of 1 */

static char OUT[1 << 17];

/* Random smooth images (N,1,RES,RES) in [-1,1] with labels 0/1, saved as a data file. */
static void write_data(const char *path) {
    float x[N * RES * RES];
    int64_t labels[N];
    da_rng r;
    da_rng_init(&r, 5);
    for (int i = 0; i < N; i++) {
        float a = da_rng_uniform1(&r) * 2 - 1, cy = da_rng_uniform1(&r) * RES;
        for (int y = 0; y < RES; y++)
            for (int xx = 0; xx < RES; xx++)
                x[(i * RES + y) * RES + xx] = 0.5f * a * (float)xx / RES + 0.6f * expf(-(y - cy) * (y - cy) / 5.0f) - 0.3f;
        labels[i] = i % 2;
    }
    int64_t shape[4] = {N, 1, RES, RES}, lshape[1] = {N};
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", 4, shape, x);
    st_writer_add_i64(w, "labels", 1, lshape, labels);
    char err[512];
    da_check(st_writer_save(w, path, err, sizeof err) == 0, "test_same_pipeline", "%s", err);
    st_writer_free(w);
}

/* The experiment's stages on the data file: fine-tuned model in e->finetuned, translations of
 * the training images in e->adapted. */
static int experiment_stages(da_experiment *e, const char *dir, const char *model, const char *clip, const char *data) {
    da_exp_config c;
    da_exp_defaults(&c);
    c.model = model;
    c.clip = clip;
    c.data = data;
    c.ft.t0 = 200;
    c.ft.inv_steps = 4;
    c.ft.train_steps = 2;
    c.ft.gen_steps = 2;
    c.ft.images = 4;
    c.ft.epochs = 2;
    c.ft.batch = 2;
    c.ft.lr = 1e-3f;
    c.ft.ddim_batch = 3;
    c.ft.seed = 3;
    da_exp_init(e, &c);
    snprintf(e->cache_dir, sizeof e->cache_dir, "%s/cache", dir);
    char err[4096];
    if (da_mkdirs(e->cache_dir, err, sizeof err) || da_dataset_load(data, NULL, &e->train, err, sizeof err) ||
        da_dataset_load(data, NULL, &e->test, err, sizeof err) || da_exp_stage_diffusion(e, err, sizeof err) ||
        da_exp_stage_clip(e, err, sizeof err) || da_exp_stage_finetune(e, err, sizeof err) ||
        da_exp_stage_translate(e, err, sizeof err)) {
        fprintf(stderr, "experiment stages: %s\n", err);
        return -1;
    }
    return 0;
}

int main(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) {
        printf("skipped: DA_BIN is not set to the diffadapt binary\n");
        return 77;
    }
    da_set_threads(1);   /* the CLI runs with --threads 1 as well: sums split alike */
    char dir[512], model[700], clip[700], data[700], ft[700], tr[700], cmd[8192], err[512];
    td_make(dir, sizeof dir, "same_pipeline");
    td_path(model, sizeof model, dir, "m.safetensors");
    td_path(clip, sizeof clip, dir, "clip.safetensors");
    td_path(data, sizeof data, dir, "d.safetensors");
    td_path(ft, sizeof ft, dir, "ft.safetensors");
    td_path(tr, sizeof tr, dir, "tr");
    da_unet m;
    tiny_unet_init(&m, RES, 17);
    m.cfg.dropout = 0.1f;   /* the masks come from the batch seeds: they must be the same */
    CHECK(da_unet_save(&m, model, NULL, 0, err, sizeof err) == 0, "%s", err);
    da_unet_free(&m);
    da_clip cm;
    tiny_clip(&cm, 18);
    CHECK(da_clip_save(&cm, clip, NULL, err, sizeof err) == 0, "%s", err);
    da_clip_free(&cm);
    write_data(data);

    da_experiment e;
    int erc = experiment_stages(&e, dir, model, clip, data);
    CHECK(erc == 0, "the experiment's stages failed");

    /* the same settings through the two commands */
    snprintf(cmd, sizeof cmd, "'%s' finetune --model '%s' --clip '%s' --src-text photo --tgt-text sketch --data '%s' "
             "--t0 200 --inv-steps 4 --train-steps 2 --images 4 --epochs 2 --batch 2 --lr 1e-3 --seed 3 --ddim-batch 3 "
             "--grid-images 0 --threads 1 --out '%s' 2>&1", bin, model, clip, data, ft);
    int rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "finetune: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' translate --model '%s' --finetuned '%s' --data '%s' --t0 200 --inv-steps 4 "
             "--gen-steps 2 --batch 3 --grid-images 0 --threads 1 --out '%s' 2>&1", bin, model, ft, data, tr);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "translate: exit %d\n%s", rc, OUT);
    if (erc != 0 || rc != 0) return tu_finish("test_same_pipeline");

    /* the weights, bit for bit */
    da_unet cli_ft;
    CHECK(da_unet_load(&cli_ft, ft, NULL, err, sizeof err) == 0, "%s", err);
    int differ = 0, changed = 0;
    for (int i = 0; i < cli_ft.params.n; i++) {
        const da_tensor *a = cli_ft.params.items[i].t, *b = e.finetuned.params.items[i].t, *o = e.model.params.items[i].t;
        differ += memcmp(a->data, b->data, sizeof(float) * (size_t)a->numel) != 0;
        changed += memcmp(a->data, o->data, sizeof(float) * (size_t)a->numel) != 0;
    }
    CHECK(differ == 0, "%d of %d parameter tensors differ between `finetune` and the experiment", differ, cli_ft.params.n);
    CHECK(changed > 0, "fine-tuning changed no parameter: the comparison would prove nothing");
    da_unet_free(&cli_ft);
    /* another seed gives other weights: the seeds matter here, so agreeing on them is tested */
    char ft4[700];
    td_path(ft4, sizeof ft4, dir, "ft4.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' finetune --model '%s' --clip '%s' --src-text photo --tgt-text sketch --data '%s' "
             "--t0 200 --inv-steps 4 --train-steps 2 --images 4 --epochs 2 --batch 2 --lr 1e-3 --seed 4 --ddim-batch 3 "
             "--grid-images 0 --threads 1 --out '%s' 2>&1", bin, model, clip, data, ft4);
    rc = cli_run(cmd, OUT, sizeof OUT);
    da_unet other;
    CHECK(rc == 0 && da_unet_load(&other, ft4, NULL, err, sizeof err) == 0, "finetune --seed 4: exit %d\n%s", rc, OUT);
    if (rc == 0) {
        int moved = 0;
        for (int i = 0; i < other.params.n; i++)
            moved += memcmp(other.params.items[i].t->data, e.finetuned.params.items[i].t->data,
                            sizeof(float) * (size_t)other.params.items[i].t->numel) != 0;
        CHECK(moved > 0, "--seed 4 gave the same weights as seed 3: dropout does not reach the test");
        da_unet_free(&other);
    }

    /* the images: the experiment's translations written as PNG by the same writer equal the
     * command's files, and the floats behind them agree exactly with a float copy */
    int bad = 0;
    for (int i = 0; i < N; i++) {
        char name[64], a[800], b[800];
        snprintf(name, sizeof name, "exp_%d.png", i);
        td_path(a, sizeof a, dir, name);
        snprintf(b, sizeof b, "%s/%06d.png", tr, i);
        CHECK(da_image_write_png(a, e.adapted.images + (int64_t)i * RES * RES, 1, RES, RES, err, sizeof err) == 0, "%s", err);
        size_t la = 0, lb = 0;
        char *ca = td_slurp(a, &la), *cb = td_slurp(b, &lb);
        bad += !ca || !cb || la != lb || memcmp(ca, cb, la) != 0;
        free(ca);
        free(cb);
    }
    CHECK(bad == 0, "%d of %d translated images differ between `translate` and the experiment", bad, N);
    da_exp_free(&e);
    td_remove(dir);
    return tu_finish("test_same_pipeline");
}
