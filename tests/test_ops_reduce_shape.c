/* test_ops_reduce_shape.c — sum/mean over axes and the shape ops (reshape, permute, concat,
 * slice, index-select, embedding): finite-difference gradients, PyTorch goldens, large cases. */
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops_golden.h"

typedef struct { int n; int axes[4]; bool keepdim, mean; } red_args;
static da_tensor *build_reduce(da_ctx *ctx, da_tensor **in, void *u) {
    red_args *a = u;
    return a->mean ? da_mean(ctx, in[0], a->n, a->axes, a->keepdim) : da_sum(ctx, in[0], a->n, a->axes, a->keepdim);
}

static da_tensor *build_permute(da_ctx *ctx, da_tensor **in, void *u) { return da_permute(ctx, in[0], u); }

typedef struct { int n, axis; } cat_args;
static da_tensor *build_concat(da_ctx *ctx, da_tensor **in, void *u) {
    cat_args *a = u;
    return da_concat(ctx, a->n, in, a->axis);
}

typedef struct { int axis; int64_t start, end; } slice_args;
static da_tensor *build_slice(da_ctx *ctx, da_tensor **in, void *u) {
    slice_args *a = u;
    return da_slice(ctx, in[0], a->axis, a->start, a->end);
}

typedef struct { int axis; int64_t n; const int64_t *idx; } sel_args;
static da_tensor *build_select(da_ctx *ctx, da_tensor **in, void *u) {
    sel_args *a = u;
    return da_index_select(ctx, in[0], a->axis, a->n, a->idx);
}

typedef struct { int ndim; int64_t shape[2]; const int64_t *ids; } emb_args;
static da_tensor *build_embedding(da_ctx *ctx, da_tensor **in, void *u) {
    emb_args *a = u;
    return da_embedding(ctx, in[0], a->ndim, a->shape, a->ids);
}

/* reshape inside a chain, so its backward (a view) is exercised with another op */
static da_tensor *build_reshape(da_ctx *ctx, da_tensor **in, void *u) {
    da_tensor *r = da_reshape(ctx, in[0], DA_SHAPE(-1, 4));
    return da_mul(ctx, r, r);
}

static void gradchecks(void) {
    da_rng rng;
    da_rng_init(&rng, 31);
    const float eps = 1e-2f;
    const double tol = 2e-3;
    da_tensor *x = gc_input(&rng, DA_SHAPE(2, 3, 4, 5), 1.0f);
    red_args reds[] = {
        {0, {0}, false, false}, {0, {0}, true, true}, {2, {1, 3}, true, false}, {2, {1, 3}, false, true},
        {1, {-1}, false, true}, {1, {0}, false, false}, {2, {0, 2}, true, true}, {3, {0, 1, 2}, false, false},
        {4, {3, 2, 1, 0}, false, true},
    };
    for (size_t k = 0; k < sizeof reds / sizeof reds[0]; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s over %d axes (first %d) keepdim=%d", reds[k].mean ? "mean" : "sum",
                 reds[k].n, reds[k].axes[0], reds[k].keepdim);
        gradcheck(name, build_reduce, 1, &x, &reds[k], eps, tol, tol, 1000);
    }
    int perms[][4] = {{0, 2, 3, 1}, {3, 2, 1, 0}, {1, 0, 2, 3}, {0, 1, 2, 3}};
    for (int k = 0; k < 4; k++) gradcheck("permute", build_permute, 1, &x, perms[k], eps, tol, tol, 1000);
    gradcheck("reshape", build_reshape, 1, &x, NULL, eps, tol, tol, 1000);
    slice_args sl[] = {{1, 1, 3}, {-1, 0, 2}, {0, 1, 2}, {3, 4, 5}};
    for (int k = 0; k < 4; k++) gradcheck("slice", build_slice, 1, &x, &sl[k], eps, tol, tol, 1000);
    int64_t idx[5] = {2, 0, 2, 1, 2};
    sel_args se[] = {{1, 5, idx}, {3, 3, idx}, {0, 4, (const int64_t[]){1, 1, 0, 1}}};
    for (int k = 0; k < 3; k++) gradcheck("index_select", build_select, 1, &x, &se[k], eps, tol, tol, 1000);
    da_tensor_free(x);

    da_tensor *cat[4] = {gc_input(&rng, DA_SHAPE(2, 1, 3), 1.0f), gc_input(&rng, DA_SHAPE(2, 4, 3), 1.0f),
                         gc_input(&rng, DA_SHAPE(2, 2, 3), 1.0f), gc_input(&rng, DA_SHAPE(2, 3, 3), 1.0f)};
    cat_args ca = {4, 1};
    gradcheck("concat 4 inputs axis 1", build_concat, 4, cat, &ca, eps, tol, tol, 1000);
    cat[1]->requires_grad = false;   /* a constant input among differentiable ones */
    ca.n = 3;
    gradcheck("concat 3 inputs, one constant", build_concat, 3, cat, &ca, eps, tol, tol, 1000);
    for (int k = 0; k < 4; k++) da_tensor_free(cat[k]);
    da_tensor *c0[2] = {gc_input(&rng, DA_SHAPE(3, 2), 1.0f), gc_input(&rng, DA_SHAPE(1, 2), 1.0f)};
    ca = (cat_args){2, 0};
    gradcheck("concat axis 0", build_concat, 2, c0, &ca, eps, tol, tol, 1000);
    ca = (cat_args){2, -1};
    da_tensor *c1[2] = {gc_input(&rng, DA_SHAPE(3, 2), 1.0f), gc_input(&rng, DA_SHAPE(3, 5), 1.0f)};
    gradcheck("concat axis -1", build_concat, 2, c1, &ca, eps, tol, tol, 1000);
    for (int k = 0; k < 2; k++) { da_tensor_free(c0[k]); da_tensor_free(c1[k]); }

    da_tensor *w = gc_input(&rng, DA_SHAPE(6, 5), 1.0f);
    int64_t ids[6] = {3, 0, 3, 5, 1, 3};
    emb_args ea = {2, {2, 3}, ids};
    gradcheck("embedding (2,3) ids, repeats", build_embedding, 1, &w, &ea, eps, tol, tol, 1000);
    da_tensor_free(w);
}

static void goldens(void) {
    if (!og_open()) return;
    const char *x[1] = {"x"}, *abc[3] = {"a", "b", "c"}, *wk[1] = {"w"};
    red_args r_sum13k = {2, {1, 3}, true, false}, r_sum0 = {1, {0}, false, false}, r_mean_last = {1, {-1}, false, true},
             r_mean02 = {2, {0, 2}, false, true}, r_sum_all = {0, {0}, false, false},
             r_mean_all_k = {4, {0, 1, 2, 3}, true, true};
    og_case("sum13k", build_reduce, &r_sum13k, 1, x, 1, 1e-5, 1e-5);
    og_case("sum0", build_reduce, &r_sum0, 1, x, 1, 1e-5, 1e-5);
    og_case("mean_last", build_reduce, &r_mean_last, 1, x, 1, 1e-6, 1e-5);
    og_case("mean02", build_reduce, &r_mean02, 1, x, 1, 1e-6, 1e-5);
    og_case("sum_all", build_reduce, &r_sum_all, 1, x, 1, 1e-5, 1e-5);
    og_case("mean_all_k", build_reduce, &r_mean_all_k, 1, x, 1, 1e-6, 1e-5);
    int p0231[4] = {0, 2, 3, 1}, p10[2] = {1, 0};
    og_case("permute", build_permute, p0231, 1, x, 1, 0, 0);
    og_case("permute_t", build_permute, p10, 1, x, 1, 0, 0);
    cat_args ca = {3, 1};
    og_case("concat1", build_concat, &ca, 3, abc, 7, 0, 0);
    slice_args sl = {1, 1, 3};
    og_case("slice", build_slice, &sl, 1, x, 1, 0, 0);
    int64_t n_idx = 0, n_ids = 0;
    int64_t *idx = og_load_i64("index_select.idx", &n_idx), *ids = og_load_i64("embedding.ids", &n_ids);
    if (idx) {
        sel_args se = {1, n_idx, idx};
        og_case("index_select", build_select, &se, 1, x, 1, 0, 0);
    }
    if (ids) {
        CHECK(n_ids == 6, "embedding ids: %lld, expected (2,3)", (long long)n_ids);
        emb_args ea = {2, {2, 3}, ids};
        og_case("embedding", build_embedding, &ea, 1, wk, 1, 1e-6, 0);
    }
    free(idx);
    free(ids);
    og_close();
}

/* Reductions and a transpose over a tensor above the parallel threshold, against direct loops
 * in double; the results must be bit-identical with 1 and 2 threads. */
static void large_cases(void) {
    da_rng rng;
    da_rng_init(&rng, 8);
    const int64_t A = 8, B = 48, C = 24, D = 40, n = A * B * C * D;
    da_tensor *x = gc_input(&rng, DA_SHAPE(A, B, C, D), 1.0f);
    float *keep[3] = {NULL, NULL, NULL};
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        da_ctx ctx;
        da_ctx_init(&ctx);
        /* sum over (0,2) keeps an inner dim; mean over (1,3) reduces the inner dim; permute */
        da_tensor *s = da_sum(&ctx, x, 2, (const int[]){0, 2}, false);          /* (B,D) */
        da_tensor *m = da_mean(&ctx, x, 2, (const int[]){1, 3}, true);          /* (A,1,C,1) */
        da_tensor *p = da_permute(&ctx, x, (const int[]){0, 3, 1, 2});          /* (A,D,B,C) */
        double *rs = calloc((size_t)(B * D), sizeof(double)), *rm = calloc((size_t)(A * C), sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            int64_t a = i / (B * C * D), b = (i / (C * D)) % B, c = (i / D) % C, d = i % D;
            rs[b * D + d] += x->data[i];
            rm[a * C + c] += x->data[i] / (double)(B * D);
        }
        float *fs = malloc(sizeof(float) * (size_t)(B * D)), *fm = malloc(sizeof(float) * (size_t)(A * C));
        for (int64_t i = 0; i < B * D; i++) fs[i] = (float)rs[i];
        for (int64_t i = 0; i < A * C; i++) fm[i] = (float)rm[i];
        tu_close("large sum over (0,2)", s->data, fs, (long)(B * D), 1e-5, 1e-5);
        tu_close("large mean over (1,3)", m->data, fm, (long)(A * C), 1e-6, 1e-5);
        long bad = 0;
        for (int64_t a = 0; a < A; a++)
            for (int64_t d = 0; d < D; d++)
                for (int64_t b = 0; b < B; b++)
                    for (int64_t c = 0; c < C; c++)
                        bad += p->data[((a * D + d) * B + b) * C + c] != x->data[((a * B + b) * C + c) * D + d];
        CHECK(bad == 0, "large permute: %ld elements misplaced", bad);
        float *outs[3] = {s->data, m->data, p->data};
        int64_t sizes[3] = {B * D, A * C, n};
        for (int k = 0; k < 3; k++) {
            if (threads == 1) {
                keep[k] = malloc(sizeof(float) * (size_t)sizes[k]);
                memcpy(keep[k], outs[k], sizeof(float) * (size_t)sizes[k]);
            } else {
                CHECK(memcmp(keep[k], outs[k], sizeof(float) * (size_t)sizes[k]) == 0,
                      "large output %d differs between 1 and 2 threads", k);
            }
        }
        free(rs); free(rm); free(fs); free(fm);
        da_ctx_free(&ctx);
    }
    for (int k = 0; k < 3; k++) free(keep[k]);
    da_set_threads(0);
    da_tensor_free(x);
}

/* Runs f in a child process; true when it aborted (da_check on a programming error). */
static bool aborts(void (*f)(void)) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        f();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void bad_embedding(void) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *w = da_zeros(&ctx, DA_SHAPE(4, 3));
    int64_t ids[3] = {0, 4, 1};   /* 4 is outside the vocabulary of 4 */
    da_embedding(&ctx, w, DA_SHAPE(3), ids);
}

static void negative_embedding(void) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *w = da_zeros(&ctx, DA_SHAPE(4, 3));
    int64_t ids[1] = {-1};
    da_embedding(&ctx, w, DA_SHAPE(1), ids);
}

static void good_embedding(void) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *w = da_zeros(&ctx, DA_SHAPE(4, 3));
    int64_t ids[2] = {0, 3};
    da_embedding(&ctx, w, DA_SHAPE(2), ids);
    da_ctx_free(&ctx);
}

static void shape_checks(void) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *x = da_zeros(&ctx, DA_SHAPE(2, 3, 4));
    da_tensor *s = da_sum(&ctx, x, 0, NULL, false);
    CHECK(s->ndim == 0 && s->numel == 1, "sum of everything: ndim %d numel %lld", s->ndim, (long long)s->numel);
    da_tensor *k = da_mean(&ctx, x, 1, (const int[]){-2}, true);
    CHECK(k->ndim == 3 && k->shape[0] == 2 && k->shape[1] == 1 && k->shape[2] == 4, "mean keepdim shape");
    da_tensor *e = da_embedding(&ctx, da_zeros(&ctx, DA_SHAPE(5, 7)), DA_SHAPE(2, 3), (const int64_t[]){0, 1, 2, 3, 4, 0});
    CHECK(e->ndim == 3 && e->shape[0] == 2 && e->shape[1] == 3 && e->shape[2] == 7, "embedding shape");
    da_ctx_free(&ctx);
    CHECK(aborts(bad_embedding), "embedding with id 4 of vocabulary 4 did not abort");
    CHECK(aborts(negative_embedding), "embedding with id -1 did not abort");
    CHECK(!aborts(good_embedding), "a valid embedding aborted");
}

int main(void) {
    gradchecks();
    goldens();
    large_cases();
    shape_checks();
    return tu_finish("test_ops_reduce_shape");
}
