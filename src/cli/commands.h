/* commands.h — the sub-commands of the diffadapt CLI. Each takes (argc, argv) with argv[0] the
 * command name, prints --help, and returns the process exit code (0 ok, 1 error, 2 usage). */
#ifndef DA_COMMANDS_H
#define DA_COMMANDS_H

typedef struct {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} da_command;

int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_train_diffusion(int argc, char **argv); int cmd_sample(int argc, char **argv); int cmd_invert(int argc, char **argv); int cmd_generate(int argc, char **argv); int cmd_edit(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_zero_shot(int argc, char **argv);
int cmd_train_classifier(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_train_clip(int argc, char **argv); int cmd_eval_clip(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_translate(int argc, char **argv);

#endif
