/* image.h — decoding and encoding image files (stb) and PNG grids of tensors. Pixels in
 * memory are float (C,H,W) in [-1,1]; files hold 8-bit grey or RGB. */
#ifndef DA_IMAGE_H
#define DA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Decodes PNG/JPEG/BMP/...; *out is malloc'ed (c,h,w) in [-1,1] with c = 1 or 3
 * (channels = 0 keeps the file's, 1 or 3 converts). Returns -1 with err set on failure. */
int da_image_read(const char *path, int channels, float **out, int *c, int *h, int *w, char *err, size_t errlen);
/* Reads only the header: the size and the colour channels (1 for grey or grey+alpha, 3 for RGB
 * or RGBA) that da_image_read with channels = 0 would give. Returns -1 with err set on failure. */
int da_image_info(const char *path, int *c, int *h, int *w, char *err, size_t errlen);
/* Encodes (c,h,w) in [-1,1] (clamped) as 8-bit PNG, written atomically. */
int da_image_write_png(const char *path, const float *chw, int c, int h, int w, char *err, size_t errlen);
/* A grid of n images (n,c,h,w) with `cols` columns and a 2-pixel border, as PNG. */
int da_image_write_grid(const char *path, const float *images, int64_t n, int c, int h, int w, int cols,
                        char *err, size_t errlen);

#endif
