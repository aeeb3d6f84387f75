/* Error buffer and small allocation / file helpers shared by every module. */
#include "saeval/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char sv_msg[2048];

sv_rc sv_fail(sv_rc code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sv_msg, sizeof sv_msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *sv_errmsg(void) { return sv_msg; }
void sv_clear_error(void) { sv_msg[0] = '\0'; }

void *sv_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) sv_fail(SV_EINTERNAL, "out of memory allocating %zu bytes", n);
    return p;
}

void *sv_calloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) sv_fail(SV_EINTERNAL, "out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}

char *sv_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sv_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
