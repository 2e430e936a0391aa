/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cm-error.h"

/*
 * Account passwords: argon2id hashes from libsodium (crypto_pwhash_str, the interactive
 * limits), and the minimum strength a new password must have. The plain text is never stored
 * or logged; callers wipe their copies.
 */

/* Longer passwords are refused: hashing cost must not be the client's to choose. */
#define BR_PASSWORD_MAX_BYTES 1024
/* crypto_pwhash_STRBYTES: a stored hash with its parameters, NUL-terminated. */
#define BR_PASSWORD_HASH_LEN 128

/**
 * br_password_init:
 * Initializes libsodium and computes the hash that sign-ins of unknown accounts are checked
 * against, so that they take as long as those of real ones. Call once before any other.
 * Returns: 0, or -EIO.
 */
int br_password_init(void);

/**
 * br_password_check_strength:
 * The minimum strength: at least 10 characters, not the account's @name (in any case), and
 * three of the four classes lower case, upper case, digit, other — or at least 16 characters.
 * Returns: 0, or -EINVAL with @err 422 weak_password naming @field and the rule broken.
 */
int br_password_check_strength(const char *name, const char *password, const char *field,
                               CmError *err);

/**
 * br_password_hash:
 * Hashes @password with argon2id into @out.
 * Returns: 0, or -ENOMEM when the memory for the hash could not be had.
 */
int br_password_hash(const char *password, char out[BR_PASSWORD_HASH_LEN]);

/**
 * br_password_verify:
 * Checks @password against @stored; a NULL or empty @stored is checked against a dummy hash
 * (the same work) and never matches.
 * Returns: true when it matches.
 */
bool br_password_verify(const char *stored, const char *password);

/** br_password_needs_rehash: Returns: true when @stored was made with weaker parameters. */
bool br_password_needs_rehash(const char *stored);
