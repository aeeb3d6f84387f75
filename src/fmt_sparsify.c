/* Format row: EleutherAI sparsify: DIR/cfg.json + DIR/sae.safetensors (reader: nativesae.c). */
#include "saeval/format.h"
#include "saeval/nativerow.h"

static int probe(const char *p) { return sv_nrow_probe("sparsify", p); }
static sv_rc config(const char *p, sv_sae_cfg *c) { return sv_nrow_config("sparsify", p, c); }
static sv_rc load(sv_sae *s, const char *p, int has_scale, double scale) { return sv_nrow_load("sparsify", s, p, has_scale, scale); }
static sv_rc identity(const char *p, sv_ident_visit v, void *ctx) { return sv_nrow_identity("sparsify", p, v, ctx); }
static sv_rc describe(const char *p, FILE *out) { return sv_nrow_describe("sparsify", p, out); }

const sv_format sv_fmt_sparsify = {"sparsify", probe, config, load, identity, describe};
