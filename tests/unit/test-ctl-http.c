/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-http's pure parts: escaping for URLs, which URLs are accepted, cleartext warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-http.h"
#include "cm-util.h"

static void test_escape(void **state)
{
    const char *cases[][2] = {
        {"plan.pdf", "plan.pdf"},
        {"a b&c=d?e#f/g\\h", "a%20b%26c%3Dd%3Fe%23f%2Fg%5Ch"},
        {"Az09-._~", "Az09-._~"},
        {"建设方案.pdf", "%E5%BB%BA%E8%AE%BE%E6%96%B9%E6%A1%88.pdf"},
        {"%", "%25"},
        {"", ""},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char *got = ctl_http_escape(cases[i][0]);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
}

static void test_urls(void **state)
{
    const char *good[] = {"http://127.0.0.1:8470", "https://broker.gov.example",
                          "https://broker.example/prefix/", "http://[::1]:8470", "HTTPS://A.B"};
    const char *bad[] = {"",
                         "127.0.0.1:8470",
                         "ftp://host",
                         "file:///etc/passwd",
                         "http://user:pw@host",
                         "http://host/?q=1",
                         "http://host/#frag",
                         "http://",
                         "gopher://host:70"};
    CmError err = {0};

    for (size_t i = 0; i < ELEMENTSOF(good); i++)
        if (ctl_http_check_url(good[i], &err) < 0)
            fail_msg("%s refused: %s", good[i], err.message);
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        err = (CmError){0};
        if (ctl_http_check_url(bad[i], &err) == 0)
            fail_msg("%s accepted", bad[i]);
        assert_int_equal(err.kind, CM_ERROR_INVALID);
    }
}

static void test_cleartext(void **state)
{
    assert_false(ctl_http_url_is_cleartext_remote("http://127.0.0.1:8470"));
    assert_false(ctl_http_url_is_cleartext_remote("http://localhost:8470"));
    assert_false(ctl_http_url_is_cleartext_remote("http://[::1]:8470"));
    assert_false(ctl_http_url_is_cleartext_remote("https://broker.example"));
    assert_true(ctl_http_url_is_cleartext_remote("http://broker.example:8470"));
    assert_true(ctl_http_url_is_cleartext_remote("http://10.1.2.3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_cleartext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
