/* cmd_inspect.c — `diffadapt inspect FILE`: lists every tensor (name, dtype, shape, elements),
 * the totals and the metadata of a safetensors file or PyTorch checkpoint, after the reader's
 * full validation of the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/safetensors.h"

/* Prints at most max bytes of s with control characters shown as '?', so a hostile name
 * cannot drive the terminal. */
static void print_clean(const char *s, size_t max) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        putchar(c < 0x20 || c == 0x7f ? '?' : c);
    }
    if (n > max) printf("... (%zu bytes)", n);
}

int cmd_inspect(int argc, char **argv) {
    static const da_option opts[] = {{0}};
    static const da_cmd_info info = {
        "inspect", "FILE.safetensors|FILE.pth",
        "Lists the tensors of a safetensors file or a PyTorch checkpoint written by torch.save (.pth\n"
        ".pt .ckpt .bin: name, dtype, shape, element count), the total parameter count and size, and\n"
        "the file's metadata (for a checkpoint: where its state dict was found). Exits 1 when the\n"
        "file is malformed or, for a checkpoint, asks for anything but tensors.",
        "FILE"};
    int npos = 0;
    char **pos = NULL;
    int rc = da_parse_args(&info, opts, argc, argv, &npos, &pos);
    if (rc) return da_args_exit(rc);
    if (npos != 1) {
        fprintf(stderr, "diffadapt inspect: expected exactly one FILE, got %d (see --help)\n", npos);
        free(pos);
        return 2;
    }
    const char *path = pos[0];
    free(pos);

    st_file f;
    char err[1024];
    if (st_open(path, &f, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    int width = 4;
    for (int i = 0; i < f.n_tensors; i++) {
        int n = (int)strlen(f.tensors[i].name);
        if (n > width) width = n;
    }
    if (width > 60) width = 60;
    printf("%s: %d tensors, %d metadata entries\n", path, f.n_tensors, f.n_meta);
    printf("  %-*s  %-5s  %-22s  %s\n", width, "name", "dtype", "shape", "elements");
    int64_t total = 0, total_float = 0;
    size_t bytes = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor_info *t = &f.tensors[i];
        char shape[160];
        size_t o = (size_t)snprintf(shape, sizeof shape, "(");
        for (int d = 0; d < t->ndim && o < sizeof shape; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        if (o < sizeof shape) snprintf(shape + o, sizeof shape - o, ")");
        printf("  ");
        size_t n = strlen(t->name);
        print_clean(t->name, (size_t)width);
        if (n < (size_t)width) printf("%*s", width - (int)n, "");
        printf("  %-5s  %-22s  %lld\n", st_dtype_name(t->dtype), shape, (long long)t->numel);
        total += t->numel;
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64)
            total_float += t->numel;
        bytes += t->end - t->begin;
    }
    printf("total: %lld elements (%lld in float tensors), %zu bytes (%.2f MiB) of tensor data\n",
           (long long)total, (long long)total_float, bytes, (double)bytes / (1024.0 * 1024.0));
    if (f.n_meta) {
        printf("metadata:\n");
        for (int i = 0; i < f.n_meta; i++) {
            printf("  ");
            print_clean(f.meta[i].key, 80);
            printf(" = ");
            print_clean(f.meta[i].value, 400);
            printf("\n");
        }
    } else {
        printf("metadata: none\n");
    }
    st_close(&f);
    return 0;
}
