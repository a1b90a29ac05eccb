/* atomic.c — exclusive temporaries + fsync + rename writes, and the removal of our own stale
 * temporaries (see atomic.h). */
#include "util/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define TMP_RANDOM 6
static const char TMP_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int da_tmp_create(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen) {
    if (!path[0]) {
        snprintf(err, errlen, "the output path is empty");
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char r[TMP_RANDOM];
        /* the name must not be guessable: another user could plant a link there first */
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            snprintf(err, errlen, "cannot draw a random temporary name for %s: %s", path, strerror(errno));
            return -1;
        }
        char sfx[TMP_RANDOM + 1];
        for (int i = 0; i < TMP_RANDOM; i++) sfx[i] = TMP_CHARS[r[i] % (sizeof TMP_CHARS - 1)];
        sfx[TMP_RANDOM] = 0;
        if (snprintf(tmp, tmplen, "%s" DA_TMP_TAG "%ld.%s", path, (long)getpid(), sfx) >= (int)tmplen) {
            snprintf(err, errlen, "%s: path too long", path);
            return -1;
        }
        /* O_EXCL|O_NOFOLLOW: never open an existing file or follow a link planted at the name */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) return fd;
        if (errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
            return -1;
        }
    }
    snprintf(err, errlen, "cannot create a temporary file beside %s: 100 names were taken", path);
    return -1;
}

bool da_tmp_parse(const char *name, long *pid) {
    /* <final name>.da-tmp.<pid>.<6 of TMP_CHARS>, with the pattern anchored at the end */
    size_t n = strlen(name);
    if (n < TMP_RANDOM + 2) return false;
    const char *sfx = name + n - TMP_RANDOM;
    if (strspn(sfx, TMP_CHARS) != TMP_RANDOM || sfx[-1] != '.') return false;
    const char *d = sfx - 1;   /* the dot before the random part */
    const char *p = d;
    while (p > name && p[-1] >= '0' && p[-1] <= '9') p--;
    size_t tag = strlen(DA_TMP_TAG);
    if (p == d || (size_t)(p - name) <= tag || strncmp(p - tag, DA_TMP_TAG, tag)) return false;
    long v = strtol(p, NULL, 10);
    if (v <= 0) return false;
    if (pid) *pid = v;
    return true;
}

int da_remove_stale_tmp(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t blen = base ? strlen(base) : 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        if (!da_tmp_parse(e->d_name, &pid)) continue;
        if (base && (strncmp(e->d_name, base, blen) || strncmp(e->d_name + blen, DA_TMP_TAG, strlen(DA_TMP_TAG))))
            continue;
        if (pid == (long)getpid()) continue;
        /* a writer that still runs (or that we may not signal) keeps its file */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[4400];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) continue;
        if (unlink(path) == 0) {
            fprintf(stderr, "removed %s (left by an interrupted run)\n", path);
            removed++;
        }
    }
    closedir(d);
    return removed;
}

int da_remove_stale_tmp_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) return da_remove_stale_tmp(".", path);
    if (slash == path) return da_remove_stale_tmp("/", path + 1);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return da_remove_stale_tmp(dir, slash + 1);
}

int da_atomic_open(da_atomic_file *a, const char *path, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->final_path) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    snprintf(a->final_path, sizeof a->final_path, "%s", path);
    int fd = da_tmp_create(path, a->tmp_path, sizeof a->tmp_path, err, errlen);
    if (fd < 0) return -1;
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        snprintf(err, errlen, "cannot open %s: %s", a->tmp_path, strerror(errno));
        close(fd);
        unlink(a->tmp_path);
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
