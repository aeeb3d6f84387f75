/* Small helpers shared by the test generators. Define TEST_NAME (the
 * program's name, used in messages) before including. */
#ifndef SAEVAL_TESTUTIL_H
#define SAEVAL_TESTUTIL_H
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

/* The library's mkdir -p; a test that cannot make its directories stops. */
static inline void mkdirs(const char *path)
{
    if (sv_mkdir_p(path) != SV_OK) die("cannot create directory", sv_errmsg());
}

/* A check that counts failures and goes on; main returns *tu_fails() != 0.
 * (Named TU_CHECK: several older tests define their own CHECK.) */
static inline int *tu_fails(void)
{
    static int n;
    return &n;
}
#define TU_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, TEST_NAME ": FAIL %s:%d: ", __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            (*tu_fails())++;                                                 \
        }                                                                    \
    } while (0)

#endif
