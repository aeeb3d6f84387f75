/* Shared body of the native format rows (src/fmt_gemma_scope.c, ...):
 * each row passes its own name. See format.h for the contract. */
#ifndef SAEVAL_NATIVEROW_H
#define SAEVAL_NATIVEROW_H
#include <stdio.h>
#include "saeval/format.h"

int sv_nrow_probe(const char *format, const char *path);
sv_rc sv_nrow_config(const char *format, const char *path, sv_sae_cfg *c);
sv_rc sv_nrow_load(const char *format, sv_sae *s, const char *path, int has_scale, double scale);
sv_rc sv_nrow_identity(const char *format, const char *path, sv_ident_visit visit, void *ctx);
sv_rc sv_nrow_describe(const char *format, const char *path, FILE *out);

#endif
