/* fuzz_config.c — libFuzzer target for the model config readers: the UNet config as YAML or
 * JSON (da_unet_config_load, with its alias and size bounds) and the CLIP config JSON. Any input
 * must be refused with a message or give a config that passes validation. */
#include <stdint.h>

#include "fuzz_input.h"
#include "nn/clip.h"
#include "nn/unet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024];
    da_unet_config c;
    da_unet_config_default(&c);
    err[0] = 0;
    if (da_unet_config_load(fuzz_file("config.yml", data, size), &c, err, sizeof err)) {
        if (!err[0]) abort();   /* a refusal must say why */
    } else if (da_unet_config_validate(&c, err, sizeof err)) {
        abort();                /* accepted means valid */
    }
    char *json = malloc(size + 1);
    if (!json) return 0;
    memcpy(json, data, size);
    json[size] = 0;
    da_clip_config cc;
    da_clip_config_default(&cc);
    err[0] = 0;
    if (da_clip_config_from_json(json, "fuzz", &cc, err, sizeof err) && !err[0]) abort();
    free(json);
    return 0;
}
