/* precision.c — the precision of a model's inference convolutions (da_precision): the rule
 * behind the names is da_precision_from_name's (tensor/ops/conv_backend.h, docs/precision.md). */
#include "api/api.h"
#include "tensor/ops/conv_backend.h"

int da_model_set_precision(da_model *m, const char *precision, char *err, size_t errlen) {
    if (!m || !precision) return da_api_fail(err, errlen, "da_model_set_precision: an argument is missing");
    da_precision p;
    if (da_precision_from_name(precision, &p, err, errlen)) return -1;
    m->unet.infer_precision = p;
    return 0;
}

const char *da_model_precision(const da_model *m) { return da_precision_name(m->unet.infer_precision); }
