/* atomic.c — temp-file + fsync + rename writes (see atomic.h). */
#include "io/atomic.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int da_atomic_open(da_atomic_file *a, const char *path, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->final_path) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    snprintf(a->final_path, sizeof a->final_path, "%s", path);
    snprintf(a->tmp_path, sizeof a->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp_path, "wb");
    if (!a->f) {
        snprintf(err, errlen, "cannot create %s: %s", a->tmp_path, strerror(errno));
        return -1;
    }
    return 0;
}

int da_atomic_commit(da_atomic_file *a, char *err, size_t errlen) {
    int failed = ferror(a->f);
    int saved = errno;
    if (!failed && fflush(a->f) != 0) { failed = 1; saved = errno; }
    if (!failed && fsync(fileno(a->f)) != 0 && errno != EINVAL) { failed = 1; saved = errno; }
    if (fclose(a->f) != 0 && !failed) { failed = 1; saved = errno; }
    a->f = NULL;
    if (failed) {
        snprintf(err, errlen, "writing %s failed: %s", a->final_path, strerror(saved ? saved : EIO));
        unlink(a->tmp_path);
        return -1;
    }
    if (rename(a->tmp_path, a->final_path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", a->tmp_path, a->final_path, strerror(errno));
        unlink(a->tmp_path);
        return -1;
    }
    return 0;
}

void da_atomic_abort(da_atomic_file *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    unlink(a->tmp_path);
}

int da_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen) {
    da_atomic_file a;
    if (da_atomic_open(&a, path, err, errlen) != 0) return -1;
    if (size && fwrite(data, 1, size, a.f) != size) {
        snprintf(err, errlen, "writing %s failed: %s", path, strerror(errno));
        da_atomic_abort(&a);
        return -1;
    }
    return da_atomic_commit(&a, err, errlen);
}

int da_mkdirs(const char *path, char *err, size_t errlen) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == 0) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", path);
        return -1;
    }
    return 0;
}
