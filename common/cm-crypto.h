/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cm-cleanup.h"

#define CM_SHA256_LEN 32
#define CM_SHA256_HEX_LEN 64
/* A bearer token: a prefix and 256 random bits in base64url. */
#define CM_TOKEN_PREFIX "cbt_"       /* an account's token */
#define CM_AGENT_TOKEN_PREFIX "cba_" /* a host agent's token */
#define CM_TOKEN_LEN (4 + 43)

/** cm_hex: writes 2*@len lowercase hex digits and a NUL into @out. */
void cm_hex(const uint8_t *data, size_t len, char *out);

/** cm_sha256_hex: hashes @len bytes into 64 hex digits + NUL in @out. Returns: 0 or -EIO. */
int cm_sha256_hex(const void *data, size_t len, char out[CM_SHA256_HEX_LEN + 1]);

/** cm_hmac_sha256_hex: keyed hash of @len bytes. Returns: 0 or -EIO. */
int cm_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                       char out[CM_SHA256_HEX_LEN + 1]);

/** cm_random: fills @buf with @len bytes from the key-grade generator. Returns: 0 or -EIO. */
int cm_random(void *buf, size_t len);

/**
 * cm_token_new:
 * Makes a bearer token (CM_TOKEN_PREFIX + 256 random bits, base64url) into @out.
 * Returns: 0 or -EIO.
 */
int cm_token_new(char out[CM_TOKEN_LEN + 1]);

/** cm_token_new_prefixed: as cm_token_new() with a 4-character @prefix. Returns: 0 or -EIO. */
int cm_token_new_prefixed(const char *prefix, char out[CM_TOKEN_LEN + 1]);

/** cm_token_hash: the stored form of a token (hex SHA-256). Returns: 0 or -EIO. */
int cm_token_hash(const char *token, char out[CM_SHA256_HEX_LEN + 1]);

/* Incremental SHA-256 for streamed uploads. */
typedef struct CmSha256 CmSha256;
CmSha256 *cm_sha256_new(void);
int cm_sha256_update(CmSha256 *h, const void *data, size_t len);
/** cm_sha256_finish: writes the hex digest and frees @h. Returns: 0 or -EIO. */
int cm_sha256_finish(CmSha256 *h, char out[CM_SHA256_HEX_LEN + 1]);
CmSha256 *cm_sha256_free(CmSha256 *h);
CM_DEFINE_TRIVIAL_CLEANUP_FUNC(CmSha256 *, cm_sha256_free)

/** cm_memeq_const: compares in time independent of where the bytes differ. */
int cm_memeq_const(const void *a, const void *b, size_t len);
