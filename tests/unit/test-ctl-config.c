/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_config_resolve(): flags over environment over config file, and the token file rules. */
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

#include "ctl-config.h"
#include "cm-util.h"

static char dir[] = "/tmp/test-ctl-config-XXXXXX";

static char *put(const char *name, const char *content, mode_t mode)
{
    char *path = cm_strdup_printf("%s/%s", dir, name);
    FILE *f;
    assert_non_null(path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    /* Only the files this test made, by name. */
    const char *names[] = {"t1",
                           "t2",
                           "t3",
                           "exposed",
                           "spaced",
                           "empty",
                           "big",
                           "ctl.json",
                           "bad.json",
                           "extra.json",
                           "array.json",
                           "badurl.json",
                           "cloudbroker/ctl.json",
                           "cloudbroker"};
    for (size_t i = 0; i < ELEMENTSOF(names); i++) {
        char *p = cm_strdup_printf("%s/%s", dir, names[i]);
        if (p && unlink(p) < 0)
            rmdir(p);
        free(p);
    }
    rmdir(dir);
    return 0;
}

static void test_defaults(void **state)
{
    CtlConfigSources src = {0};
    CtlConfig c = {0};
    CmError err = {0};

    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, CTL_DEFAULT_URL);
    assert_null(c.token);
    assert_null(c.cacert);
    assert_null(c.config_path);
    assert_int_equal(c.timeout_s, CTL_DEFAULT_TIMEOUT_S);
    ctl_config_clear(&c);
}

static void test_precedence(void **state)
{
    _cleanup_free_ char *t1 = put("t1", "cbt_from_file_one\n", 0600);
    _cleanup_free_ char *t2 = put("t2", "  cbt_from_env_file \r\n\n", 0600);
    _cleanup_free_ char *t3 = put("t3", "cbt_from_config", 0600);
    _cleanup_free_ char *conf = put("ctl.json",
                                    "{\"url\": \"https://broker.example:8443/\", "
                                    "\"token_file\": \"t3\", \"cacert\": \"/etc/ca.pem\"}",
                                    0600);
    CtlConfigSources src = {.config_file = conf};
    CtlConfig c = {0};
    CmError err = {0};

    assert_non_null(t3); /* named in ctl.json as "t3" */
    /* The file alone; its relative token_file is next to it. */
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, "https://broker.example:8443/");
    assert_string_equal(c.token, "cbt_from_config");
    assert_string_equal(c.cacert, "/etc/ca.pem");
    assert_string_equal(c.config_path, conf);
    ctl_config_clear(&c);

    /* The environment beats the file; CLOUDBROKER_TOKEN beats CLOUDBROKER_TOKEN_FILE. */
    src.env_url = "http://10.0.0.1:8470";
    src.env_token_file = t2;
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, "http://10.0.0.1:8470");
    assert_string_equal(c.token, "cbt_from_env_file");
    ctl_config_clear(&c);
    src.env_token = "cbt_from_env";
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.token, "cbt_from_env");
    assert_string_equal(c.token_origin, "CLOUDBROKER_TOKEN");
    ctl_config_clear(&c);

    /* Flags beat both. */
    src.url = "http://127.0.0.1:9000";
    src.token_file = t1;
    src.cacert = "/flag/ca.pem";
    src.timeout = "5";
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, "http://127.0.0.1:9000");
    assert_string_equal(c.token, "cbt_from_file_one");
    assert_non_null(strstr(c.token_origin, "--token-file"));
    assert_string_equal(c.cacert, "/flag/ca.pem");
    assert_int_equal(c.timeout_s, 5);
    ctl_config_clear(&c);
    src.token_file = NULL;
    src.token = "cbt_flag";
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.token, "cbt_flag");
    ctl_config_clear(&c);

    /* An empty variable counts as unset. */
    src = (CtlConfigSources){.env_url = "", .env_token = "", .config_file = conf};
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, "https://broker.example:8443/");
    assert_string_equal(c.token, "cbt_from_config");
    ctl_config_clear(&c);
}

static void test_default_file(void **state)
{
    _cleanup_free_ char *sub = cm_strdup_printf("%s/cloudbroker", dir);
    _cleanup_free_ char *conf = NULL;
    CtlConfigSources src = {.xdg_config_home = dir, .home = "/nonexistent"};
    CtlConfig c = {0};
    CmError err = {0};

    /* Absent: fine, defaults. */
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, CTL_DEFAULT_URL);
    assert_null(c.config_path);
    ctl_config_clear(&c);

    mkdir(sub, 0700);
    conf = put("cloudbroker/ctl.json", "{\"url\": \"http://192.0.2.1:1\"}", 0600);
    assert_int_equal(ctl_config_resolve(&src, &c, &err), 0);
    assert_string_equal(c.url, "http://192.0.2.1:1");
    assert_string_equal(c.config_path, conf);
    ctl_config_clear(&c);

    /* A named file must exist. */
    src.config_file = "/nonexistent/ctl.json";
    assert_true(ctl_config_resolve(&src, &c, &err) < 0);
    assert_int_equal(err.kind, CM_ERROR_UNPROCESSABLE);
}

static void refused(const CtlConfigSources *src, CmErrorKind kind, const char *want)
{
    CtlConfig c = {0};
    CmError err = {0};

    assert_true(ctl_config_resolve(src, &c, &err) < 0);
    assert_int_equal(err.kind, kind);
    if (!strstr(err.message, want))
        fail_msg("message '%s' does not contain '%s'", err.message, want);
    assert_null(c.url);
}

static void test_refusals(void **state)
{
    _cleanup_free_ char *spaced = put("spaced", "cbt_a b\n", 0600);
    _cleanup_free_ char *empty = put("empty", "\n", 0600);
    _cleanup_free_ char *bad = put("bad.json", "{\"url\": ", 0600);
    _cleanup_free_ char *extra =
        put("extra.json", "{\"url\": \"http://a\", \"tokn\": \"x\"}", 0600);
    _cleanup_free_ char *array = put("array.json", "[]", 0600);
    _cleanup_free_ char *badurl = put("badurl.json", "{\"url\": \"gopher://x\"}", 0600);
    char big_content[CTL_TOKEN_FILE_MAX + 10];
    memset(big_content, 'a', sizeof(big_content) - 1);
    big_content[sizeof(big_content) - 1] = 0;
    _cleanup_free_ char *big = put("big", big_content, 0600);

    refused(&(CtlConfigSources){.token = "a", .token_file = spaced}, CM_ERROR_INVALID,
            "cannot both be given");
    refused(&(CtlConfigSources){.token = "has space"}, CM_ERROR_INVALID, "--token");
    refused(&(CtlConfigSources){.token = "new\nline"}, CM_ERROR_INVALID, "--token");
    refused(&(CtlConfigSources){.token_file = spaced}, CM_ERROR_INVALID, "does not hold a token");
    refused(&(CtlConfigSources){.token_file = empty}, CM_ERROR_INVALID, "does not hold a token");
    refused(&(CtlConfigSources){.token_file = big}, CM_ERROR_INVALID, "larger than");
    refused(&(CtlConfigSources){.token_file = "/nonexistent"}, CM_ERROR_INVALID, "cannot read");
    refused(&(CtlConfigSources){.env_token_file = "/nonexistent"}, CM_ERROR_UNPROCESSABLE,
            "cannot read");
    refused(&(CtlConfigSources){.env_token = "a\x01"}, CM_ERROR_UNPROCESSABLE, "CLOUDBROKER_TOKEN");
    refused(&(CtlConfigSources){.config_file = bad}, CM_ERROR_UNPROCESSABLE, "bad.json");
    refused(&(CtlConfigSources){.config_file = extra}, CM_ERROR_UNPROCESSABLE,
            "unknown setting 'tokn'");
    refused(&(CtlConfigSources){.config_file = array}, CM_ERROR_UNPROCESSABLE, "JSON object");
    refused(&(CtlConfigSources){.config_file = badurl}, CM_ERROR_UNPROCESSABLE,
            "only http and https");
    refused(&(CtlConfigSources){.url = "ftp://x"}, CM_ERROR_INVALID, "--url");
    refused(&(CtlConfigSources){.env_url = "not a url"}, CM_ERROR_UNPROCESSABLE, "CLOUDBROKER_URL");
    refused(&(CtlConfigSources){.timeout = "0"}, CM_ERROR_INVALID, "--timeout");
    refused(&(CtlConfigSources){.timeout = "10s"}, CM_ERROR_INVALID, "--timeout");
}

static void test_exposed_token_file(void **state)
{
    _cleanup_free_ char *p = put("exposed", "cbt_x\n", 0644);
    char *token = NULL;
    bool exposed = false;
    CmError err = {0};

    assert_int_equal(ctl_config_read_token_file(p, &token, &exposed, &err), 0);
    assert_string_equal(token, "cbt_x");
    assert_true(exposed);
    free(token);
    chmod(p, 0600);
    assert_int_equal(ctl_config_read_token_file(p, &token, &exposed, &err), 0);
    assert_false(exposed);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_default_file),       cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_exposed_token_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
