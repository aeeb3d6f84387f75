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

/* A failed check names the file, line and condition, then stops the test. */
#ifndef CHECK
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, TEST_NAME ": %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                           \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)
#endif

/* The library's mkdir -p; a test that cannot make its directories stops. */
static inline void mkdirs(const char *path)
{
    if (sv_mkdir_p(path) != SV_OK) die("cannot create directory", sv_errmsg());
}

#endif
