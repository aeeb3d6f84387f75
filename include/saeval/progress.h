/* Progress lines of a run (rank 0): pairs done, the current pass, token
 * rate, elapsed time and an ETA weighted by tokens x d_sae. */
#ifndef SAEVAL_PROGRESS_H
#define SAEVAL_PROGRESS_H

typedef struct {
    double t0, t_last;
    double cost_total, cost_done; /* tokens x d_sae of the pairs to compute */
    int pairs_total, pairs_done;
} sv_progress;

/* Monotonic clock, seconds. */
double sv_now(void);
void sv_progress_start(sv_progress *pg);
/* Prints at most every 2 s unless force. frac_pass: share of the current
 * pass done; pass_cost: its tokens x d_sae; tok_rate <= 0: unknown. */
void sv_progress_line(sv_progress *pg, const char *ds, int pass, int n_pass, double frac_pass,
                      double pass_cost, double tok_rate, int force);

#endif
