/* CSV cell quoting and number cells. */
#include "saeval/csv.h"
#include "saeval/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void sv_csv_cell(sv_jw *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        sv_jw_raw(b, s, strlen(s));
        return;
    }
    sv_jw_raw(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') sv_jw_raw(b, "\"", 1);
        sv_jw_raw(b, p, 1);
    }
    sv_jw_raw(b, "\"", 1);
}

void sv_csv_num(sv_jw *b, double v)
{
    char tmp[40];
    if (isfinite(v)) {
        int n = sv_fmt_g(tmp, v, 17);
        sv_jw_raw(b, tmp, (size_t)n);
    }
}
