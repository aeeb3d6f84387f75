/* Format row: Gemma Scope: DIR/params.npz or the .npz itself (reader: nativesae.c). */
#include "saeval/format.h"
#include "saeval/nativerow.h"

static int probe(const char *p) { return sv_nrow_probe("gemma_scope", p); }
static sv_rc config(const char *p, sv_sae_cfg *c) { return sv_nrow_config("gemma_scope", p, c); }
static sv_rc load(sv_sae *s, const char *p, int has_scale, double scale) { return sv_nrow_load("gemma_scope", s, p, has_scale, scale); }
static sv_rc identity(const char *p, sv_ident_visit v, void *ctx) { return sv_nrow_identity("gemma_scope", p, v, ctx); }
static sv_rc describe(const char *p, FILE *out) { return sv_nrow_describe("gemma_scope", p, out); }

const sv_format sv_fmt_gemma_scope = {"gemma_scope", probe, config, load, identity, describe};
