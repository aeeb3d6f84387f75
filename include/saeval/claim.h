/* Pair claims: two runs on one output directory (a sweep submitted twice,
 * overlapping shards) cooperate so that each pair is computed once.
 *
 * Before a run computes a pair, its rank 0 creates OUT/.claims/PAIR.claim with
 * O_EXCL, holding the owner (host, pid, SLURM job id, start time). A second
 * run that finds a live claim leaves the pair to its owner and says so. The
 * owner refreshes one heartbeat file, OUT/.claims/TOKEN.alive, while it works
 * (sv_claim_refresh) and removes each claim once the result file is written
 * or the run ends.
 *
 * A claim is stale, and may be taken over, when
 *   - its owner ran on this host and its pid is gone (kill(pid, 0) fails with
 *     ESRCH): a killed job is detected at once; or
 *   - its owner's heartbeat (or, without one, the claim itself) is older than
 *     the lease (default 600 s): an owner on another node that stopped
 *     refreshing (SIGKILL, node lost).
 * Checking and taking over happen under an flock on OUT/.claims/.lock, so of
 * two runs racing for one stale claim exactly one gets it. */
#ifndef SAEVAL_CLAIM_H
#define SAEVAL_CLAIM_H
#include "saeval/error.h"

#define SV_CLAIM_LEASE_S 600.0

typedef struct {
    char host[256];
    long pid;
    char job[64];   /* SLURM_JOB_ID (array: SLURM_ARRAY_JOB_ID_TASK) or "-" */
    long started;   /* unix seconds */
    char token[40]; /* host-pid-started: identifies one run */
} sv_claim_owner;

/* The calling process as an owner. */
void sv_claim_me(sv_claim_owner *me);

typedef enum { SV_CLAIM_TAKEN = 0, SV_CLAIM_HELD_BY_OTHER = 1 } sv_claim_state;

/* Try to claim `name` (a file name, e.g. "SAE__DATASET") under dir (created
 * if missing). On SV_OK, *state says whether we now hold it; when another live
 * run holds it, *holder describes that run. lease_s <= 0 means the default. */
sv_rc sv_claim_try(const char *dir, const char *name, const sv_claim_owner *me,
                   double lease_s, sv_claim_state *state, sv_claim_owner *holder);
/* The run's heartbeat: refreshes DIR/TOKEN.alive, which keeps every claim
 * of this run live for runs on other hosts. */
sv_rc sv_claim_refresh(const char *dir, const sv_claim_owner *me);
/* End of the run: its heartbeat file goes. */
void sv_claim_done(const char *dir, const sv_claim_owner *me);
/* Remove a claim if (and only if) we still hold it. */
void sv_claim_release(const char *dir, const char *name, const sv_claim_owner *me);

/* "host H, pid P, SLURM job J, since T" (static buffer). */
const char *sv_claim_describe(const sv_claim_owner *o);

#endif
