/* cmd_convert.c — `diffadapt convert IN OUT.safetensors`: writes the tensors of a PyTorch
 * checkpoint (or of another safetensors file) as safetensors, dtypes and names unchanged,
 * optionally with a UNet config stored in the file so that it loads without --config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/outputs.h"
#include "io/safetensors.h"
#include "nn/unet.h"

#define CMD "convert"

int cmd_convert(int argc, char **argv) {
    const char *config = NULL;
    da_common co = {0};
    da_option opts[4] = {
        {"--config", DA_OPT_STRING, &config, "FILE", "a UNet config (reference YAML or JSON) to store in OUT, so "
         "that --model OUT needs no --config", false},
    };
    static const da_common_words words = {.force = "overwrite an existing OUT"};
    da_common_options(&co, DA_COPT_FORCE, &words, opts + da_option_count(opts));
    static const da_cmd_info info = {
        CMD, "IN OUT.safetensors [--config FILE] [--force]",
        "Reads IN — a PyTorch checkpoint written by torch.save (.pth .pt .ckpt .bin, including\n"
        "Hugging Face pytorch_model.bin; the state dict may be nested under state_dict, model, ema, ...)\n"
        "or a safetensors file — and writes its tensors to OUT as safetensors, with the same names\n"
        "(a DataParallel \"module.\" prefix dropped) and dtypes. PyTorch files are read without running\n"
        "any of their code: a file that asks for anything but tensors is refused. OUT is written to a\n"
        "temporary name and renamed.",
        "IN OUT.safetensors"};
    int npos = 0;
    char **pos = NULL;
    int rc = da_parse_args(&info, opts, argc, argv, &npos, &pos);
    if (rc) return da_args_exit(rc);
    if (npos != 2) {
        fprintf(stderr, "diffadapt " CMD ": expected IN and OUT.safetensors, got %d arguments (see --help)\n", npos);
        free(pos);
        return 2;
    }
    const char *in = pos[0], *out = pos[1];
    free(pos);
    if (da_check_output(out, co.force)) return 1;

    char *config_json = NULL;
    if (config) {
        da_unet_config cfg;
        da_unet_config_default(&cfg);
        char err[1024];
        if (da_unet_config_load(config, &cfg, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            return 1;
        }
        config_json = da_unet_config_to_json(&cfg);
    }
    st_file f;
    char err[1024];
    if (st_open(in, &f, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        free(config_json);
        return 1;
    }
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor_info *t = &f.tensors[i];
        st_writer_add_raw(w, t->name, t->dtype, t->ndim, t->shape, f.data + t->begin);
    }
    for (int i = 0; i < f.n_meta; i++)
        if (!config_json || (strcmp(f.meta[i].key, "config") && strcmp(f.meta[i].key, "format")))
            st_writer_set_meta(w, f.meta[i].key, f.meta[i].value);
    if (config_json) {
        st_writer_set_meta(w, "format", "diffadapt-unet");
        st_writer_set_meta(w, "config", config_json);
    }
    rc = st_writer_save(w, out, err, sizeof err);
    if (rc) fprintf(stderr, "error: %s\n", err);
    else printf("%s: %d tensors written\n", out, f.n_tensors);
    st_writer_free(w);
    st_close(&f);
    free(config_json);
    return rc ? 1 : 0;
}
