/* cmd_tokenize.c — `diffadapt tokenize`: CLIP token ids of texts, one line of space-separated
 * ids per text (start and end tokens included, no padding). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "text/bpe.h"

int cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    bool truncate = false;
    int context = DA_CLIP_CONTEXT;
    const da_option opts[] = {
        {"--vocab", DA_OPT_STRING, &vocab, "V",
         "bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + merges.txt (default: $DIFFADAPT_CLIP_VOCAB)", false},
        {"--truncate", DA_OPT_FLAG, &truncate, NULL, "cut over-long texts to the context, keeping the end token", false},
        {"--context", DA_OPT_INT, &context, "N", "tokens per text, start and end included", false},
        {0},
    };
    const da_cmd_info info = {"tokenize", "[--vocab V] [--truncate] [--] TEXT...",
                              "Prints the CLIP byte-pair token ids of each TEXT on its own line.", "TEXT"};
    int n_pos;
    char **pos;
    int rc = da_parse_args(&info, opts, argc, argv, &n_pos, &pos);
    if (rc) return da_args_exit(rc);
    if (n_pos == 0) {
        fprintf(stderr, "diffadapt tokenize: give at least one TEXT (see --help)\n");
        free(pos);
        return 2;
    }
    if (context < 2 || context > 1000000) {
        fprintf(stderr, "diffadapt tokenize: --context must be at least 2 (CLIP uses 77), got %d\n", context);
        free(pos);
        return 2;
    }
    if (!vocab) vocab = getenv("DIFFADAPT_CLIP_VOCAB");
    if (!vocab || !*vocab) {
        fprintf(stderr, "diffadapt tokenize: no vocabulary; pass --vocab bpe_simple_vocab_16e6.txt.gz (or a folder "
                        "with vocab.json and merges.txt), or set DIFFADAPT_CLIP_VOCAB\n");
        free(pos);
        return 2;
    }
    char err[1024];
    da_bpe *bpe = da_bpe_load(vocab, err, sizeof err);
    if (!bpe) {
        fprintf(stderr, "diffadapt tokenize: %s\n", err);
        free(pos);
        return 1;
    }
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)context);
    rc = 0;
    for (int i = 0; i < n_pos && ids; i++) {
        int n = da_bpe_encode(bpe, pos[i], context, truncate, ids, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "diffadapt tokenize: %s\n", err);
            rc = 1;
            break;
        }
        for (int k = 0; k < n; k++) printf(k ? " %lld" : "%lld", (long long)ids[k]);
        printf("\n");
    }
    if (!ids) { fprintf(stderr, "diffadapt tokenize: out of memory\n"); rc = 1; }
    free(ids);
    free(pos);
    da_bpe_free(bpe);
    return rc;
}
