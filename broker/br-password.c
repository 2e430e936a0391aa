/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "br-password.h"

_Static_assert(BR_PASSWORD_HASH_LEN == crypto_pwhash_STRBYTES, "hash buffer size");

#define OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE
#define MIN_CHARS 10
#define ANY_CLASS_CHARS 16

static char dummy_hash[BR_PASSWORD_HASH_LEN];

int br_password_init(void)
{
    static const char dummy[] = "not a password anyone has: only for equal timing";

    if (sodium_init() < 0)
        return -EIO;
    if (dummy_hash[0])
        return 0;
    return br_password_hash(dummy, dummy_hash);
}

/* Counts characters, not bytes: a Chinese password of 10 characters is 10 long. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

int br_password_check_strength(const char *name, const char *password, const char *field,
                               CmError *err)
{
    size_t chars = utf8_chars(password);
    bool lower = false, upper = false, digit = false, other = false;

    if (strlen(password) > BR_PASSWORD_MAX_BYTES)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "weak_password", field,
                                 "a password is at most %d bytes long", BR_PASSWORD_MAX_BYTES);
    if (chars < MIN_CHARS)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "weak_password", field,
                                 "a password has at least %d characters", MIN_CHARS);
    if (name && strcasecmp(name, password) == 0)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "weak_password", field,
                                 "the password must not be the account's name");
    for (const char *p = password; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 'a' && ch <= 'z')
            lower = true;
        else if (ch >= 'A' && ch <= 'Z')
            upper = true;
        else if (ch >= '0' && ch <= '9')
            digit = true;
        else
            other = true;
    }
    if (chars < ANY_CLASS_CHARS && lower + upper + digit + other < 3)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "weak_password", field,
                                 "a password shorter than %d characters mixes at least three "
                                 "of lower case, upper case, digits and other characters",
                                 ANY_CLASS_CHARS);
    return 0;
}

int br_password_hash(const char *password, char out[BR_PASSWORD_HASH_LEN])
{
    if (crypto_pwhash_str(out, password, strlen(password), OPSLIMIT, MEMLIMIT) != 0)
        return -ENOMEM;
    return 0;
}

bool br_password_verify(const char *stored, const char *password)
{
    bool real = stored && *stored;
    int r = crypto_pwhash_str_verify(real ? stored : dummy_hash, password, strlen(password));
    return real && r == 0;
}

bool br_password_needs_rehash(const char *stored)
{
    return crypto_pwhash_str_needs_rehash(stored, OPSLIMIT, MEMLIMIT) != 0;
}
