/* Small helpers shared by the test generators. Define TEST_NAME (the
 * program's name, used in messages) before including. */
#ifndef SAEVAL_TESTUTIL_H
#define SAEVAL_TESTUTIL_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "saeval/error.h"
#include "saeval/fsutil.h"
#include "saeval/output.h"

static inline void die(const char *msg, const char *what)
{
    fprintf(stderr, TEST_NAME ": %s%s%s\n", msg, what ? ": " : "", what ? what : "");
    exit(1);
}

static inline void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

/* CHECK(cond) or CHECK(cond, fmt, ...): stop the test with file:line, the
 * condition and the optional message when cond is false. (A test that
 * defines TU_CHECK gets the counting CHECK below instead.) */
static inline void sv_test_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}
#if !defined(CHECK) && !defined(TU_CHECK)
#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, TEST_NAME ": %s:%d: check failed: %s", __FILE__, __LINE__, #cond); \
            sv_test_note(" " __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                      \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)
#endif

/* The library's mkdir -p; a test that cannot make its directories stops. */
static inline void mkdirs(const char *path)
{
    if (sv_mkdir_p(path) != SV_OK) die("cannot create directory", sv_errmsg());
}

/* CHECK(cond, fmt, ...) for tests that go on after a failure: report it and
 * count it; tu_failures() gives the count for the exit code. Opt-in: define
 * TU_CHECK before the include. */
#if defined(TU_CHECK) && !defined(CHECK)
static inline int *tu_fail_count(void)
{
    static int n;
    return &n;
}
#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, TEST_NAME ": FAIL %s:%d: ", __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            (*tu_fail_count())++;                                                  \
        }                                                                          \
    } while (0)
static inline int tu_failures(void) { return *tu_fail_count(); }
static inline int sv_test_failures(void) { return *tu_fail_count(); }
#endif

#endif
