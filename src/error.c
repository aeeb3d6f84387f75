/* Error buffer and small allocation / file helpers shared by every module. */
#include "saeval/error.h"

#include <errno.h>
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

sv_rc sv_read_file(const char *path, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) { fclose(fp); return sv_fail(SV_EINPUT, "%s: cannot seek", path); }
    long sz = ftell(fp);
    if (sz < 0) { fclose(fp); return sv_fail(SV_EINPUT, "%s: cannot size", path); }
    rewind(fp);
    char *buf = sv_malloc((size_t)sz + 1);
    if (!buf) { fclose(fp); return SV_EINTERNAL; }
    if (fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        free(buf);
        fclose(fp);
        return sv_fail(SV_EINPUT, "%s: short read", path);
    }
    fclose(fp);
    buf[sz] = '\0';
    *out = buf;
    if (len) *len = (size_t)sz;
    return SV_OK;
}
