/* Format row: openai/sparse_autoencoder: one FILE.pt per layer (reader: nativesae.c). */
#include "saeval/format.h"
#include "saeval/nativerow.h"

static int probe(const char *p) { return sv_nrow_probe("openai", p); }
static sv_rc config(const char *p, sv_sae_cfg *c) { return sv_nrow_config("openai", p, c); }
static sv_rc load(sv_sae *s, const char *p, int has_scale, double scale) { return sv_nrow_load("openai", s, p, has_scale, scale); }
static sv_rc identity(const char *p, sv_ident_visit v, void *ctx) { return sv_nrow_identity("openai", p, v, ctx); }
static sv_rc describe(const char *p, FILE *out) { return sv_nrow_describe("openai", p, out); }

const sv_format sv_fmt_openai = {"openai", probe, config, load, identity, describe};
