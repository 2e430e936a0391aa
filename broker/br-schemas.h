/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-c/json.h>

#include "cm-error.h"

typedef struct CmSchema CmSchema;

/**
 * br_schemas_init:
 * Compiles every schema carried in the binary (the files in schemas/). Idempotent, not thread-safe:
 * call once before serving.
 * Returns: 0, or a negative errno with @err naming the schema that does not compile.
 */
int br_schemas_init(CmError *err);

/** br_schemas_free: releases the compiled schemas. */
void br_schemas_free(void);

/** br_schema_get: Returns: the compiled schema named @name (file name without .json), or NULL. */
const CmSchema *br_schema_get(const char *name);

/**
 * br_schema_check:
 * Validates @doc against schema @name.
 * Returns: 0, or a negative errno with @err naming the field and the rule.
 */
int br_schema_check(const char *name, json_object *doc, CmError *err);
