/* test_atomic.c — the output writer's guarantees: temporaries created exclusively under
 * unpredictable names (a planted link is never followed), and only our own stale temporaries
 * of dead processes removed, never a user's file that looks like one. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test_util.h"
#include "tmpdir.h"
#include "util/atomic.h"
#include "util/files.h"

static char ERR[1024];

static pid_t dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static void test_parse(void) {
    long pid = 0;
    CHECK(da_tmp_parse("000004.png.da-tmp.1234.aB3xYz", &pid) && pid == 1234, "our name not recognised (%ld)", pid);
    CHECK(da_tmp_parse("m.safetensors.da-tmp.7.zzzzzz", NULL), "our name not recognised");
    CHECK(!da_tmp_parse("thesis.tmp.2024", NULL), "a user's file taken for ours");
    CHECK(!da_tmp_parse("x.da-tmp.1234", NULL), "no random part");
    CHECK(!da_tmp_parse("x.da-tmp..aB3xYz", NULL), "no pid");
    CHECK(!da_tmp_parse("x.da-tmp.12.aB3x-z", NULL), "bad random part");
    CHECK(!da_tmp_parse("x.da-tmp.12.aB3xYzq", NULL), "random part too long");
    CHECK(!da_tmp_parse(".da-tmp.12.aB3xYz", NULL), "no final name");
}

static void test_no_follow(const char *dir) {
    char path[4096], victim[4096], old_tmp[4200];
    td_path(victim, sizeof victim, dir, "victim.txt");
    td_write_text(dir, "victim.txt", "someone else's file");
    td_path(path, sizeof path, dir, "out.bin");
    /* the name the writer used to take, with a link planted at it */
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(symlink(victim, old_tmp) == 0, "symlink: %s", strerror(errno));
    CHECK(da_atomic_write(path, "new", 3, ERR, sizeof ERR) == 0, "%s", ERR);
    char *v = td_slurp(victim, NULL), *o = td_slurp(path, NULL);
    CHECK(v && !strcmp(v, "someone else's file"), "the link was followed: victim holds '%s'", v ? v : "(gone)");
    CHECK(o && !strcmp(o, "new"), "output holds '%s'", o ? o : "(missing)");
    free(v);
    free(o);

    /* the same for the safetensors writer */
    td_path(path, sizeof path, dir, "m.safetensors");
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(symlink(victim, old_tmp) == 0, "symlink: %s", strerror(errno));
    float x = 1;
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "x", 1, (const int64_t[]){1}, &x);
    CHECK(st_writer_save(w, path, ERR, sizeof ERR) == 0, "%s", ERR);
    st_writer_free(w);
    v = td_slurp(victim, NULL);
    CHECK(v && !strcmp(v, "someone else's file"), "safetensors writer followed the link: victim holds '%s'", v ? v : "(gone)");
    free(v);

    /* names differ from call to call and the files get the usual permissions */
    char a[4200], b[4200];
    int fa = da_tmp_create(path, a, sizeof a, ERR, sizeof ERR), fb = da_tmp_create(path, b, sizeof b, ERR, sizeof ERR);
    CHECK(fa >= 0 && fb >= 0 && strcmp(a, b), "two temporaries: '%s' '%s'", a, b);
    struct stat st;
    mode_t um = umask(0);
    umask(um);
    CHECK(fa >= 0 && fstat(fa, &st) == 0 && (st.st_mode & 0777) == (0666 & ~um), "mode %o", (unsigned)st.st_mode);
    if (fa >= 0) close(fa), unlink(a);
    if (fb >= 0) close(fb), unlink(b);
    CHECK(da_tmp_create("", a, sizeof a, ERR, sizeof ERR) == -1 && strstr(ERR, "empty"), "empty path: %s", ERR);
    CHECK(da_mkdirs("", ERR, sizeof ERR) == -1 && strstr(ERR, "empty"), "mkdirs of an empty name: %s", ERR);
}

static void test_stale(const char *dir) {
    char name[128], path[4096];
    pid_t dead = dead_pid();
    snprintf(name, sizeof name, "000001.png.da-tmp.%ld.Qw3rTy", (long)dead);
    td_write_text(dir, name, "half");
    char ours_dead[128];
    snprintf(ours_dead, sizeof ours_dead, "%s", name);
    char live[128], user[128], link_[128], other[128];
    snprintf(live, sizeof live, "000002.png.da-tmp.%ld.Qw3rTy", (long)getppid());
    td_write_text(dir, live, "being written");
    snprintf(user, sizeof user, "thesis.tmp.%ld", (long)dead);
    td_write_text(dir, user, "my thesis");
    snprintf(link_, sizeof link_, "000003.png.da-tmp.%ld.Qw3rTy", (long)dead);
    CHECK(symlink("/etc/hostname", td_path(path, sizeof path, dir, link_)) == 0, "symlink");
    snprintf(other, sizeof other, "ck.safetensors.da-tmp.%ld.Qw3rTy", (long)dead);
    td_write_text(dir, other, "checkpoint");

    /* only the checkpoint's own temporaries */
    CHECK(da_remove_stale_tmp(dir, "ck.safetensors") == 1, "base filter");
    CHECK(access(td_path(path, sizeof path, dir, other), F_OK) != 0, "%s kept", other);
    CHECK(access(td_path(path, sizeof path, dir, ours_dead), F_OK) == 0, "%s removed by the base filter", ours_dead);

    CHECK(da_remove_stale_tmp(dir, NULL) == 1, "one stale temporary");
    CHECK(access(td_path(path, sizeof path, dir, ours_dead), F_OK) != 0, "%s kept", ours_dead);
    CHECK(access(td_path(path, sizeof path, dir, live), F_OK) == 0, "a running writer's %s removed", live);
    CHECK(access(td_path(path, sizeof path, dir, user), F_OK) == 0, "the user's %s removed", user);
    struct stat st;
    CHECK(lstat(td_path(path, sizeof path, dir, link_), &st) == 0, "a link named like ours removed");
}

int main(void) {
    char dir[4096];
    td_make(dir, sizeof dir, "atomic");
    test_parse();
    test_no_follow(dir);
    char sub[4096];
    td_path(sub, sizeof sub, dir, "stale");
    mkdir(sub, 0755);
    test_stale(sub);
    td_remove(dir);
    return tu_finish("test_atomic");
}
