/* Progress lines. */
#include "saeval/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

double sv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sv_progress_start(sv_progress *pg)
{
    memset(pg, 0, sizeof *pg);
    pg->t0 = pg->t_last = sv_now();
}

void sv_progress_line(sv_progress *pg, const char *ds, int pass, int n_pass, double frac_pass,
                      double pass_cost, double tok_rate, int force)
{
    double t = sv_now();
    if (!force && t - pg->t_last < 2.0) return;
    pg->t_last = t;
    double done = pg->cost_done + frac_pass * pass_cost;
    double el = t - pg->t0, eta = done > 0 ? el * (pg->cost_total - done) / done : 0;
    char rate[32] = "-";
    if (tok_rate > 0) snprintf(rate, sizeof rate, "%.3g", tok_rate);
    printf("[saeval] pairs %d/%d | %s pass %d/%d %5.1f%% | %s tok/s | elapsed %.0f s | ETA %.0f s\n",
           pg->pairs_done, pg->pairs_total, ds, pass, n_pass, 100.0 * frac_pass, rate, el, eta);
    fflush(stdout);
}
