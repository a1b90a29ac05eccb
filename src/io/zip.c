/* zip.c — central-directory reader for zip archives in memory (see zip.h). Every offset and
 * count read from the archive is checked against the buffer before it is used, and counts are
 * bounded by the bytes that would hold them before anything is allocated. */
#include "io/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "util/errf.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EOCD_LEN 22u
#define CENTRAL_LEN 46u
#define LOCAL_LEN 30u
#define LOCATOR64_LEN 20u
#define EOCD64_LEN 56u

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* The end-of-central-directory record: the last 22+ bytes, followed by at most a 64 KiB comment. */
static int find_eocd(const unsigned char *buf, size_t size, size_t *at) {
    if (size < EOCD_LEN) return -1;
    size_t lo = size - EOCD_LEN > 65535 ? size - EOCD_LEN - 65535 : 0;
    for (size_t i = size - EOCD_LEN + 1; i-- > lo;)
        if (rd32(buf + i) == SIG_EOCD && i + EOCD_LEN + rd16(buf + i + 20) == size) {
            *at = i;
            return 0;
        }
    return -1;
}

/* Fills in the 0xFFFF.. fields of a central entry from its zip64 extra field (id 0x0001). */
static int zip64_extra(const unsigned char *ex, size_t exlen, uint64_t *usize, uint64_t *csize, uint64_t *lho) {
    size_t i = 0;
    while (i + 4 <= exlen) {
        uint16_t id = rd16(ex + i), len = rd16(ex + i + 2);
        if (i + 4 + len > exlen) return -1;
        if (id == 0x0001) {
            const unsigned char *p = ex + i + 4, *end = p + len;
            uint64_t *fields[3] = {usize, csize, lho};
            for (int k = 0; k < 3; k++) {
                if (*fields[k] != 0xFFFFFFFFu) continue;
                if (p + 8 > end) return -1;
                *fields[k] = rd64(p);
                p += 8;
            }
            return 0;
        }
        i += 4 + (size_t)len;
    }
    return 0;
}

static int cmp_entry_names(const void *a, const void *b) {
    return strcmp((*(const da_zip_entry *const *)a)->name, (*(const da_zip_entry *const *)b)->name);
}

void da_zip_free(da_zip *z) {
    if (!z) return;
    for (int i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    z->entries = NULL;
    z->n = 0;
}

/* Locates the central directory: offset, size and entry count, zip64 records included. */
static int read_eocd(const unsigned char *buf, size_t size, const char *label, uint64_t *cd_off,
                     uint64_t *cd_size, uint64_t *count, char *err, size_t errlen) {
    size_t eocd;
    if (find_eocd(buf, size, &eocd)) {
        da_errf(err, errlen, "%s: no zip end-of-central-directory record (the archive is truncated or "
                "is not a zip file)", label);
        return -1;
    }
    const unsigned char *e = buf + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0) {
        da_errf(err, errlen, "%s: multi-part zip archives are not supported", label);
        return -1;
    }
    *count = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    size_t cd_end_limit = eocd;
    if (*count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) {
        /* zip64: a locator just before the record points at the zip64 end record */
        if (eocd < LOCATOR64_LEN || rd32(buf + eocd - LOCATOR64_LEN) != SIG_LOCATOR64) {
            da_errf(err, errlen, "%s: zip64 archive without its zip64 locator (truncated or corrupt)", label);
            return -1;
        }
        uint64_t off64 = rd64(buf + eocd - LOCATOR64_LEN + 8);
        if (off64 > eocd - LOCATOR64_LEN || eocd - LOCATOR64_LEN - off64 < EOCD64_LEN ||
            rd32(buf + off64) != SIG_EOCD64) {
            da_errf(err, errlen, "%s: the zip64 end record is missing or outside the archive", label);
            return -1;
        }
        const unsigned char *z = buf + off64;
        *count = rd64(z + 32);
        *cd_size = rd64(z + 40);
        *cd_off = rd64(z + 48);
        cd_end_limit = (size_t)off64;
    }
    if (*cd_off > cd_end_limit || *cd_size > cd_end_limit - *cd_off) {
        da_errf(err, errlen, "%s: the zip central directory (offset %llu, %llu bytes) lies outside the "
                "archive of %zu bytes (truncated or corrupt)", label, (unsigned long long)*cd_off,
                (unsigned long long)*cd_size, size);
        return -1;
    }
    if (*count > *cd_size / CENTRAL_LEN) {
        da_errf(err, errlen, "%s: the zip directory claims %llu entries in %llu bytes (corrupt)", label,
                (unsigned long long)*count, (unsigned long long)*cd_size);
        return -1;
    }
    return 0;
}

/* Parses the central entry at p (avail bytes left in the directory) into e; *used = its length. */
static int read_central(const unsigned char *buf, size_t size, const unsigned char *p, size_t avail,
                        da_zip_entry *e, size_t *used, const char *label, int idx, char *err, size_t errlen) {
    if (avail < CENTRAL_LEN || rd32(p) != SIG_CENTRAL) {
        da_errf(err, errlen, "%s: zip directory entry %d is damaged (bad signature)", label, idx);
        return -1;
    }
    uint16_t flags = rd16(p + 8), nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
    if ((size_t)CENTRAL_LEN + nlen + xlen + clen > avail) {
        da_errf(err, errlen, "%s: zip directory entry %d runs past the directory", label, idx);
        return -1;
    }
    if (memchr(p + CENTRAL_LEN, 0, nlen)) {
        da_errf(err, errlen, "%s: zip entry %d has a NUL byte in its name", label, idx);
        return -1;
    }
    e->name = malloc((size_t)nlen + 1);
    if (!e->name) { da_errf(err, errlen, "%s: out of memory", label); return -1; }
    memcpy(e->name, p + CENTRAL_LEN, nlen);
    e->name[nlen] = 0;
    if (flags & 1) {
        da_errf(err, errlen, "%s: zip entry '%.200s' is encrypted", label, e->name);
        return -1;
    }
    e->method = rd16(p + 10);
    e->crc32 = rd32(p + 16);
    uint64_t csize = rd32(p + 20), usize = rd32(p + 24), lho = rd32(p + 42);
    if (zip64_extra(p + CENTRAL_LEN + nlen, xlen, &usize, &csize, &lho)) {
        da_errf(err, errlen, "%s: zip entry '%.200s' has a damaged zip64 extra field", label, e->name);
        return -1;
    }
    /* the local header repeats name and extra field (with its own lengths) before the data */
    if (lho > size || size - lho < LOCAL_LEN || rd32(buf + lho) != SIG_LOCAL) {
        da_errf(err, errlen, "%s: zip entry '%.200s': local header at %llu is missing (truncated or corrupt)",
                label, e->name, (unsigned long long)lho);
        return -1;
    }
    uint64_t data = lho + LOCAL_LEN + rd16(buf + lho + 26) + rd16(buf + lho + 28);
    if (data > size || csize > size - data) {
        da_errf(err, errlen, "%s: zip entry '%.200s' (%llu bytes at %llu) runs past the end of the %zu-byte "
                "archive (truncated?)", label, e->name, (unsigned long long)csize, (unsigned long long)data, size);
        return -1;
    }
    e->offset = (size_t)data;
    e->size = (size_t)csize;
    e->uncompressed = usize > SIZE_MAX ? SIZE_MAX : (size_t)usize;
    *used = (size_t)CENTRAL_LEN + nlen + xlen + clen;
    return 0;
}

int da_zip_open(const unsigned char *buf, size_t size, da_zip *z, const char *label, char *err, size_t errlen) {
    memset(z, 0, sizeof *z);
    uint64_t cd_off, cd_size, count;
    if (read_eocd(buf, size, label, &cd_off, &cd_size, &count, err, errlen)) return -1;
    z->entries = calloc(count ? (size_t)count : 1, sizeof *z->entries);
    if (!z->entries) { da_errf(err, errlen, "%s: out of memory", label); return -1; }
    const unsigned char *p = buf + cd_off;
    size_t avail = (size_t)cd_size;
    for (uint64_t i = 0; i < count; i++) {
        size_t used = 0;
        int rc = read_central(buf, size, p, avail, &z->entries[i], &used, label, (int)i, err, errlen);
        z->n = (int)i + 1;                     /* so that da_zip_free frees the name */
        if (rc) goto fail;
        p += used;
        avail -= used;
    }
    if (z->n > 1) {
        const da_zip_entry **sorted = malloc(sizeof *sorted * (size_t)z->n);
        if (!sorted) { da_errf(err, errlen, "%s: out of memory", label); goto fail; }
        for (int i = 0; i < z->n; i++) sorted[i] = &z->entries[i];
        qsort(sorted, (size_t)z->n, sizeof *sorted, cmp_entry_names);
        for (int i = 1; i < z->n; i++)
            if (!strcmp(sorted[i]->name, sorted[i - 1]->name)) {
                da_errf(err, errlen, "%s: zip entry '%.200s' appears twice", label, sorted[i]->name);
                free(sorted);
                goto fail;
            }
        free(sorted);
    }
    return 0;
fail:
    da_zip_free(z);
    return -1;
}

const da_zip_entry *da_zip_find(const da_zip *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->entries[i].name, name)) return &z->entries[i];
    return NULL;
}

int da_zip_check_stored(const unsigned char *buf, const da_zip_entry *e, const char *label,
                        int verify_crc, char *err, size_t errlen) {
    if (e->method != 0 || e->size != e->uncompressed) {
        da_errf(err, errlen, "%s: zip entry '%.200s' is compressed (method %d); torch.save stores entries "
                "uncompressed, so the archive was repacked: unzip it and zip it again with `zip -0`",
                label, e->name, e->method);
        return -1;
    }
    if (!verify_crc) return 0;
    /* crc32() takes a uInt length: feed it in 1 GiB pieces */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t done = 0; done < e->size;) {
        size_t n = e->size - done > (1u << 30) ? (1u << 30) : e->size - done;
        crc = crc32(crc, buf + e->offset + done, (uInt)n);
        done += n;
    }
    if ((uint32_t)crc != e->crc32) {
        da_errf(err, errlen, "%s: zip entry '%.200s' fails its CRC-32 check (stored %08x, computed %08x): "
                "the file is corrupt", label, e->name, (unsigned)e->crc32, (unsigned)crc);
        return -1;
    }
    return 0;
}
