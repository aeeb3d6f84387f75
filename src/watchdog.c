/* Stall watchdog (see watchdog.h). */
#define _DEFAULT_SOURCE
#include "saeval/watchdog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_t thr;
static int running, stopping, my_rank, reports;
static double threshold = 30.0;
/* The call in progress (guarded by mu). */
static const char *cur_what, *cur_path;
static int64_t cur_r0, cur_r1;
static double cur_since, cur_next; /* next report when waited >= cur_next */
/* Periodic hook. */
static void (*hook_fn)(void *);
static void *hook_arg;
static double hook_period, hook_last;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *loop(void *arg)
{
    (void)arg;
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    pthread_mutex_lock(&mu);
    while (!stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&cv, &mu, &ts);
        if (stopping) continue;
        if (hook_fn && mono() - hook_last >= hook_period) {
            hook_last = mono();
            void (*fn)(void *) = hook_fn;
            void *arg = hook_arg;
            pthread_mutex_unlock(&mu);
            fn(arg);
            pthread_mutex_lock(&mu);
        }
        if (!cur_what) continue;
        double waited = mono() - cur_since;
        if (waited < cur_next) continue;
        fprintf(stderr, "[saeval] rank %d on %s: %s %s (rows %lld-%lld) has taken %.0f s so far: the file "
                "system is slow or stalled; saeval is waiting for it, not hung\n",
                my_rank, host, cur_what, cur_path ? cur_path : "?", (long long)cur_r0, (long long)cur_r1,
                waited);
        fflush(stderr);
        reports++;
        cur_next *= 2;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

void sv_watchdog_start(int rank)
{
    pthread_mutex_lock(&mu);
    my_rank = rank;
    if (!running) {
        const char *e = getenv("SAEVAL_STALL_SECONDS");
        if (e && *e) {
            double v = atof(e);
            if (v > 0) threshold = v;
        }
        stopping = 0;
        if (pthread_create(&thr, NULL, loop, NULL) == 0) running = 1;
    }
    pthread_mutex_unlock(&mu);
}

void sv_watchdog_stop(void)
{
    pthread_mutex_lock(&mu);
    if (!running) { pthread_mutex_unlock(&mu); return; }
    stopping = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thr, NULL);
    pthread_mutex_lock(&mu);
    running = 0;
    hook_fn = NULL;
    pthread_mutex_unlock(&mu);
}

void sv_watch_begin(const char *what, const char *path, int64_t row0, int64_t row1)
{
    pthread_mutex_lock(&mu);
    cur_what = what;
    cur_path = path;
    cur_r0 = row0;
    cur_r1 = row1;
    cur_since = mono();
    cur_next = threshold;
    pthread_mutex_unlock(&mu);
}

void sv_watch_end(void)
{
    pthread_mutex_lock(&mu);
    cur_what = NULL;
    cur_path = NULL;
    pthread_mutex_unlock(&mu);
}

void sv_watchdog_every(double period_s, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&mu);
    hook_fn = period_s > 0 ? fn : NULL;
    hook_arg = arg;
    hook_period = period_s;
    hook_last = mono();
    pthread_mutex_unlock(&mu);
}

int sv_watchdog_reports(void)
{
    pthread_mutex_lock(&mu);
    int r = reports;
    pthread_mutex_unlock(&mu);
    return r;
}
