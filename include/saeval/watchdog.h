/* Stall watchdog: a long sweep that waits on a slow or stalled file system
 * must not look like a hang. Readers bracket each blocking I/O call with
 * sv_watch_begin/sv_watch_end; a thread per rank wakes every second and, when
 * the current call has lasted longer than the threshold, prints one line to
 * stderr naming the rank, host, file, rows and seconds waited (again at 2x,
 * 4x, ... the threshold). Threshold: SAEVAL_STALL_SECONDS (default 30). */
#ifndef SAEVAL_WATCHDOG_H
#define SAEVAL_WATCHDOG_H
#include <stdint.h>

/* Starts the thread (once per process; later calls only update the rank). */
void sv_watchdog_start(int rank);
void sv_watchdog_stop(void);
/* `what` and `path` must stay valid until sv_watch_end. */
void sv_watch_begin(const char *what, const char *path, int64_t row0, int64_t row1);
void sv_watch_end(void);
/* Calls fn(arg) from the watchdog thread every period_s seconds until
 * sv_watchdog_every(0, NULL, NULL) or stop (e.g. the claims' heartbeat:
 * it must not wait for the end of a long work unit). fn must be thread-safe. */
void sv_watchdog_every(double period_s, void (*fn)(void *), void *arg);
/* Lines printed so far (tests). */
int sv_watchdog_reports(void);

#endif
