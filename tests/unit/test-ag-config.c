/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's settings checks (ag-config.c): where it may send its token in clear; the slow
 * interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ag-config.h"

static char token_path[] = "/tmp/cb-ag-config-XXXXXX";

static int setup(void **state)
{
    int fd = mkstemp(token_path);
    (void)state;
    if (fd < 0 || write(fd, "cba_x\n", 6) != 6)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(token_path);
    return 0;
}

/* Checks @url as the broker URL of an otherwise valid config; returns ag_config_check's. */
static int check_url(const char *url, CmError *err)
{
    AgConfig c;
    int r;
    ag_config_init_defaults(&c);
    c.broker = strdup(url);
    c.token_file = strdup(token_path);
    c.spool = strdup("/tmp/unused-spool.db");
    r = ag_config_check(&c, err);
    ag_config_clear(&c);
    return r;
}

static void test_http_is_allowed_to_loopback_only(void **state)
{
    static const char *const ok[] = {
        "http://127.0.0.1:8470",   "http://127.1.2.3:8470/", "http://localhost:8470/",
        "http://localhost",        "http://[::1]:8470",      "HTTP://LOCALHOST:1/",
        "https://broker.example/", "https://10.0.0.1:8470/",
    };
    /* Prefix look-alikes, a user part before the real host, other hosts. */
    static const char *const refused[] = {
        "http://127.attacker.example/",
        "http://127.0.0.1.nip.io:8080/",
        "http://localhost:8080@broker.example/",
        "http://127.0.0.1@broker.example/",
        "http://localhost.example/",
        "http://10.0.0.1/",
        "http://[::2]:8470/",
        "http://user@localhost:8470/",
        "ftp://127.0.0.1/",
        "127.0.0.1:8470",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CmError err = {0};
        if (check_url(ok[i], &err) != 0)
            fail_msg("%s refused: %s", ok[i], err.message);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CmError err = {0};
        if (check_url(refused[i], &err) >= 0)
            fail_msg("%s accepted", refused[i]);
        assert_string_equal(err.field, "broker");
    }
}

static void test_a_missing_ca_file_is_refused_at_start(void **state)
{
    AgConfig c;
    CmError err = {0};
    (void)state;
    ag_config_init_defaults(&c);
    c.broker = strdup("https://broker.example:8470");
    c.token_file = strdup(token_path);
    c.spool = strdup("/tmp/unused-spool.db");
    c.ca_file = strdup("/nonexistent/ca.pem");
    assert_true(ag_config_check(&c, &err) < 0);
    assert_string_equal(err.field, "ca_file");
    free(c.ca_file);
    c.ca_file = strdup(token_path); /* readable: accepted */
    assert_int_equal(ag_config_check(&c, &err), 0);
    ag_config_clear(&c);
}

static void test_the_slow_interval_fits_the_interval_and_window(void **state)
{
    AgConfig c;
    CmError err = {0};
    (void)state;
    ag_config_init_defaults(&c);
    c.broker = strdup("https://broker.example:8470");
    c.token_file = strdup(token_path);
    c.spool = strdup("/tmp/unused-spool.db");
    /* Not set: 60 s for 10 s readings in 300 s windows. */
    assert_int_equal(ag_config_check(&c, &err), 0);
    assert_int_equal(ag_config_slow_interval(&c), 60);
    /* Not set, 1 s readings in 10 s windows (the tests): the window. */
    c.interval = 1;
    c.window = 10;
    assert_int_equal(ag_config_check(&c, &err), 0);
    assert_int_equal(ag_config_slow_interval(&c), 10);
    /* Set: as set, when it fits. */
    c.slow_interval = 5;
    assert_int_equal(ag_config_check(&c, &err), 0);
    assert_int_equal(ag_config_slow_interval(&c), 5);
    c.slow_interval = 1; /* tiers off */
    assert_int_equal(ag_config_check(&c, &err), 0);
    c.slow_interval = 3; /* does not divide the window */
    assert_true(ag_config_check(&c, &err) < 0);
    assert_string_equal(err.field, "slow_interval");
    c.interval = 10;
    c.window = 300;
    c.slow_interval = 15; /* not a multiple of the interval */
    assert_true(ag_config_check(&c, &err) < 0);
    assert_string_equal(err.field, "slow_interval");
    c.slow_interval = 600; /* longer than the window */
    assert_true(ag_config_check(&c, &err) < 0);
    assert_string_equal(err.field, "slow_interval");
    ag_config_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_is_allowed_to_loopback_only),
        cmocka_unit_test(test_a_missing_ca_file_is_refused_at_start),
        cmocka_unit_test(test_the_slow_interval_fits_the_interval_and_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
