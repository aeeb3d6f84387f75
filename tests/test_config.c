/* Config reader and SAE ids: defaults, validation of every key, globs,
 * relative paths; ids as shortest unique path suffixes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saeval/config.h"
#include "saeval/plan.h"

static int fails;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } } while (0)

static sv_rc parse(sv_config *c, const char *json, const char *path)
{
    return sv_config_parse(c, json, strlen(json), path);
}

/* The config must be refused with a message containing frag. */
static void bad(const char *json, const char *frag)
{
    sv_config c;
    sv_rc rc = parse(&c, json, "/x/cfg.json");
    CHECK(rc == SV_EINPUT, "accepted: %s", json);
    CHECK(strstr(sv_errmsg(), frag) != NULL, "message \"%s\" lacks \"%s\"", sv_errmsg(), frag);
    CHECK(strncmp(sv_errmsg(), "/x/cfg.json: ", 13) == 0, "message does not name the file: %s", sv_errmsg());
    sv_config_free(&c);
}

static void mk(const char *dir, int with_cfg)
{
    mkdir(dir, 0755);
    if (with_cfg) {
        char p[512];
        snprintf(p, sizeof p, "%s/cfg.json", dir);
        FILE *f = fopen(p, "w");
        fputs("{}", f);
        fclose(f);
    }
}

int main(void)
{
    sv_config c;
    const char *ds = "\"datasets\": [{\"name\": \"a\", \"path\": \"s.h5\"}]";
    char buf[4096];

    snprintf(buf, sizeof buf, "{\"output_dir\": \"out\", \"saes\": [\"sae1\", {\"path\": \"/abs/sae2/\", \"scaling_factor\": 2.5}], %s}", ds);
    CHECK(parse(&c, buf, "/cfgdir/run.json") == SV_OK, "valid config refused: %s", sv_errmsg());
    CHECK(c.n_saes == 2 && strcmp(c.saes[0].path, "/cfgdir/sae1") == 0, "relative SAE path: %s", c.n_saes ? c.saes[0].path : "");
    CHECK(strcmp(c.saes[1].path, "/abs/sae2") == 0 && c.saes[1].has_scale && c.saes[1].scaling_factor == 2.5, "absolute path, trailing slash, scale");
    CHECK(strcmp(c.output_dir, "/cfgdir/out") == 0 && strcmp(c.datasets[0].path, "/cfgdir/s.h5") == 0, "relative output/store paths");
    CHECK(c.legacy_batch_sequences == 16 && c.precision == 32 && c.block_tokens == 1024 && c.geometry == 1 &&
          !c.nonfinite_skip && isnan(c.model_params) && c.datasets[0].role == SV_ROLE_IN_SAMPLE &&
          c.dead_density_threshold == 1e-6, "defaults");
    sv_config_free(&c);

    bad("not json", "not valid JSON");
    bad("[1]", "top level must be a JSON object");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"s\"], %s} x", ds);
    bad(buf, "not valid JSON"); /* trailing junk after the object */
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"s\"], %s} \n", ds);
    CHECK(parse(&c, buf, "/cfgdir/run.json") == SV_OK, "trailing whitespace refused: %s", sv_errmsg());
    sv_config_free(&c);
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"\"], %s}", ds);
    bad(buf, "saes[0]: empty path");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [{\"path\": \"\"}], %s}", ds);
    bad(buf, "saes[0]: empty path");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [{\"path\": \"a\", \"path\": \"b\"}], %s}", ds);
    bad(buf, "saes[0].path: key given twice");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"], \"datasets\": [{\"name\": \"a\", \"path\": \"\"}]}", "datasets[0].path: missing or empty");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"], \"datasets\": [{\"name\": \"a\", \"path\": \"x\", \"name\": \"b\"}]}", "datasets[0].name: key given twice");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"s\"], %s, \"typo_key\": 1}", ds);
    bad(buf, "unknown key \"typo_key\"");
    snprintf(buf, sizeof buf, "{\"saes\": [\"s\"], %s}", ds);
    bad(buf, "output_dir: missing");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"]}", "datasets: missing");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", %s}", ds);
    bad(buf, "saes: missing");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [], %s}", ds);
    bad(buf, "saes: empty");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [{\"path\": \"s\", \"scale\": 1}], %s}", ds);
    bad(buf, "unknown key \"scale\"");
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [{\"path\": \"s\", \"scaling_factor\": -1}], %s}", ds);
    bad(buf, "scaling_factor");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"], \"datasets\": [{\"name\": \"a\", \"path\": \"x\"}, {\"name\": \"a\", \"path\": \"y\"}]}", "duplicate dataset name");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"], \"datasets\": [{\"name\": \"a\", \"path\": \"x\", \"role\": \"test\"}]}", "role");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"], \"datasets\": [{\"name\": \"a\", \"path\": \"x\", \"shift\": \"huge\"}]}", "shift");
    bad("{\"output_dir\": \"o\", \"saes\": [\"s\"], \"datasets\": [{\"name\": \"a/b\", \"path\": \"x\"}]}", "may not contain");
    const char *keys[][2] = {{"\"precision\": \"float16\"", "precision"}, {"\"legacy_batch_sequences\": 0", "legacy_batch_sequences"},
                             {"\"block_tokens\": 1000", "multiple of 1024"}, {"\"exclude_token_ids\": [1.5]", "exclude_token_ids"},
                             {"\"nonfinite\": \"ignore\"", "nonfinite"}, {"\"geometry\": 1", "geometry"},
                             {"\"memory_budget_mb\": 0", "memory_budget_mb"}, {"\"model_params\": -3", "model_params"},
                             {"\"legacy_batch_sequences\": 3e9", "legacy_batch_sequences"},
                             {"\"dead_density_threshold\": -1e-3", "dead_density_threshold"},
                             {"\"dead_density_threshold\": \"1e-6\"", "dead_density_threshold"},
                             {"\"dead_density_threshold\": 2", "dead_density_threshold"},
                             {"\"exclude_token_ids\": [1], \"exclude_token_ids\": [2, 3]", "key given twice"}};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"s\"], %s, %s}", ds, keys[k][0]);
        bad(buf, keys[k][1]);
    }

    /* Globs: only directories holding cfg.json, sorted; no match is an error. */
    char tmpl[] = "/tmp/sv_cfg_XXXXXX";
    char *root = mkdtemp(tmpl), p[512];
    snprintf(p, sizeof p, "%s/b_sae", root); mk(p, 1);
    snprintf(p, sizeof p, "%s/a_sae", root); mk(p, 1);
    snprintf(p, sizeof p, "%s/c_notsae", root); mk(p, 0);
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"*\"], %s}", ds);
    snprintf(p, sizeof p, "%s/run.json", root);
    CHECK(parse(&c, buf, p) == SV_OK, "glob config refused: %s", sv_errmsg());
    CHECK(c.n_saes == 2 && strstr(c.saes[0].path, "/a_sae") && strstr(c.saes[1].path, "/b_sae"), "glob expansion (%d)", c.n_saes);
    sv_config_free(&c);
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"nothing_*\"], %s}", ds);
    CHECK(parse(&c, buf, p) == SV_EINPUT && strstr(sv_errmsg(), "matched no SAE directory"), "empty glob: %s", sv_errmsg());
    sv_config_free(&c);
    /* A pattern that reaches too many directory entries is stopped (the
     * budget lowered for the test: the directory holds 3 entries + . + ..). */
    setenv("SAEVAL_GLOB_MAX_ENTRIES", "4", 1);
    snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"*\"], %s}", ds);
    CHECK(parse(&c, buf, p) == SV_EINPUT && strstr(sv_errmsg(), "reaches more than 4 directory entries"), "glob budget: %s", sv_errmsg());
    sv_config_free(&c);
    setenv("SAEVAL_GLOB_MAX_ENTRIES", "5", 1);
    CHECK(parse(&c, buf, p) == SV_OK && c.n_saes == 2, "glob within budget refused: %s", sv_errmsg());
    sv_config_free(&c);
    unsetenv("SAEVAL_GLOB_MAX_ENTRIES");
    {   /* 70 directory levels: refused before glob(3) recurses through them */
        char deep[512] = "*";
        for (int k = 0; k < 70; k++) strcat(deep, "/d");
        snprintf(buf, sizeof buf, "{\"output_dir\": \"o\", \"saes\": [\"%s\"], %s}", deep, ds);
        CHECK(parse(&c, buf, p) == SV_EINPUT && strstr(sv_errmsg(), "directory levels"), "deep pattern: %s", sv_errmsg());
        sv_config_free(&c);
    }

    /* SAE ids: base names, or the shortest suffix that separates them. */
    char *paths[4] = {"/r/run1/sae", "/r/run2/sae", "/r/run1/other", "/q/x/run1/sae2"}, *ids[4];
    CHECK(sv_sae_ids(paths, 4, ids) == SV_OK, "ids");
    CHECK(!strcmp(ids[0], "run1/sae") && !strcmp(ids[1], "run2/sae") && !strcmp(ids[2], "other") && !strcmp(ids[3], "sae2"),
          "ids: %s %s %s %s", ids[0], ids[1], ids[2], ids[3]);
    for (int i = 0; i < 4; i++) free(ids[i]);
    char *dup[2] = {"/a/s", "/a/s"};
    CHECK(sv_sae_ids(dup, 2, ids) == SV_EINPUT, "the same SAE twice must be refused");

    printf("%s: config reader and SAE ids\n", fails ? "FAIL" : "ok");
    return fails != 0;
}
