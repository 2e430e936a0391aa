/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "cm-crypto.h"

struct CmSha256 {
    gnutls_hash_hd_t hd;
};

void cm_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = 0;
}

int cm_sha256_hex(const void *data, size_t len, char out[CM_SHA256_HEX_LEN + 1])
{
    uint8_t digest[CM_SHA256_LEN];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) < 0)
        return -EIO;
    cm_hex(digest, sizeof(digest), out);
    return 0;
}

int cm_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                       char out[CM_SHA256_HEX_LEN + 1])
{
    uint8_t digest[CM_SHA256_LEN];
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, len, digest) < 0)
        return -EIO;
    cm_hex(digest, sizeof(digest), out);
    return 0;
}

int cm_random(void *buf, size_t len)
{
    return gnutls_rnd(GNUTLS_RND_KEY, buf, len) < 0 ? -EIO : 0;
}

int cm_token_new(char out[CM_TOKEN_LEN + 1])
{
    return cm_token_new_prefixed(CM_TOKEN_PREFIX, out);
}

int cm_token_new_prefixed(const char *prefix, char out[CM_TOKEN_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[33]; /* 256 bits, padded to a multiple of 3 bytes for base64 */
    char *p = out;

    if (cm_random(raw, 32) < 0)
        return -EIO;
    raw[32] = 0;
    if (strlen(prefix) != 4)
        return -EINVAL;
    memcpy(p, prefix, 4);
    p += 4;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *p++ = alphabet[(v >> 18) & 63];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = alphabet[(v >> 6) & 63];
        *p++ = alphabet[v & 63];
    }
    /* 44 characters were written; the last one carries only padding bits. */
    out[CM_TOKEN_LEN] = 0;
    memset(raw, 0, sizeof(raw));
    return 0;
}

int cm_token_hash(const char *token, char out[CM_SHA256_HEX_LEN + 1])
{
    /* The token holds 256 random bits, so a plain SHA-256 is enough to store it safely. */
    return cm_sha256_hex(token, strlen(token), out);
}

CmSha256 *cm_sha256_new(void)
{
    CmSha256 *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (gnutls_hash_init(&h->hd, GNUTLS_DIG_SHA256) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

int cm_sha256_update(CmSha256 *h, const void *data, size_t len)
{
    return gnutls_hash(h->hd, data, len) < 0 ? -EIO : 0;
}

int cm_sha256_finish(CmSha256 *h, char out[CM_SHA256_HEX_LEN + 1])
{
    uint8_t digest[CM_SHA256_LEN];
    gnutls_hash_deinit(h->hd, digest);
    h->hd = NULL;
    free(h);
    cm_hex(digest, sizeof(digest), out);
    return 0;
}

CmSha256 *cm_sha256_free(CmSha256 *h)
{
    if (!h)
        return NULL;
    if (h->hd)
        gnutls_hash_deinit(h->hd, NULL);
    free(h);
    return NULL;
}

int cm_memeq_const(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= x[i] ^ y[i];
    return acc == 0;
}
