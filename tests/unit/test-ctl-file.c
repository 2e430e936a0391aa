/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-file: output files that appear complete or not at all. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl-file.h"
#include "cm-util.h"

static char dir[] = "/tmp/test-ctl-file-XXXXXX";

static int setup(void **state)
{
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *p = cm_strdup_printf("%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
        free(p);
    }
    if (d)
        closedir(d);
    return rmdir(dir);
}

/* How many entries the folder holds (temporary files included). */
static int entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cm_read_file(path, 1 << 20, &text, &len), 0);
    return text;
}

static void test_commit(void **state)
{
    char *path = cm_strdup_printf("%s/report.html", dir), *text;
    CtlAtomicFile f = CTL_ATOMIC_FILE_INIT;
    struct stat st;
    mode_t mask = umask(022);

    assert_int_equal(ctl_atomic_open(&f, path, 0666), 0);
    assert_true(f.fd >= 0);
    assert_non_null(f.tmp);
    assert_true(strncmp(f.tmp, path, strlen(path)) == 0 && strstr(f.tmp, ".part-"));
    /* Until the commit, the target does not exist; the temporary file does. */
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(ctl_atomic_write(&f, "<html>", 6), 0);
    assert_int_equal(ctl_atomic_write(&f, "</html>\n", 8), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(entries(), 1);
    assert_int_equal(ctl_atomic_commit(&f), 0);
    assert_int_equal(f.fd, -1);
    assert_null(f.tmp);
    text = slurp(path);
    assert_string_equal(text, "<html></html>\n");
    free(text);
    /* The mode of a plain create under the umask, not mkostemp's 0600. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(entries(), 1);
    umask(mask);
    unlink(path);
    free(path);
}

static void test_abort_keeps_old(void **state)
{
    char *path = cm_strdup_printf("%s/keep.csv", dir), *text;
    CtlAtomicFile f = CTL_ATOMIC_FILE_INIT;
    FILE *old = fopen(path, "w");

    assert_non_null(old);
    fputs("old\n", old);
    fclose(old);
    assert_int_equal(ctl_atomic_open(&f, path, 0666), 0);
    assert_int_equal(ctl_atomic_write(&f, "half a rep", 10), 0);
    assert_int_equal(entries(), 2);
    ctl_atomic_abort(&f);
    /* The old file as it was, and no temporary file left. */
    text = slurp(path);
    assert_string_equal(text, "old\n");
    free(text);
    assert_int_equal(entries(), 1);
    assert_int_equal(f.fd, -1);
    assert_null(f.tmp);
    assert_null(f.path);
    /* Aborting twice (or what was never opened) is harmless; so is writing to it: refused. */
    ctl_atomic_abort(&f);
    assert_int_equal(ctl_atomic_write(&f, "x", 1), -EBADF);
    assert_int_equal(ctl_atomic_commit(&f), -EBADF);

    /* A commit replaces the old file. */
    assert_int_equal(ctl_atomic_open(&f, path, 0600), 0);
    assert_int_equal(ctl_atomic_write(&f, "new\n", 4), 0);
    assert_int_equal(ctl_atomic_commit(&f), 0);
    text = slurp(path);
    assert_string_equal(text, "new\n");
    free(text);
    assert_int_equal(entries(), 1);
    unlink(path);
    free(path);
}

static void test_open_fails(void **state)
{
    char *path = cm_strdup_printf("%s/no-such-folder/r.html", dir);
    CtlAtomicFile f = CTL_ATOMIC_FILE_INIT;

    assert_int_equal(ctl_atomic_open(&f, path, 0666), -ENOENT);
    assert_int_equal(f.fd, -1);
    assert_null(f.tmp);
    free(path);
}

static void test_commit_fails(void **state)
{
    char *path = cm_strdup_printf("%s/target", dir), *inner = NULL;
    CtlAtomicFile f = CTL_ATOMIC_FILE_INIT;

    /* The target is a non-empty folder: the rename fails, and the temporary file goes. */
    assert_int_equal(mkdir(path, 0755), 0);
    inner = cm_strdup_printf("%s/x", path);
    fclose(fopen(inner, "w"));
    assert_int_equal(ctl_atomic_open(&f, path, 0666), 0);
    assert_int_equal(ctl_atomic_write(&f, "data", 4), 0);
    assert_true(ctl_atomic_commit(&f) < 0);
    assert_null(f.tmp);
    assert_int_equal(entries(), 1);
    unlink(inner);
    rmdir(path);
    free(inner);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit),
        cmocka_unit_test(test_abort_keeps_old),
        cmocka_unit_test(test_open_fails),
        cmocka_unit_test(test_commit_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
