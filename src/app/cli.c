/* Command-line front end: parses arguments, initializes MPI, dispatches. */
#include "saeval/cli.h"
#include "saeval/gemm.h"

#include <mpi.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saeval/agree.h"
#include "saeval/bench.h"
#include "saeval/collect.h"
#include "saeval/signals.h"
#include "saeval/config.h"
#include "saeval/error.h"
#include "saeval/explain.h"
#include "saeval/export.h"
#include "saeval/forward.h"
#include "saeval/info.h"
#include "saeval/merge.h"
#include "saeval/plan.h"
#include "saeval/report.h"
#include "saeval/run.h"
#include "saeval/synth.h"
#include "plancmd.h"
#include "bench_scale.h"

static const char *usage_main =
    "usage: saeval <command> [options]\n"
    "\n"
    "Exact evaluation of sparse autoencoders on HDF5 activation stores, with MPI.\n"
    "\n"
    "commands:\n"
    "  run CONFIG     evaluate every (SAE, dataset) pair of a config (use under mpirun)\n"
    "  merge CONFIG   build all_eval_results.json/.csv and generalization.* from the\n"
    "                 per-pair files (after a job array of shards); list missing pairs\n"
    "  report CONFIG  write OUTPUT_DIR/report/index.html (HTML report, opens offline)\n"
    "  synth DIR      write a synthetic sweep (stores, SAEs, config.json) into DIR\n"
    "  plan CONFIG    pairs, passes, cost per shard and a job-array size, before a run\n"
    "  info PATH      describe an activation store (.h5) or an SAE directory\n"
    "  bench          measure speed against this machine's limits (use under mpirun)\n"
    "  collect        run a Hugging Face model over token ids and write activation\n"
    "                 stores at one or several hook points (use under mpirun)\n"
    "  explain CONFIG which latents fire on a span of a store, with their top examples\n"
    "  export         write a feature file as Neuronpedia dashboard batches\n"
    "\n"
    "`saeval <command> --help` describes each command. Exit codes: 0 success,\n"
    "1 internal error, 2 bad input (the message names the file and the field),\n"
    "3 stopped by a signal (rerun to resume), 4 merge found missing pairs.\n";

static const char *usage_run =
    "usage: mpirun -np N saeval run CONFIG [--shard I/N] [--force] [--output-dir DIR]\n"
    "                                      [--quiet] [--no-table] [--no-report]\n"
    "\n"
    "Evaluates every SAE of CONFIG on every dataset over every token and writes\n"
    "OUTPUT_DIR/<sae_id>__<dataset>.json; a full run (no --shard) also writes\n"
    "all_eval_results.json/.csv and generalization.json/.csv. Pairs whose result\n"
    "file is complete and matches the inputs are skipped, so a killed run resumes.\n"
    "Results are byte-identical for any number of ranks, shards or restarts.\n"
    "  --shard I/N       evaluate shard I (0-based) of N, balanced by cost\n"
    "  --force           recompute pairs that are already complete\n"
    "  --output-dir DIR  write results to DIR instead of the config's output_dir\n"
    "  --quiet           no progress lines\n"
    "  --no-table        do not print the summary table\n"
    "  --no-report       do not write the HTML report (OUTPUT_DIR/report/)\n"
    "Environment: SAEVAL_THREADS (threads per rank; default: cores / ranks per node).\n";

static const char *usage_merge =
    "usage: saeval merge CONFIG [--output-dir DIR] [--no-table] [--no-report]\n"
    "\n"
    "Builds all_eval_results.json/.csv and generalization.json/.csv from the\n"
    "per-pair result files, and lists pairs that are missing or failed (exit 4\n"
    "when any is missing or failed). Then writes the HTML report (not with --no-report).\n";

static const char *usage_report =
    "usage: saeval report CONFIG [--output-dir DIR] [--tokenizer tokenizer.json]\n"
    "       saeval report --output-dir DIR [--tokenizer tokenizer.json]\n"
    "\n"
    "Writes OUTPUT_DIR/report/index.html (sweep page) and report/pairs/*.html (one\n"
    "page per evaluated pair) from all_eval_results.json and generalization.json\n"
    "alone. Open index.html in a browser, also from a shared file system (file://):\n"
    "the data and every asset (Plotly included) sit next to the pages. Pairs with a\n"
    "feature file (top_examples) get a latents page; its tokens are text with the\n"
    "tokenizer (--tokenizer, else the config's), token ids otherwise.\n";

static const char *usage_plan =
    "usage: saeval plan CONFIG [--shards N] [--ranks R] [--gflops G] [--output-dir DIR]\n"
    "\n"
    "Prints the plan of a sweep without evaluating anything: pairs (to compute,\n"
    "complete, failing), passes over each store under memory_budget_mb, memory per\n"
    "rank, the cost of each of N shards (default 1) as `run --shard I/N` assigns\n"
    "them (max and mean, encoder GFLOP and seconds at G GFLOP/s per rank, default\n"
    "75, with R ranks per shard, default 1), and the job-array size it suggests, on\n"
    "a last line SAEVAL_SUGGESTED_SHARDS=N (jobs/submit.sh reads it).\n";

static const char *usage_synth =
    "usage: saeval synth DIR [--seed N]\n"
    "\n"
    "Writes a small synthetic sweep from a seed (default 1): an in-sample store and\n"
    "two OOS stores with shifted statistics (DIR/stores), SAEs of all four\n"
    "architectures with least-squares fitted decoders (DIR/saes), and\n"
    "DIR/config.json. Then: mpirun -np 2 saeval run DIR/config.json\n";

static const char *usage_bench =
    "usage: mpirun -np N saeval bench [--repeat R] [--quick] [--dir TMP] [--keep] [--scale]\n"
    "\n"
    "Generates stores and SAEs in a temporary directory and reports the evaluator's\n"
    "speed as ratios to limits measured in the same run: each case's GEMMs alone with\n"
    "the OpenBLAS kernel in use, and scaled to the best kernel this CPU runs (each\n"
    "measured in a child process). Cases: compute (d_in 2304, d_sae 16384, topk k=64;\n"
    "float32 and bfloat16 stores, bfloat16 precision; and on a store 4x as long, with\n"
    "top_examples 20 against without: the feature analysis overhead, target <= 1.10), a\n"
    "sweep of 8 SAEs (d_in 512 and 2304, L0 16-176, geometry on; whole run), geometry\n"
    "alone (d_sae 8192), a d_sae 131072 SAE under a memory budget below its weights\n"
    "plus one block of pre-activations; non-GEMM time per token and SAE. Medians over\n"
    "R runs (3; the feature pair once, twice from R = 5).\n"
    "  --quick   small shapes (checks that the benchmark works; numbers mean little)\n"
    "  --dir     parent of the temporary directory (default $TMPDIR or /tmp)\n"
    "  --keep    keep the generated data\n"
    "  --scale   instead: a sweep of 200 SAEs (d_in 512, d_sae 2048/4096, four\n"
    "            architectures) x 4 stores of 8192 tokens under a budget that needs\n"
    "            several passes: wall time, peak RSS per rank vs budget, summary sizes,\n"
    "            no-op rerun and merge times; then a d_sae 131072 SAE with geometry\n"
    "            (with --quick: 24 small SAEs and a d_sae 16384 SAE)\n"
    "  --saes N  with --scale: N SAEs instead (4N pairs)\n";

static const char *usage_export =
    "usage: saeval export --neuronpedia FEATURES.h5 --out DIR [--tokenizer tokenizer.json]\n"
    "                     [--model-id ID] [--layer N] [--sae-set NAME] [--batch-size N]\n"
    "\n"
    "Writes DIR/batch-<k>.json in the format of SAEDashboard's Neuronpedia exporter\n"
    "(top activations and interval samples with their context, activation histogram,\n"
    "firing fraction) for every latent that fired, and DIR/skipped_indexes.json for\n"
    "the others. With --tokenizer (a Hugging Face tokenizer.json) tokens are text,\n"
    "else token ids. Logit tables need the model and are left empty.\n";

static const char *usage_explain =
    "usage: saeval explain CONFIG --dataset D (--sequence S [--positions A:B] | --ids I,J,...)\n"
    "                      [--top K] [--tokenizer tokenizer.json] [--output-dir DIR]\n"
    "\n"
    "For each token of positions A..B-1 of sequence S of dataset D's store (default:\n"
    "the whole sequence), prints the K latents (default 5) of every SAE of CONFIG\n"
    "that fire most on it, then one line per latent shown: its max, firing\n"
    "fraction and top examples, from OUTPUT_DIR/<sae>__<dataset>.features.h5 when a\n"
    "run wrote it. --ids finds the first occurrence of those token ids in the store\n"
    "instead; to tokenize text:\n"
    "  python3 -c \"from transformers import AutoTokenizer as T; print(','.join(map(str, T.from_pretrained('gpt2')('some text')['input_ids'])))\"\n";

static const char *usage_info =
    "usage: saeval info PATH\n"
    "\n"
    "Describes an activation store (shapes, dtype, layout, sequences, masked\n"
    "tokens) or an SAE directory (architecture, sizes, tensors).\n";

/* OpenBLAS 0.3.21 (Debian 12) does not know some AVX-512 CPUs and falls
 * back to its Haswell kernels there; its SkylakeX kernels are much faster
 * (issue 5 measured 151 vs 248 GFLOP/s). On CPUs without AVX-512 (this
 * project's AMD EPYC machine picks "Zen") the default is already right. */
static const char *best_coretype(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SKYLAKEX";
#endif
    return NULL;
}

void sv_cli_prepare_env(char **argv)
{
    /* glibc raises its mmap threshold (up to 32 MiB) each time a large
     * block is freed; a fixed threshold keeps it from moving. At 1 MiB (the
     * earlier choice) every tile, panel and read buffer was a fresh mapping,
     * and its pages were faulted in and zeroed again on every allocation:
     * a fifth of rank 0's time in the bench sweep (40k page faults, 3.8 s).
     * At 32 MiB (glibc's largest) they come from the heap and are reused:
     * 3k faults, 2.8 s. What a pass frees goes back to the system when the
     * pass ends (malloc_trim in run.c), so the budget still bounds the RSS
     * (bench --scale --quick: peak 156 -> 158 MiB, budget 153 + runtime 32). */
    if (!getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 32 << 20);
    if (getenv("SAEVAL_ENV_READY")) return;
    setenv("SAEVAL_ENV_READY", "1", 1);
    int changed = 0;
    const char *core = best_coretype();
    if (core && !getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        changed = 1;
    }
    /* Idle OpenMP workers spin for a long time by default; between the
     * parallel parts they then steal the core from the thread doing the
     * serial work (measured: 2 threads 5x slower than 1 on the demo). */
    if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) {
        setenv("GOMP_SPINCOUNT", "10000", 1);
        changed = 1;
    }
    /* Transparent huge pages for malloc's large blocks (the kernel here gives
     * them only on madvise): the pass touches hundreds of MB of fresh
     * buffers, and a 4 KiB page fault costs ~10 us in a VM. Measured on the
     * bench compute case, 1 rank x 2 threads: page faults 117k -> 13k, run
     * 6.99 -> 5.27 s; with top_examples 20: 263k -> 33k, 12.19 -> 8.56 s.
     * SAEVAL_THP=0, or a user's own glibc.malloc.hugetlb, turns it off. */
    const char *tun = getenv("GLIBC_TUNABLES"), *thp = getenv("SAEVAL_THP");
    if (!(thp && strcmp(thp, "0") == 0) && !(tun && strstr(tun, "glibc.malloc.hugetlb"))) {
        char buf[4096];
        if (!tun || !*tun) snprintf(buf, sizeof buf, "glibc.malloc.hugetlb=1");
        else snprintf(buf, sizeof buf, "%s:glibc.malloc.hugetlb=1", tun);
        if (strlen(buf) < sizeof buf - 1) {
            setenv("GLIBC_TUNABLES", buf, 1);
            changed = 1;
        }
    }
    if (changed) execv("/proc/self/exe", argv); /* on failure: carry on with the defaults */
}

static int wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

static int usage_error(const char *usage, const char *what)
{
    fprintf(stderr, "saeval: %s\n%s", what, usage);
    return SV_EINPUT;
}

static int cmd_run(int argc, char **argv)
{
    const char *config = NULL;
    sv_run_opts o;
    int no_report = 0;
    memset(&o, 0, sizeof o);
    o.table = 1;
    o.n_shards = 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--output-dir") == 0 && i + 1 < argc) o.output_dir = argv[++i];
        else if (strcmp(argv[i], "--force") == 0) o.force = 1;
        else if (strcmp(argv[i], "--shard") == 0 && i + 1 < argc) {
            char extra;
            if (sscanf(argv[++i], "%d/%d%c", &o.shard, &o.n_shards, &extra) != 2 || o.n_shards < 1 ||
                o.shard < 0 || o.shard >= o.n_shards)
                return usage_error(usage_run, "run: --shard takes I/N with 0 <= I < N");
        }
        else if (strcmp(argv[i], "--quiet") == 0) o.quiet = 1;
        else if (strcmp(argv[i], "--no-table") == 0) o.table = 0;
        else if (strcmp(argv[i], "--no-report") == 0) no_report = 1;
        else if (argv[i][0] == '-') return usage_error(usage_run, "run: unknown option");
        else if (!config) config = argv[i];
        else return usage_error(usage_run, "run: more than one CONFIG");
    }
    if (!config) return usage_error(usage_run, "run: missing CONFIG");
    o.report = !no_report;
    return sv_run(config, &o, MPI_COMM_WORLD, NULL);
}

static int cmd_merge(int argc, char **argv)
{
    const char *config = NULL, *out = NULL;
    int table = 1, no_report = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--output-dir") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--no-table") == 0) table = 0;
        else if (strcmp(argv[i], "--no-report") == 0) no_report = 1;
        else if (argv[i][0] == '-') return usage_error(usage_merge, "merge: unknown option");
        else if (!config) config = argv[i];
        else return usage_error(usage_merge, "merge: more than one CONFIG");
    }
    if (!config) return usage_error(usage_merge, "merge: missing CONFIG");
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    sv_config c;
    sv_plan pl;
    sv_merge_counts mc = {0, 0, 0};
    sv_rc rc = sv_agree(sv_config_load(&c, config), MPI_COMM_WORLD);
    if (rc != SV_OK) { sv_config_free(&c); return rc; }
    const char *dir = out ? out : c.output_dir;
    rc = sv_agree(sv_plan_build(&pl, &c, dir, 0, 1, 0, MPI_COMM_WORLD), MPI_COMM_WORLD);
    if (rc == SV_OK && rank == 0) {
        rc = sv_merge(&c, &pl, dir, stderr, table ? stdout : NULL, &mc);
        if (rc == SV_OK)
            printf("[saeval] merged %d complete pairs; %d failed, %d missing; summaries in %s\n", mc.complete,
                   mc.failed, mc.missing, dir);
        if (rc == SV_OK && !no_report) rc = sv_report_cli(NULL, dir, c.tokenizer);
    }
    rc = sv_agree(rc, MPI_COMM_WORLD);
    int incomplete = rank == 0 ? mc.failed + mc.missing : 0;
    MPI_Bcast(&incomplete, 1, MPI_INT, 0, MPI_COMM_WORLD);
    sv_plan_free(&pl);
    sv_config_free(&c);
    if (rc == SV_OK && incomplete) return 4;
    return rc;
}

static int cmd_plan(int argc, char **argv)
{
    const char *config = NULL, *out = NULL;
    int shards = 1, ranks = 1;
    double gflops = 75;
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--output-dir") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--shards") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000000) return usage_error(usage_plan, "plan: --shards takes 1..1000000");
            shards = (int)v;
        } else if (strcmp(argv[i], "--ranks") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000000) return usage_error(usage_plan, "plan: --ranks takes 1..1000000");
            ranks = (int)v;
        } else if (strcmp(argv[i], "--gflops") == 0 && i + 1 < argc) {
            gflops = strtod(argv[++i], &end);
            if (*end || !(gflops > 0 && gflops < 1e9)) return usage_error(usage_plan, "plan: --gflops takes a positive number");
        } else if (argv[i][0] == '-') return usage_error(usage_plan, "plan: unknown option");
        else if (!config) config = argv[i];
        else return usage_error(usage_plan, "plan: more than one CONFIG");
    }
    if (!config) return usage_error(usage_plan, "plan: missing CONFIG");
    sv_fwd_set_threads_default(MPI_COMM_WORLD);
    return sv_plan_command(config, out, shards, gflops, ranks, MPI_COMM_WORLD);
}

static int cmd_bench(int argc, char **argv)
{
    sv_bench_opts o;
    memset(&o, 0, sizeof o);
    o.repeat = 3;
    int scale = 0, n_saes = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) o.repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0) o.quick = 1;
        else if (strcmp(argv[i], "--keep") == 0) o.keep = 1;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) o.dir = argv[++i];
        else if (strcmp(argv[i], "--scale") == 0) scale = 1;
        else if (strcmp(argv[i], "--saes") == 0 && i + 1 < argc) {
            n_saes = atoi(argv[++i]);
            if (n_saes < 1 || n_saes > 5000) return usage_error(usage_bench, "bench: --saes takes 1..5000");
        }
        else return usage_error(usage_bench, "bench: unknown option");
    }
    if (scale) { /* the issue-15 sweep: src/app/bench_scale.c */
        sv_fwd_set_threads_default(MPI_COMM_WORLD);
        return sv_bench_scale(o.dir ? o.dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", o.quick, o.keep, n_saes, MPI_COMM_WORLD);
    }
    if (o.repeat < 1 || o.repeat > 15) return usage_error(usage_bench, "bench: --repeat takes 1..15");
    sv_fwd_set_threads_default(MPI_COMM_WORLD);
    return sv_bench(&o, MPI_COMM_WORLD);
}

static int cmd_collect(int argc, char **argv, int rank)
{
    sv_collect_args a;
    sv_rc rc = sv_collect_parse_args(&a, argc - 1, argv + 1);
    if (rc != SV_OK) {
        if (rank == 0) fprintf(stderr, "saeval: %s\n%s", sv_errmsg(), sv_collect_usage);
        return rc;
    }
    sv_fwd_set_threads_default(MPI_COMM_WORLD);
    sv_signals_install();
    a.o.stop = sv_signals_stop;
    rc = sv_collect(&a.o, MPI_COMM_WORLD);
    if (rc != SV_OK && rank == 0) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
    else if (rank == 0)
        for (int h = 0; h < a.o.n_hooks; h++) printf("[saeval] %s -> %s\n", a.o.hooks[h], a.o.out_paths[h]);
    sv_collect_args_free(&a);
    int r = (int)rc, worst;
    MPI_Allreduce(&r, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int cmd_synth(int argc, char **argv, int rank)
{
    const char *dir = NULL;
    unsigned long long seed = 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end) return usage_error(usage_synth, "synth: --seed takes an integer");
        } else if (argv[i][0] == '-') return usage_error(usage_synth, "synth: unknown option");
        else if (!dir) dir = argv[i];
        else return usage_error(usage_synth, "synth: more than one DIR");
    }
    if (!dir) return usage_error(usage_synth, "synth: missing DIR");
    sv_rc rc = SV_OK;
    if (rank == 0) {
        rc = sv_synth(dir, (uint64_t)seed);
        if (rc != SV_OK) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
        else printf("[saeval] synthetic sweep written to %s (config: %s/config.json)\n", dir, dir);
    }
    int r = (int)rc, worst;
    MPI_Allreduce(&r, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int cmd_export(int argc, char **argv, int rank)
{
    const char *feat = NULL, *out = NULL, *tok_path = NULL;
    sv_np_opts o = {NULL, 0, NULL, 128, NULL};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--neuronpedia") == 0 && v) feat = argv[++i];
        else if (strcmp(a, "--out") == 0 && v) out = argv[++i];
        else if (strcmp(a, "--tokenizer") == 0 && v) tok_path = argv[++i];
        else if (strcmp(a, "--model-id") == 0 && v) o.model_id = argv[++i];
        else if (strcmp(a, "--sae-set") == 0 && v) o.sae_set = argv[++i];
        else if (strcmp(a, "--layer") == 0 && v) {
            o.layer = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i]) return usage_error(usage_export, "export: --layer takes an integer");
        } else if (strcmp(a, "--batch-size") == 0 && v) {
            o.batch_size = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || o.batch_size < 1) return usage_error(usage_export, "export: --batch-size takes a positive integer");
        } else return usage_error(usage_export, "export: unknown option or missing value");
    }
    if (!feat || !out) return usage_error(usage_export, "export: --neuronpedia FEATURES.h5 and --out DIR are required");
    sv_rc rc = SV_OK;
    if (rank == 0) {
        sv_tokenizer *tok = NULL;
        int64_t nb = 0;
        o.tokenizer_path = tok_path;
        if (tok_path) rc = sv_tokenizer_load(&tok, tok_path);
        if (rc == SV_OK) rc = sv_export_neuronpedia(feat, tok, &o, out, &nb);
        if (rc != SV_OK) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
        else printf("[saeval] %lld batch files written to %s\n", (long long)nb, out);
        sv_tokenizer_free(tok);
    }
    int r = (int)rc, worst;
    MPI_Allreduce(&r, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    *v = strtoll(s, &end, 10);
    return end != s && *end == '\0';
}

static int cmd_explain(int argc, char **argv, int rank)
{
    sv_explain_opts o;
    memset(&o, 0, sizeof o);
    o.sequence = -1;
    o.pos1 = -1;
    int64_t *ids = NULL;
    int have_seq = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t x;
        if (strcmp(a, "--dataset") == 0 && v) o.dataset = argv[++i];
        else if (strcmp(a, "--sequence") == 0 && v) {
            if (!parse_i64(argv[++i], &o.sequence) || o.sequence < 0) { free(ids); return usage_error(usage_explain, "explain: --sequence takes an integer >= 0"); }
            have_seq = 1;
        } else if (strcmp(a, "--positions") == 0 && v) {
            char *colon = strchr(argv[++i], ':');
            if (!colon) { free(ids); return usage_error(usage_explain, "explain: --positions takes A:B"); }
            *colon = '\0';
            if (!parse_i64(argv[i], &o.pos0) || !parse_i64(colon + 1, &o.pos1) || o.pos0 < 0 || o.pos1 <= o.pos0) {
                free(ids);
                return usage_error(usage_explain, "explain: --positions takes A:B with 0 <= A < B");
            }
        } else if (strcmp(a, "--ids") == 0 && v) {
            const char *p = argv[++i];
            size_t cap = strlen(p) / 2 + 1;
            free(ids);
            ids = malloc(cap * sizeof *ids);
            o.n_ids = 0;
            if (!ids) return SV_EINTERNAL;
            while (*p) {
                char *end;
                long long id = strtoll(p, &end, 10);
                if (end == p || id < 0 || (*end && *end != ',') || (size_t)o.n_ids == cap) { free(ids); return usage_error(usage_explain, "explain: --ids takes comma-separated token ids"); }
                ids[o.n_ids++] = id;
                p = *end ? end + 1 : end;
            }
            o.ids = ids;
        } else if (strcmp(a, "--top") == 0 && v) {
            if (!parse_i64(argv[++i], &x) || x < 1 || x > 1000) { free(ids); return usage_error(usage_explain, "explain: --top takes an integer in [1, 1000]"); }
            o.top_latents = (int)x;
        } else if (strcmp(a, "--tokenizer") == 0 && v) o.tokenizer = argv[++i];
        else if (strcmp(a, "--output-dir") == 0 && v) o.output_dir = argv[++i];
        else if (a[0] != '-' && !o.config_path) o.config_path = a;
        else { free(ids); return usage_error(usage_explain, "explain: unknown option, missing value or second CONFIG"); }
    }
    if (!o.config_path || !o.dataset || have_seq == (o.n_ids > 0)) {
        free(ids);
        return usage_error(usage_explain, "explain: give CONFIG, --dataset and one of --sequence or --ids");
    }
    sv_fwd_set_threads_default(MPI_COMM_WORLD);
    sv_rc rc = SV_OK;
    if (rank == 0) {
        rc = sv_explain(&o, stdout);
        if (rc != SV_OK) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
    }
    free(ids);
    int r = (int)rc, worst;
    MPI_Allreduce(&r, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int cmd_report(int argc, char **argv, int rank)
{
    const char *config = NULL, *out = NULL, *tok = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--output-dir") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) tok = argv[++i];
        else if (argv[i][0] == '-') return usage_error(usage_report, "report: unknown option");
        else if (!config) config = argv[i];
        else return usage_error(usage_report, "report: more than one CONFIG");
    }
    if (!config && !out) return usage_error(usage_report, "report: missing CONFIG");
    int r = rank == 0 ? (int)sv_report_cli(config, out, tok) : 0, worst;
    if (r) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
    MPI_Allreduce(&r, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int cmd_info(int argc, char **argv, int rank)
{
    if (argc != 3 || argv[2][0] == '-') return usage_error(usage_info, "info: expected one PATH");
    sv_rc rc = SV_OK;
    if (rank == 0) {
        rc = sv_info_print(argv[2], stdout);
        if (rc != SV_OK) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
    }
    int r = (int)rc, worst;
    MPI_Allreduce(&r, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

int sv_cli_main(int argc, char **argv)
{
    /* Child of the GEMM kernel probe (gemm.h): no MPI, one line out. */
    if (argc >= 2 && strcmp(argv[1], "__gemm-probe") == 0) return sv_gemm_probe_child(argc - 2, argv + 2);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? SV_EINPUT : 0;
    }
    const char *cmd = argv[1];
    const char *usage = strcmp(cmd, "run") == 0 ? usage_run
                      : strcmp(cmd, "merge") == 0 ? usage_merge
                      : strcmp(cmd, "bench") == 0 ? usage_bench
                      : strcmp(cmd, "plan") == 0 ? usage_plan
                      : strcmp(cmd, "synth") == 0 ? usage_synth
                      : strcmp(cmd, "info") == 0 ? usage_info
                      : strcmp(cmd, "report") == 0 ? usage_report
                      : strcmp(cmd, "export") == 0 ? usage_export
                      : strcmp(cmd, "explain") == 0 ? usage_explain
                      : strcmp(cmd, "collect") == 0 ? sv_collect_usage : NULL;
    if (!usage) {
        fprintf(stderr, "saeval: unknown command '%s'\n%s", cmd, usage_main);
        return SV_EINPUT;
    }
    if (wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int rc;
    if (usage == usage_run) rc = cmd_run(argc, argv);
    else if (usage == usage_merge) rc = cmd_merge(argc, argv);
    else if (usage == usage_bench) rc = cmd_bench(argc, argv);
    else if (usage == usage_plan) rc = cmd_plan(argc, argv);
    else if (usage == usage_synth) rc = cmd_synth(argc, argv, rank);
    else if (usage == usage_export) rc = cmd_export(argc, argv, rank);
    else if (usage == usage_explain) rc = cmd_explain(argc, argv, rank);
    else if (usage == usage_report) rc = cmd_report(argc, argv, rank);
    else if (usage == sv_collect_usage) rc = cmd_collect(argc, argv, rank);
    else rc = cmd_info(argc, argv, rank);
    MPI_Finalize();
    return rc;
}
