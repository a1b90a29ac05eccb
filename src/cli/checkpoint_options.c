/* checkpoint_options.c — the checkpoint options of a training run (see checkpoint_options.h). */
#include "cli/checkpoint_options.h"

#include <stdio.h>

#include "cli/outputs.h"

int da_ckpt_options(da_cli_ckpt *c, const char *resume_help, da_option *out) {
    out[0] = (da_option){"--resume", DA_OPT_STRING, &c->resume, "CKPT", resume_help, false};
    out[1] = (da_option){"--checkpoint", DA_OPT_STRING, &c->path, "PATH",
                         "checkpoint file (default: OUT with .ckpt.safetensors)", false};
    out[2] = (da_option){"--checkpoint-every", DA_OPT_INT, &c->every, "N",
                         "write the checkpoint every N steps (0 = only at the end)", false};
    return DA_CKPT_N_OPTS;
}

int da_ckpt_resolve(const char *cmd, da_cli_ckpt *c, const char *out, char *buf, size_t len) {
    if (c->every < 0) {
        fprintf(stderr, "diffadapt %s: --checkpoint-every must not be negative, got %d\n", cmd, c->every);
        return 2;
    }
    if (!c->path) {
        da_sibling_path(buf, len, out, ".ckpt.safetensors");
        c->path = buf;
    }
    return 0;
}
