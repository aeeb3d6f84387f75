/* Error reporting: every fallible function returns an sv_rc and leaves a
 * one-line message (naming the file and the field) in a per-process buffer. */
#ifndef SAEVAL_ERROR_H
#define SAEVAL_ERROR_H

typedef enum {
    SV_OK = 0,
    SV_EINTERNAL = 1, /* bug, allocation failure, I/O error on a good file */
    SV_EINPUT = 2,    /* bad input: malformed file, bad config, mismatch */
    SV_EINTERRUPTED = 3 /* stopped by SIGTERM/SIGINT/SIGUSR1; rerun to resume */
} sv_rc;

/* Format the message and return code (so callers can `return sv_fail(...)`). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
sv_rc sv_fail(sv_rc code, const char *fmt, ...);
const char *sv_errmsg(void);
void sv_clear_error(void);

/* Allocation helpers that set an SV_EINTERNAL message on failure. */
#include <stddef.h>
void *sv_malloc(size_t n);
void *sv_calloc(size_t n, size_t sz);
char *sv_strdup(const char *s);

#endif
