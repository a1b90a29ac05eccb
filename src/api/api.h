/* api.h — what the public API's handles hold (diffadapt.h keeps them opaque) and the helpers its
 * files share. Internal: never installed. */
#ifndef DA_API_H
#define DA_API_H

#include <stddef.h>

#include "diffadapt.h"
#include "nn/clip.h"
#include "nn/cnn.h"
#include "nn/unet.h"

struct da_model {
    da_unet unet;
};

struct da_clip_model {
    da_clip clip;
    da_bpe *bpe;              /* its own tokenizer */
};

struct da_classifier_model {
    da_cnn cnn;
    int n_classes;
    int64_t class_values[256];   /* the data label behind each class index */
};

/* err = formatted message when errlen > 0; returns -1 so that callers can `return da_api_fail(...)`. */
int da_api_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
