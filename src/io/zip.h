/* zip.h — a read-only index of a zip archive held in memory (the container torch.save writes):
 * the central directory (zip64 included) parsed and bounds-checked, each entry's data located
 * through its local header. No decompression: torch.save stores its entries uncompressed. */
#ifndef DA_ZIP_H
#define DA_ZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;                   /* NUL-terminated; names holding a NUL byte are refused */
    int method;                   /* 0 stored, 8 deflate, ... (only 0 can be read) */
    uint32_t crc32;               /* from the central directory */
    size_t offset;                /* of the first data byte in the archive (stored entries) */
    size_t size;                  /* compressed size = data bytes in the archive */
    size_t uncompressed;
} da_zip_entry;

typedef struct {
    da_zip_entry *entries;        /* central-directory order */
    int n;
} da_zip;

/* Indexes the archive in buf (size bytes). Every entry's local header and data must lie inside
 * buf; names must be unique. On failure returns -1 with a message naming `label` in err, and
 * z is left empty (da_zip_free is still safe). */
int da_zip_open(const unsigned char *buf, size_t size, da_zip *z, const char *label, char *err, size_t errlen);
void da_zip_free(da_zip *z);
/* NULL when absent. */
const da_zip_entry *da_zip_find(const da_zip *z, const char *name);
/* 0 when e is stored (method 0) and its bytes match the recorded CRC-32; else -1 with err set. */
int da_zip_check_stored(const unsigned char *buf, const da_zip_entry *e, const char *label,
                        int verify_crc, char *err, size_t errlen);

#endif
