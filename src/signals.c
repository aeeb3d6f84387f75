/* Stop requests: a flag set by the handler, read between work units. */
#include "saeval/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t sv_stop;
static void on_signal(int sig) { sv_stop = sig; }

void sv_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int sv_signals_stop(void) { return (int)sv_stop; }
