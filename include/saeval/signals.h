/* Stop requests (SLURM preemption, scancel, Ctrl-C): the driver finishes
 * the current work unit, writes nothing partial and exits non-zero; a
 * rerun resumes. */
#ifndef SAEVAL_SIGNALS_H
#define SAEVAL_SIGNALS_H

/* Catch SIGTERM, SIGINT and SIGUSR1. */
void sv_signals_install(void);
/* The signal received since install, 0 if none. */
int sv_signals_stop(void);

#endif
