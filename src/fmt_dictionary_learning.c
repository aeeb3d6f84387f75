/* Format row: dictionary_learning: DIR/ae.pt + DIR/config.json (trainer.dict_class) (reader: nativesae.c). */
#include "saeval/format.h"
#include "saeval/nativerow.h"

static int probe(const char *p) { return sv_nrow_probe("dictionary_learning", p); }
static sv_rc config(const char *p, sv_sae_cfg *c) { return sv_nrow_config("dictionary_learning", p, c); }
static sv_rc load(sv_sae *s, const char *p, int has_scale, double scale) { return sv_nrow_load("dictionary_learning", s, p, has_scale, scale); }
static sv_rc identity(const char *p, sv_ident_visit v, void *ctx) { return sv_nrow_identity("dictionary_learning", p, v, ctx); }
static sv_rc describe(const char *p, FILE *out) { return sv_nrow_describe("dictionary_learning", p, out); }

const sv_format sv_fmt_dictionary_learning = {"dictionary_learning", probe, config, load, identity, describe};
