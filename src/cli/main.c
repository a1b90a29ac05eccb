/* main.c — the diffadapt command: dispatches sub-commands (one file each under src/cli/). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "diffadapt.h"

static const da_command COMMANDS[] = {
    {"inspect", "list the tensors and metadata of a safetensors file or PyTorch checkpoint", cmd_inspect},
    {"convert", "write a PyTorch checkpoint (.pth/.pt/.ckpt/.bin) as safetensors", cmd_convert},
    {"selftest", "a quick check that the engine computes correct gradients", cmd_selftest},
    {"train-diffusion", "train a DDPM UNet (EMA, checkpoints, resume)", cmd_train_diffusion}, {"sample", "DDIM samples from a diffusion model", cmd_sample}, {"invert", "DDIM inversion of images to latents at t0", cmd_invert}, {"generate", "DDIM generation from latents", cmd_generate}, {"edit", "invert with one model, generate with another", cmd_edit},
    {"finetune", "DiffusionCLIP fine-tuning of a diffusion model toward a text", cmd_finetune},
    {"translate", "translate a labelled data set: invert with one model, generate with the fine-tuned one", cmd_translate},
    {"tokenize", "CLIP byte-pair token ids of texts", cmd_tokenize},
    {"embed", "CLIP embeddings of texts and images, one JSON line each", cmd_embed},
    {"zero-shot", "CLIP zero-shot classification of a data set among text labels", cmd_zero_shot},
    {"train-classifier", "train the reference CNN and evaluate it per epoch on named sets", cmd_train_classifier},
    {"experiment", "the whole method end to end (diffusion, CLIP, fine-tuning, translation, CNN over seeds) and a report", cmd_experiment},
    {"train-clip", "train the built-in mini-CLIP on captioned style renderings", cmd_train_clip}, {"eval-clip", "zero-shot style and sketch-vs-photo accuracy of a CLIP", cmd_eval_clip},
};

static void usage(FILE *out) {
    fprintf(out, "usage: diffadapt COMMAND [OPTIONS]   (diffadapt COMMAND --help for its options)\n"
                 "       diffadapt --version            (version, commit, CPU paths: for bug reports)\n\n"
                 "Text-guided domain adaptation with diffusion models.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-18s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "\nenvironment:\n"
                 "  DIFFADAPT_MODELS      folder of the shipped models\n"
                 "  DIFFADAPT_CLIP_VOCAB  CLIP's BPE vocabulary for --clip archives without one\n"
                 "  DIFFADAPT_MAX_GIB     largest model, tensor or data set to load or build, in GiB (default 16)\n"
                 "kernel switches (for checks and benchmarks; the defaults were measured, docs/conv-backends.md):\n"
                 "  DIFFADAPT_CONV        convolutions: auto (default), blas, dnnl or wino\n"
                 "  DIFFADAPT_CONV_ALGO   direct: no Winograd convolutions (oneDNN's or ours)\n"
                 "  DIFFADAPT_GEMM        matrix products: dnnl (default when built in) or blas\n"
                 "  ONEDNN_MAX_CPU_ISA    caps oneDNN's instruction set (e.g. AVX2)\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        /* through the public API, so the CLI and an embedding program report the same things */
        char info[4096];
        da_build_info(info, sizeof info);
        fputs(info, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "diffadapt: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
